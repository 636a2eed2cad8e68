"""Message aggregations beyond the plain sum: PNA (GRSNN+ on FB15k-237)."""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.utils import scatter

__all__ = ["pna_scales", "pna_aggregate"]


def pna_scales(in_degree: Tensor) -> Tensor:
    """Degree scalers ``[N, 3]``: ``1``, ``s`` and ``1 / s`` with ``s = log(deg + 1)``
    normalised by its mean over the nodes (``1/s`` clamps ``s`` at ``1e-2``).

    Example:
        >>> pna_scales(torch.tensor([0., 1., 3.]))[:, 1]
        tensor([0.0000, 0.6667, 1.3333])
    """
    s = torch.log(in_degree + 1.0)
    s = s / s.mean().clamp(min=1e-12)
    return torch.stack([torch.ones_like(s), s, 1.0 / s.clamp(min=1e-2)], dim=-1)


def pna_aggregate(messages: Tensor, dst: Tensor, num_nodes: int, scales: Tensor,
                  channels: int, eps: float = 1e-6) -> Tensor:
    """PNA aggregation of edge messages: mean, max, min and std, each times 3 scalers.

    Args:
        messages: ``[E, B * D]`` edge messages.
        dst: ``[E]`` destination of every edge.
        num_nodes: ``N``.
        scales: ``[N, 3]`` from :func:`pna_scales`.
        channels: ``D`` (neurons per node and query).
        eps: floor under the variance before the square root.

    Returns:
        ``[N, B * 12 * D]``: per query, the ``12 D`` features ordered
        (scaler, statistic, neuron). Nodes without incoming edges get zeros
        (``sqrt(eps)`` for the std).

    Example:
        >>> m = torch.tensor([[1.], [0.]]); dst = torch.tensor([0, 0])
        >>> out = pna_aggregate(m, dst, 1, torch.ones(1, 3), 1)
        >>> out[0, :4]  # mean, max, min, std
        tensor([0.5000, 1.0000, 0.0000, 0.5000])
    """
    mean = scatter(messages, dst, 0, num_nodes, reduce="mean")
    sq_mean = scatter(messages * messages, dst, 0, num_nodes, reduce="mean")
    mx = scatter(messages, dst, 0, num_nodes, reduce="max")
    mn = scatter(messages, dst, 0, num_nodes, reduce="min")
    std = (sq_mean - mean * mean).clamp(min=eps).sqrt()
    n = num_nodes
    stats = torch.stack([mean, mx, mn, std], dim=-2)          # [N, 4, B*D]
    stats = stats.view(n, 4, -1, channels).transpose(1, 2)     # [N, B, 4, D]
    out = stats.unsqueeze(2) * scales.view(n, 1, 3, 1, 1)      # [N, B, 3, 4, D]
    return out.reshape(n, -1)
