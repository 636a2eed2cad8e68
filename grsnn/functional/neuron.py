r"""Current-based LIF neuron, its PSP kernel, the spike trace and the temporal readout.

State equations (METHOD section 3), with :math:`a = e^{-1/\tau}`:

.. math::
    c[t] &= a\,c[t-1] + \tfrac{e}{\tau} I[t] \\
    u[t] &= a\,u[t-1] + c[t] + \beta \\
    s[t] &= H(u[t] - V_{th}), \qquad u[t] \leftarrow u[t](1 - s[t])

A unit input at :math:`t_0` raises :math:`u` at :math:`t_0 + j` by the alpha kernel
:math:`\epsilon(j) = \tfrac{e}{\tau}(j + 1)e^{-j/\tau}`.
"""
from __future__ import annotations

import math
from typing import Callable, Tuple

import torch
from torch import Tensor

from .surrogate import Surrogate, heaviside

__all__ = [
    "fire",
    "lif_init",
    "lif_step",
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
    """One step ``t >= 1`` of the current-based LIF neuron (METHOD section 3, 5-7).

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


def alpha_kernel(j: Tensor, tau: float = 4.0) -> Tensor:
    r"""PSP kernel :math:`\epsilon(j) = \tfrac{e}{\tau}(j+1)e^{-j/\tau}` (0 for ``j < 0``).

    Example:
        >>> alpha_kernel(torch.arange(3.0)).round(decimals=3)
        tensor([0.6800, 1.0590, 1.2370])
    """
    j = j.to(torch.get_default_dtype()) if not j.is_floating_point() else j
    val = (math.e / tau) * (j + 1.0) * torch.exp(-j / tau)
    return torch.where(j >= 0, val, torch.zeros_like(val))


def alpha_kernel_derivative(j: Tensor, tau: float = 4.0) -> Tensor:
    r""":math:`\epsilon'(i) = \tfrac{e}{\tau}(1 - \tfrac{i+1}{\tau})e^{-i/\tau}` (0 for ``i < 0``).

    Example:
        >>> alpha_kernel_derivative(torch.tensor([0.0])).round(decimals=4)
        tensor([0.5097])
    """
    j = j.to(torch.get_default_dtype()) if not j.is_floating_point() else j
    val = (math.e / tau) * (1.0 - (j + 1.0) / tau) * torch.exp(-j / tau)
    return torch.where(j >= 0, val, torch.zeros_like(val))


def trace_step(spikes: Tensor, acc_a: Tensor, acc_b: Tensor, tau: float
               ) -> Tuple[Tensor, Tensor, Tensor]:
    r"""O(1) update of the spike trace :math:`tr[t] = -\sum_{j\le t} s[j]\,\epsilon'(t-j)`.

    ``A[t] = a A[t-1] + s[t]``, ``B[t] = a (B[t-1] + A[t-1])``,
    ``tr[t] = -(e/tau)((1 - 1/tau) A[t] - B[t] / tau)``. Pass zeros for ``A[-1]``, ``B[-1]``.

    Returns ``(trace, A, B)``.

    Example:
        >>> s = torch.ones(1); z = torch.zeros(1)
        >>> tr, A, B = trace_step(s, z, z, 4.0)
        >>> round(tr.item(), 4)  # -eps'(0)
        -0.5097
    """
    a = math.exp(-1.0 / tau)
    new_b = (acc_b + acc_a).mul_(a)
    new_a = (acc_a * a).add_(spikes)
    trace = (new_a * (-(math.e / tau) * (1.0 - 1.0 / tau))).add_(new_b, alpha=math.e / tau / tau)
    return trace, new_a, new_b


def readout_kernel(time_steps: int, decay: float = 0.95, dtype: torch.dtype | None = None,
                   device: torch.device | str | None = None) -> Tensor:
    r"""Temporal readout weights :math:`\kappa_t = \rho^t / \sum_{t'} \rho^{t'}`.

    Earlier spikes weigh more; the weights sum to one.

    Example:
        >>> readout_kernel(2, 0.5)
        tensor([0.6667, 0.3333])
    """
    w = decay ** torch.arange(time_steps, dtype=dtype or torch.get_default_dtype(), device=device)
    return w / w.sum()
