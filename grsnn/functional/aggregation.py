"""Message aggregations beyond the plain sum: PNA (GRSNN+ on FB15k-237)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch_geometric.utils import scatter

from .propagation import csr_tensor

__all__ = ["pna_scales", "pna_aggregate", "pna_features", "pna_statistics", "pna_extreme",
           "pna_linear"]


def pna_scales(in_degree: Tensor) -> Tensor:
    """Degree scalers ``[N, 3]``: ``1``, ``s`` and ``1 / s`` with ``s = log(deg + 1)``
    normalised by its mean over the nodes (``1/s`` clamps ``s`` at ``1e-2``).

    Example:
        >>> pna_scales(torch.tensor([0., 1., 3.]))[:, 1]      # log 1, log 2, log 4 over log 2
        tensor([0., 1., 2.])
    """
    s = torch.log(in_degree + 1.0)
    s = s / s.mean().clamp(min=1e-12)
    return torch.stack([torch.ones_like(s), s, 1.0 / s.clamp(min=1e-2)], dim=-1)


def pna_extreme(csr: Tensor, x: Tensor, reduce: str) -> Tensor:
    """Row-wise max / min of ``csr[v, j] * x[j]`` over the stored entries (0 for an empty
    row). The gradient goes to the *first* maximal entry of the row (storage order), as
    torch_scatter's ``scatter_max`` (the reference code's) does. On the CPU this is
    PyTorch's sparse reduce kernel; elsewhere (no such kernel) :func:`_extreme_dense`
    computes the same values and gradient from the entries."""
    if csr.device.type != "cpu":   # the reduce kernels are CPU-only
        return _extreme_dense(csr, x, reduce)
    return torch.sparse.mm(csr, x, reduce)


def _extreme_dense(csr: Tensor, x: Tensor, reduce: str) -> Tensor:
    """:func:`pna_extreme` from the ``[nnz, C]`` entries (any device): scatter-reduce for
    the values; the backward sends each ``(row, column)``'s gradient to the first entry
    of the row that attains the extreme. Saves only that entry's index per ``(row,
    column)``; the operator's values get no gradient (graph structure)."""
    coo = csr.to_sparse_coo().coalesce()      # (row, column) order = the CSR storage order
    row, col = coo.indices()
    return _ExtremeFn.apply(x, row, col, coo.values().detach(), csr.size(0), reduce)


class _ExtremeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, row, col, val, num_rows, reduce):  # type: ignore[override]
        nnz, cols = row.numel(), x.size(1)
        vals = val.to(x.dtype).unsqueeze(1) * x.index_select(0, col)
        index = row.unsqueeze(1).expand(nnz, cols)
        start = -torch.inf if reduce == "amax" else torch.inf
        out = x.new_full((num_rows, cols), start).scatter_reduce_(0, index, vals, reduce)
        empty = torch.bincount(row, minlength=num_rows) == 0
        out.masked_fill_(empty.unsqueeze(1), 0.0)
        # the first entry (storage order) attaining the extreme, per (row, column)
        hit = vals == out.index_select(0, row)
        pos = torch.arange(nnz, device=x.device).unsqueeze(1).expand(nnz, cols)
        first = torch.full((num_rows, cols), nnz, dtype=torch.long, device=x.device)
        first.scatter_reduce_(0, index, torch.where(hit, pos, nnz), "amin")
        ctx.save_for_backward(first, col, val)
        ctx.x_shape = x.shape
        return out

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        first, col, val = ctx.saved_tensors
        nnz = col.numel()
        grad_x = grad_out.new_zeros(ctx.x_shape)
        if nnz:
            entry = first.clamp(max=nnz - 1)
            contrib = torch.where(first < nnz, grad_out * val.to(grad_out.dtype)[entry], 0.0)
            grad_x.scatter_add_(0, col[entry], contrib)
        return grad_x, None, None, None, None, None


def pna_statistics(total: Tensor, total_sq: Tensor, mx: Tensor, mn: Tensor,
                   in_degree: Tensor, eps: float = 1e-6) -> Tensor:
    """The four PNA statistics (mean, max, min, std) of the messages into every node from
    their sums, sums of squares, maxima and minima (``[N, B * D]`` each) and the
    in-degrees ``[N]``: ``[N, B * D * 4]`` ordered (neuron, statistic) per query, the
    layout :func:`pna_linear` reads without a copy."""
    deg = in_degree.clamp(min=1).unsqueeze(1).to(total.dtype)
    mean, sq_mean = total / deg, total_sq / deg
    std = (sq_mean - mean * mean).clamp(min=eps).sqrt()
    return torch.stack([mean, mx, mn, std], dim=-1).view(total.size(0), -1)


