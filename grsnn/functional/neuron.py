r"""Current-based LIF neuron, its PSP kernel, the spike trace and the temporal readout.

State equations (docs/method.md section 3), with :math:`a = e^{-1/\tau}`:

.. math::
    c[t] &= a\,c[t-1] + \tfrac{e}{\tau} I[t] \\
    u[t] &= a\,u[t-1] + c[t] + \beta \\
    s[t] &= H(u[t] - V_{th}), \qquad u[t] \leftarrow u[t](1 - s[t])

A unit input at :math:`t_0` raises :math:`u` at :math:`t_0 + j` by the alpha kernel
:math:`\epsilon(j) = \tfrac{e}{\tau}(j + 1)e^{-j/\tau}`.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from .propagation import push_history
from .state import LIFParameters, LIFState, NeuronState, TraceState
from .surrogate import Surrogate, heaviside
from .temporal import alpha_kernel, alpha_kernel_derivative, readout_kernel, trace_step

__all__ = [
    "LIFParameters",
    "LIFState",
    "TraceState",
    "NeuronState",
    "fire",
    "lif_init",
    "lif_step",
    "lif_step_fused",
    "neuron_init",
    "neuron_step",
    "alpha_kernel",
    "alpha_kernel_derivative",
    "trace_step",
    "readout_kernel",
]


class _FireFn(torch.autograd.Function):
    """``s = H(u - V_th)``, ``u' = u (1 - s)``; saves only ``u`` (one tensor, not three)."""

    @staticmethod
    def forward(ctx, u: Tensor, v_threshold: float, surrogate: Surrogate):  # type: ignore[override]
        fired = u >= v_threshold
        ctx.save_for_backward(u)
        ctx.v_threshold, ctx.surrogate = v_threshold, surrogate
        return fired.to(u.dtype), u.masked_fill(fired, 0.0)

    @staticmethod
    def backward(ctx, grad_s: Tensor, grad_u: Tensor):  # type: ignore[override]
        (u,) = ctx.saved_tensors
        x = u - ctx.v_threshold
        s, ds = heaviside(x), ctx.surrogate.derivative(x)
        return grad_s * ds + grad_u * ((1.0 - s) - u * ds), None, None


def fire(u: Tensor, v_threshold: float, surrogate: Callable[[Tensor], Tensor]
         ) -> Tuple[Tensor, Tensor]:
    """Spikes ``H(u - V_th)`` (surrogate gradient) and the hard-reset membrane ``u (1 - s)``
    (the reset is not detached).

    Example:
        >>> from grsnn.functional import Sigmoid
        >>> fire(torch.tensor([2.5, 1.0]), 2.0, Sigmoid())
        (tensor([1., 0.]), tensor([0., 1.]))
    """
    if isinstance(surrogate, Surrogate) and torch.is_grad_enabled() and u.requires_grad:
        return _FireFn.apply(u, v_threshold, surrogate)
    s = surrogate(u - v_threshold)
    return s, u * (1.0 - s)


def lif_init(beta: Tensor, v_threshold: float, surrogate: Callable[[Tensor], Tensor]
             ) -> Tuple[Tensor, Tensor, Tensor]:
    """Step ``t = 0``: ``c = 0``, ``u = beta``, fire, hard reset.

    Returns ``(spikes, current, membrane)``.

    Example:
        >>> from grsnn.functional import Sigmoid
        >>> s, c, u = lif_init(torch.tensor([2.5, 1.0]), 2.0, Sigmoid())
        >>> s, u
        (tensor([1., 0.]), tensor([0., 1.]))
    """
    s, u = fire(beta, v_threshold, surrogate)
    return s, torch.zeros_like(beta), u


