r"""The temporal kernels of the neuron: the PSP (alpha) kernel and its derivative, the
O(1) spike-trace recursion and the temporal readout weights (docs/method.md section 3)."""
from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import Tensor

__all__ = ["alpha_kernel", "alpha_kernel_derivative", "trace_step", "readout_kernel"]


def alpha_kernel(j: Tensor, tau: float = 4.0) -> Tensor:
    r"""PSP kernel :math:`\epsilon(j) = \tfrac{e}{\tau}(j+1)e^{-j/\tau}` (0 for ``j < 0``).

    Example:
        >>> alpha_kernel(torch.arange(3.0)).round(decimals=4)
        tensor([0.6796, 1.0585, 1.2365])
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
