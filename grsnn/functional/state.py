"""Named state and constants of a spiking population, in the style of Norse: the
:class:`LIFParameters`, the :class:`LIFState` ``(c, u)``, the :class:`TraceState` and the
:class:`NeuronState` that carries them (with the bit history) from step to step."""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

from torch import Tensor

from .surrogate import Sigmoid

__all__ = ["LIFParameters", "LIFState", "TraceState", "NeuronState"]


class LIFParameters(NamedTuple):
    """Constants of a current-based LIF population (the layer's ``tau``, ``v_threshold``
    and surrogate spike function)."""

    tau: float = 4.0
    v_threshold: float = 2.0
    surrogate: Callable[[Tensor], Tensor] = Sigmoid()


class LIFState(NamedTuple):
    """State of a LIF population after a step: synaptic current ``c`` and the (reset)
    membrane potential ``u``, same shape each."""

    c: Tensor
    u: Tensor


class TraceState(NamedTuple):
    """Accumulators ``A`` and ``B`` of the O(1) spike-trace recursion (:func:`trace_step`)
    and the trace ``frame`` they give, ``tr[t]`` (no gradient)."""

    a: Tensor
    b: Tensor
    frame: Optional[Tensor] = None


class NeuronState(NamedTuple):
    """Everything a population carries from one simulation step to the next: the LIF
    state, the bit history of its last spike frames (:func:`~grsnn.functional.push_history`)
    and, when delays learn, the trace accumulators (``None`` otherwise)."""

    lif: LIFState
    hist: Tensor
    trace: Optional[TraceState] = None