def lif_step(current_in: Tensor, c: Tensor, u: Tensor, beta: Tensor, tau: float,
             v_threshold: float, surrogate: Callable[[Tensor], Tensor]
             ) -> Tuple[Tensor, Tensor, Tensor]:
    """One step ``t >= 1`` of the current-based LIF neuron (docs/method.md section 3, 5-7).

    Args:
        current_in: synaptic input ``I[t]`` (already scaled by ``linear_scale``).
        c, u: synaptic current and membrane potential from step ``t - 1``.
        beta: constant injected current (enters the membrane every step).
        tau, v_threshold: time constant and firing threshold.
        surrogate: callable ``x -> spikes`` evaluated at ``u - v_threshold``.

    Returns:
        ``(spikes, current, membrane)``; the reset is not detached.

    Example:
        >>> from grsnn.functional import Sigmoid
        >>> z = torch.zeros(1)
        >>> s, c, u = lif_step(torch.ones(1), z, z, z, 4.0, 2.0, Sigmoid())
        >>> round(u.item(), 4)  # eps(0) = e / tau
        0.6796
    """
    a = math.exp(-1.0 / tau)
    c = (current_in * (math.e / tau)).add_(c, alpha=a)    # few temporaries: in-place on
    u = c.add(u, alpha=a).add_(beta)                       # fresh tensors autograd keeps none of
    s, u = fire(u, v_threshold, surrogate)
    return s, c, u


# --------------------------------------------------------------- fused (compiled) step
def _step_forward(current_in: Tensor, c: Tensor, u: Tensor, beta: Tensor, hist: Tensor,
                  acc_a: Optional[Tensor], acc_b: Optional[Tensor], tau: float,
                  v_threshold: float, scale: float):
    """The whole neuron-level work of a step as one elementwise function: LIF update
    (input scaled by ``scale``), fire, reset, bit history and (with ``acc_a``) the trace.
    Returns ``(s, c, u, v, hist, trace, A, B)``; ``v`` is the membrane before the reset."""
    a = math.exp(-1.0 / tau)
    k = math.e / tau
    c_new = current_in * (k * scale) + a * c
    v = c_new + a * u + beta
    fired = v >= v_threshold
    s = fired.to(v.dtype)
    u_new = torch.where(fired, torch.zeros_like(v), v)
    hist_new = (hist << 1) | fired.to(hist.dtype)
    if acc_a is None or acc_b is None:
        return s, c_new, u_new, v, hist_new, None, None, None
    new_b = (acc_b + acc_a) * a
    new_a = acc_a * a + s
    trace = new_a * (-k * (1.0 - 1.0 / tau)) + new_b * (k / tau)
    return s, c_new, u_new, v, hist_new, trace, new_a, new_b


def _step_backward(grad_s: Tensor, grad_c: Tensor, grad_u: Tensor, v: Tensor, tau: float,
                   v_threshold: float, scale: float, surrogate: Surrogate):
    """Gradients of :func:`_step_forward` w.r.t. ``(current_in, c, u, beta)``."""
    a = math.exp(-1.0 / tau)
    x = v - v_threshold
    ds = surrogate.derivative(x)
    grad_v = torch.where(x >= 0, torch.zeros_like(grad_u), grad_u) + ds * (grad_s - v * grad_u)
    grad_c_total = grad_c + grad_v
    return grad_c_total * (math.e / tau * scale), grad_c_total * a, grad_v * a, grad_v


class _Kernels:
    """``torch.compile`` versions of the engine's elementwise functions (the neuron step
    and its backward, the pair messages of :mod:`~grsnn.functional.propagation`), built on
    first use.

    Every combination of dtype, history dtype, trace on/off and size-1 dimensions is one
    specialisation; up to 64 are kept per function (dynamo's default is 8). If compiling
    fails before any kernel has worked (no C++ compiler, an unsupported backend), one
    warning and the same functions run eagerly from then on; a later failure (e.g. the
    specialisation limit) runs that call eagerly."""

    LIMIT = 64

    def __init__(self) -> None:
        self.compiled: dict = {}
        self.failed: Optional[str] = None
        self.worked = False
        self.warned = False

    def __call__(self, fn, *args):
        if self.failed is None:
            kernel = self.compiled.get(fn)
            if kernel is None:
                kernel = self.compiled[fn] = torch.compile(fn, dynamic=True, fullgraph=True)
            try:
                with torch._dynamo.config.patch(recompile_limit=self.LIMIT):
                    out = kernel(*args)
                self.worked = True
                return out
            except Exception as exc:  # compiler missing or backend error: run eagerly
                reason = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
                if not self.worked:
                    self.failed = reason
                if not self.warned:
                    self.warned = True
                    warnings.warn(f"grsnn: torch.compile of {fn.__name__} failed ({reason}); "
                                  "running the engine's kernels eagerly (same results, "
                                  "slower)", RuntimeWarning, stacklevel=2)
        return fn(*args)


