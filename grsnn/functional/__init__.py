"""Pure, stateless building blocks of the spiking engine.

Neuron step functions, surrogate spike functions, the delayed relational propagation
with its custom autograd (exact spike gradient and trace-based delay gradient), the
spike trace recursion and the temporal readout kernel.
"""
from .aggregation import pna_aggregate, pna_linear, pna_scales, pna_statistics
from .neuron import (alpha_kernel, alpha_kernel_derivative, fire, lif_init, lif_step,
                     lif_step_fused, readout_kernel, trace_step)
from .propagation import (AUTO_CROSSOVER, PROPAGATIONS, DelayPlan, active_pairs, build_plan,
                          delayed_gather, delayed_propagate, history_dtype, push_history)
from .surrogate import ATan, Sigmoid, Surrogate, heaviside, resolve_surrogate

__all__ = [
    "ATan", "AUTO_CROSSOVER", "DelayPlan", "PROPAGATIONS", "active_pairs", "Sigmoid",
    "Surrogate", "alpha_kernel", "alpha_kernel_derivative",
    "build_plan", "delayed_gather", "fire", "delayed_propagate", "heaviside", "history_dtype",
    "lif_init", "lif_step", "lif_step_fused", "pna_aggregate", "pna_linear", "pna_scales",
    "pna_statistics", "push_history",
    "readout_kernel", "resolve_surrogate", "trace_step",
]
