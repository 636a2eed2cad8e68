"""Surrogate spike functions.

The forward pass of every surrogate is the Heaviside step ``H(x) = 1 if x >= 0 else 0``
(so a membrane exactly at threshold fires); the backward pass replaces the Dirac delta
``H'(x)`` by a smooth pseudo-derivative. Surrogates are small classes in the style of
SpikingJelly / snnTorch; any callable ``f(x) -> spikes`` is accepted wherever a
surrogate is expected (see :func:`resolve_surrogate`).
"""
from __future__ import annotations

import math
from typing import Callable, Union

import torch
from torch import Tensor

__all__ = ["Surrogate", "Sigmoid", "ATan", "Triangle", "heaviside", "resolve_surrogate"]


def heaviside(x: Tensor) -> Tensor:
    """Heaviside step with ``H(0) = 1``, in the dtype of ``x`` (no gradient).

    Example:
        >>> heaviside(torch.tensor([-1.0, 0.0, 2.0]))
        tensor([0., 1., 1.])
    """
    return (x >= 0).to(x.dtype)


class _SpikeFn(torch.autograd.Function):
    """Heaviside forward, ``surrogate.derivative`` backward."""

    @staticmethod
    def forward(ctx, x: Tensor, surrogate: "Surrogate") -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(x), None


class Surrogate:
    """Base class: Heaviside forward, :meth:`derivative` backward.

    Subclasses implement :meth:`derivative`. Calling the object on ``x = u - V_th``
    returns the spikes (same dtype as ``x``) with the surrogate gradient attached.
    :attr:`support` bounds where the derivative can be non-zero: ``|x| < support``
    (``inf`` for the smooth surrogates).
    """

    support: float = math.inf

    def derivative(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return _SpikeFn.apply(x, self)
        return heaviside(x)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Sigmoid(Surrogate):
    r"""Sigmoid surrogate: :math:`H'(x) \approx \alpha\,\sigma(\alpha x)(1 - \sigma(\alpha x))`.

    Args:
        alpha (float): steepness (default ``4.0``, the GRSNN setting).

    Example:
        >>> x = torch.zeros(1, requires_grad=True)
        >>> Sigmoid(4.0)(x).sum().backward(); x.grad
        tensor([1.])
    """

    def __init__(self, alpha: float = 4.0) -> None:
        self.alpha = float(alpha)

    def derivative(self, x: Tensor) -> Tensor:
        sg = torch.sigmoid(self.alpha * x)
        return self.alpha * sg * (1.0 - sg)


class ATan(Surrogate):
    r"""Arctangent surrogate (SpikingJelly):
    :math:`H'(x) \approx \frac{\alpha}{2} / (1 + (\frac{\pi}{2}\alpha x)^2)`.

    Args:
        alpha (float): steepness (default ``2.0``).

    Example:
        >>> x = torch.zeros(1, requires_grad=True)
        >>> ATan(2.0)(x).sum().backward(); x.grad
        tensor([1.])
    """

    def __init__(self, alpha: float = 2.0) -> None:
        self.alpha = float(alpha)

    def derivative(self, x: Tensor) -> Tensor:
        return (self.alpha / 2.0) / (1.0 + (math.pi / 2.0 * self.alpha * x) ** 2)


class Triangle(Surrogate):
    r"""Triangular surrogate with compact support:
    :math:`H'(x) \approx \max(0,\ 1 - |x| / w) / w`, exactly zero for :math:`|x| \ge w`.

    A neuron whose membrane stays at least ``w`` from the threshold passes no gradient, so
    with ``w <= V_th`` a neuron at rest (``u = 0``) passes none: what lets a query-driven
    circuit train on the nodes its wave reached only (``GRSNN(query_sized=True)``).

    Args:
        width (float): half-width ``w`` of the support (default ``1.0``).

    Example:
        >>> x = torch.tensor([0.0, 0.5, -1.0], requires_grad=True)
        >>> Triangle(1.0)(x).sum().backward(); x.grad
        tensor([1.0000, 0.5000, 0.0000])
    """

    def __init__(self, width: float = 1.0) -> None:
        if not width > 0:
            raise ValueError(f"width must be positive, got {width}")
        self.width = float(width)
        self.support = self.width

    def derivative(self, x: Tensor) -> Tensor:
        return (1.0 - x.abs() / self.width).clamp(min=0.0) / self.width

    def __repr__(self) -> str:
        return f"Triangle(width={self.width})"


SurrogateLike = Union[Surrogate, Callable[[Tensor], Tensor], str, None]


def resolve_surrogate(surrogate: SurrogateLike) -> Callable[[Tensor], Tensor]:
    """Turn a surrogate specification into a callable ``x -> spikes``.

    ``None`` or ``"sigmoid"`` gives ``Sigmoid(4.0)``, ``"atan"`` gives ``ATan()``,
    ``"triangle"`` gives ``Triangle(1.0)``; a
    :class:`Surrogate` or any other callable is returned unchanged.

    Example:
        >>> resolve_surrogate("atan")
        ATan(alpha=2.0)
    """
    if surrogate is None:
        return Sigmoid()
    if isinstance(surrogate, str):
        table = {"sigmoid": Sigmoid, "atan": ATan, "triangle": Triangle}
        if surrogate.lower() not in table:
            raise ValueError(f"unknown surrogate {surrogate!r}; expected one of {sorted(table)}")
        return table[surrogate.lower()]()
    if not callable(surrogate):
        raise TypeError(f"surrogate must be callable, got {type(surrogate).__name__}")
    return surrogate