_KERNELS = _Kernels()


class _StepConsts(NamedTuple):
    tau: float
    v_threshold: float
    scale: float
    surrogate: Surrogate
    compiled: bool


def _run(compiled: bool):
    return _KERNELS if compiled else (lambda fn, *args: fn(*args))


class _FusedStepFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, consts: _StepConsts, current_in, c, u, beta, hist,  # type: ignore[override]
                acc_a, acc_b):
        s, c_new, u_new, v, hist_new, trace, new_a, new_b = _run(consts.compiled)(
            _step_forward, current_in, c, u, beta, hist, acc_a, acc_b, consts.tau,
            consts.v_threshold, consts.scale)
        ctx.save_for_backward(v)
        ctx.consts = consts
        ctx.shapes = (current_in.shape, c.shape, u.shape, beta.shape)
        extra = [x for x in (hist_new, trace, new_a, new_b) if x is not None]
        ctx.mark_non_differentiable(*extra)
        return s, c_new, u_new, hist_new, trace, new_a, new_b

    @staticmethod
    def backward(ctx, grad_s, grad_c, grad_u, *_):  # type: ignore[override]
        (v,) = ctx.saved_tensors
        k = ctx.consts
        grads = _run(k.compiled)(_step_backward, grad_s.contiguous(), grad_c.contiguous(),
                                 grad_u.contiguous(), v, k.tau, k.v_threshold, k.scale,
                                 k.surrogate)
        grads = [g.sum_to_size(shape) if g.shape != shape else g
                 for g, shape in zip(grads, ctx.shapes)]
        return (None, *grads, None, None, None)


def lif_step_fused(current_in: Tensor, c: Tensor, u: Tensor, beta: Tensor, hist: Tensor,
                   tau: float, v_threshold: float, surrogate: Surrogate, scale: float = 1.0,
                   acc_a: Optional[Tensor] = None, acc_b: Optional[Tensor] = None,
                   compiled: bool = True):
    """One simulation step of a neuron population in one pass: :func:`lif_step` on
    ``scale * current_in``, the bit history (:func:`~grsnn.functional.push_history`) and,
    when ``acc_a`` and ``acc_b`` are given, the spike trace (:func:`trace_step`).

    Same values as those functions one after another (bit for bit with
    ``compiled=False``; compiled kernels may round the last bit of ``c`` and ``u``
    differently), but forward and backward are each one elementwise kernel
    (``torch.compile``) and autograd saves one tensor (the membrane before the reset). The
    surrogate must be a :class:`~grsnn.functional.Surrogate` (its ``derivative`` is
    compiled into the backward kernel). :func:`neuron_step` (``fused=True``) is the same
    step on a named :class:`NeuronState`.

    Returns:
        ``(spikes, current, membrane, hist, trace, A, B)`` (the last three ``None`` without
        ``acc_a``); only the first three carry gradients.

    Example:
        >>> from grsnn.functional import Sigmoid
        >>> z = torch.zeros(1)
        >>> out = lif_step_fused(torch.ones(1), z, z, z, torch.zeros(1, dtype=torch.uint8),
        ...                      4.0, 2.0, Sigmoid(), compiled=False)
        >>> round(out[2].item(), 4), out[3]   # eps(0) = e / tau; no spike yet
        (0.6796, tensor([0], dtype=torch.uint8))
    """
    if not isinstance(surrogate, Surrogate):
        raise TypeError("lif_step_fused needs a Surrogate (use lif_step for other callables)")
    if (acc_a is None) != (acc_b is None):
        raise ValueError("pass both acc_a and acc_b, or neither")
    consts = _StepConsts(float(tau), float(v_threshold), float(scale), surrogate,
                         bool(compiled))
    return tuple(_FusedStepFn.apply(consts, current_in, c, u, beta, hist, acc_a, acc_b))