def pna_features(total: Tensor, total_sq: Tensor, mx: Tensor, mn: Tensor, in_degree: Tensor,
                 scales: Tensor, channels: int, eps: float = 1e-6) -> Tensor:
    """PNA features from the sums, sums of squares, maxima and minima of the messages
    into every node (``[N, B * D]`` each) and the in-degrees ``[N]``: ``[N, B * 12 * D]``
    ordered (scaler, statistic, neuron) per query."""
    n = total.size(0)
    stats = pna_statistics(total, total_sq, mx, mn, in_degree, eps)
    stats = stats.view(n, -1, channels, 4).transpose(2, 3)      # [N, B, 4, D]
    out = stats.unsqueeze(2) * scales.view(n, 1, 3, 1, 1)      # [N, B, 3, 4, D]
    return out.reshape(n, -1)


def pna_linear(stats: Tensor, scales: Tensor, weight: Tensor,
               bias: Optional[Tensor] = None) -> Tensor:
    """``Linear(12 D -> D)`` applied to the PNA features without building them.

    The features of a node are its four statistics times each of its three degree
    scalers, so ``W x = sum_k scale_k (W_k stats)``: one ``4 D -> 3 D`` product and two
    scaled additions instead of materialising the ``12 D``-wide features (and their
    gradient) at every step.

    Args:
        stats: ``[N, B * D * 4]`` from :func:`pna_statistics`.
        scales: ``[N, 3]`` from :func:`pna_scales`.
        weight: ``[D_out, 12 D]``, columns ordered as :func:`pna_features` (scaler,
            statistic, neuron).
        bias: optional ``[D_out]``.

    Returns:
        ``[N, B, D_out]``, equal to ``F.linear(features, weight, bias)`` on the features
        :func:`pna_features` builds.
    """
    n = stats.size(0)
    d_out, width = weight.shape
    d = width // 12
    # rows (scaler, out), columns (neuron, statistic) as the stats are laid out
    w = weight.view(d_out, 3, 4, d).permute(1, 0, 3, 2).reshape(3 * d_out, 4 * d)
    y = torch.mm(stats.view(-1, 4 * d), w.t()).view(n, -1, 3, d_out)
    s = scales.to(y.dtype).view(n, 1, 3, 1)
    out = y[:, :, 0] * s[:, :, 0]
    out = torch.addcmul(out, y[:, :, 1], s[:, :, 1])
    out = torch.addcmul(out, y[:, :, 2], s[:, :, 2])
    return out if bias is None else out + bias


def pna_aggregate(messages: Tensor, dst: Tensor, num_nodes: int, scales: Optional[Tensor],
                  channels: int, eps: float = 1e-6, order: Optional[Tensor] = None,
                  scaled: bool = True) -> Tensor:
    """PNA aggregation of edge messages: mean, max, min and std, each times 3 scalers.

    Args:
        messages: ``[E, B * D]`` edge messages.
        dst: ``[E]`` destination of every edge.
        num_nodes: ``N``.
        scales: ``[N, 3]`` from :func:`pna_scales`.
        channels: ``D`` (neurons per node and query).
        eps: floor under the variance before the square root.
        order: optional ``[E]`` key: among the edges into a node whose messages tie for
            the max (min), the gradient goes to the one with the smallest key (default:
            the smallest edge index), as the reference code's ``scatter_max`` does.
        scaled: ``False`` returns the statistics of :func:`pna_statistics` (``[N, B *
            D * 4]``, for :func:`pna_linear`) instead of the scaled features.

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
    num_edges = dst.numel()
    key = torch.arange(num_edges, device=dst.device) if order is None else order.long()
    # edges grouped by destination, then by key: the CSR rows of a [N, E] operator
    perm = torch.argsort(dst.long() * (int(key.max()) + 1 if num_edges else 1) + key,
                         stable=True)
    counts = torch.bincount(dst, minlength=num_nodes)
    crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    csr = csr_tensor(crow, torch.arange(num_edges, device=dst.device),
                     messages.new_ones(num_edges), (num_nodes, num_edges))
    sorted_msg = messages.index_select(0, perm)
    total = scatter(messages, dst, 0, num_nodes, reduce="sum")
    total_sq = scatter(messages * messages, dst, 0, num_nodes, reduce="sum")
    mx, mn = pna_extreme(csr, sorted_msg, "amax"), pna_extreme(csr, sorted_msg, "amin")
    in_degree = counts.to(messages.dtype)
    if not scaled:
        return pna_statistics(total, total_sq, mx, mn, in_degree, eps)
    return pna_features(total, total_sq, mx, mn, in_degree, scales, channels, eps)
