"""Pure, stateless building blocks of the spiking engine.

Neuron step functions, surrogate spike functions, the delayed relational propagation
with its custom autograd (exact spike gradient and trace-based delay gradient), the
spike trace recursion and the temporal readout kernel. The engine's steps take named
state in the style of Norse: :class:`NeuronState` (the :class:`LIFState` ``(c, u)``, the
bit history, the :class:`TraceState`) for :func:`neuron_step`, and a
:class:`SpikeWindow` with :class:`Synapses` for :func:`propagate_spikes`.
"""
from .aggregation import pna_aggregate, pna_linear, pna_scales, pna_statistics
from .neuron import (LIFParameters, LIFState, NeuronState, TraceState, alpha_kernel,
                     alpha_kernel_derivative, fire, lif_init, lif_step, lif_step_fused,
                     neuron_init, neuron_step, readout_kernel, trace_step)
from .propagation import (AUTO_CROSSOVER, PROPAGATIONS, DelayPlan, SpikeWindow, Synapses,
                          active_pairs, build_plan, delayed_gather, delayed_propagate,
                          gather_spikes, history_dtype, propagate_spikes, push_history)
from .surrogate import ATan, Sigmoid, Surrogate, Triangle, heaviside, resolve_surrogate

__all__ = [
    "ATan", "AUTO_CROSSOVER", "DelayPlan", "LIFParameters", "LIFState", "NeuronState",
    "PROPAGATIONS", "Sigmoid", "SpikeWindow", "Surrogate", "Synapses", "TraceState",
    "active_pairs", "alpha_kernel", "alpha_kernel_derivative", "build_plan",
    "delayed_gather", "delayed_propagate", "fire", "gather_spikes", "heaviside",
    "history_dtype", "lif_init", "lif_step", "lif_step_fused", "neuron_init",
    "neuron_step", "pna_aggregate", "pna_linear", "pna_scales", "pna_statistics",
    "propagate_spikes", "push_history", "readout_kernel", "resolve_surrogate",
    "trace_step", "Triangle",
]