def neuron_init(beta: Tensor, p: LIFParameters, hist_dtype: torch.dtype = torch.uint8,
                trace: bool = False) -> Tuple[Tensor, NeuronState]:
    """Step ``t = 0`` of a population (:func:`lif_init`) as ``(spikes, state)``: the bit
    history holds the first frame and, with ``trace=True``, the trace accumulators and
    ``tr[0]`` are started (no gradient).

    Example:
        >>> s, state = neuron_init(torch.tensor([2.5, 1.0]), LIFParameters())
        >>> s, state.lif.u, state.hist
        (tensor([1., 0.]), tensor([0., 1.]), tensor([1, 0], dtype=torch.uint8))
    """
    s, c, u = lif_init(beta, p.v_threshold, p.surrogate)
    hist = push_history(torch.zeros(beta.shape, dtype=hist_dtype, device=beta.device), s)
    acc = None
    if trace:
        zero = torch.zeros_like(beta)
        acc = _next_trace(s, TraceState(zero, zero), p.tau)
    return s, NeuronState(LIFState(c, u), hist, acc)


@torch.compiler.disable
def _next_trace(s: Tensor, acc: TraceState, tau: float) -> TraceState:
    """:func:`trace_step` on named state, without gradient. Kept out of ``torch.compile``
    graphs: traced into the graph that makes ``s``, the ``s.detach()`` leaves that
    graph's compiled backward without the gradient of ``s`` (torch 2.x)."""
    with torch.no_grad():
        tr, acc_a, acc_b = trace_step(s.detach(), acc.a, acc.b, tau)
    return TraceState(acc_a, acc_b, tr)


def neuron_step(current_in: Tensor, state: NeuronState, beta: Tensor, p: LIFParameters,
                scale: float = 1.0, fused: bool = False, compiled: bool = True
                ) -> Tuple[Tensor, NeuronState]:
    """One step ``t >= 1`` of a population on its named state, in the style of Norse's
    ``(spikes, state)`` steps: :func:`lif_step` on ``scale * current_in``, the bit history
    and, when ``state.trace`` is set, the spike trace (``state.trace.frame`` is ``tr[t]``).

    ``fused=True`` runs it as :func:`lif_step_fused` (one elementwise kernel forward and
    backward, compiled with ``compiled=True``; needs a :class:`Surrogate`), otherwise as
    the separate functions; the values are the same (bit for bit without compilation).

    Example:
        >>> z = torch.zeros(1)
        >>> state = NeuronState(LIFState(z, z), torch.zeros(1, dtype=torch.uint8))
        >>> s, state = neuron_step(torch.ones(1), state, z, LIFParameters())
        >>> round(state.lif.u.item(), 4), state.hist    # eps(0) = e / tau; no spike yet
        (0.6796, tensor([0], dtype=torch.uint8))
    """
    acc = state.trace
    if fused:
        s, c, u, hist, tr, acc_a, acc_b = lif_step_fused(
            current_in, state.lif.c, state.lif.u, beta, state.hist, p.tau, p.v_threshold,
            p.surrogate, scale, *((acc.a, acc.b) if acc is not None else (None, None)),
            compiled=compiled)
        return s, NeuronState(LIFState(c, u), hist,
                              None if acc is None else TraceState(acc_a, acc_b, tr))
    if scale != 1.0:
        current_in = current_in * scale
    s, c, u = lif_step(current_in, state.lif.c, state.lif.u, beta, p.tau, p.v_threshold,
                       p.surrogate)
    hist = push_history(state.hist, s)
    if acc is not None:
        acc = _next_trace(s, acc, p.tau)
    return s, NeuronState(LIFState(c, u), hist, acc)
