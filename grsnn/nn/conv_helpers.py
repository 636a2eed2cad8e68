"""Helpers of :class:`~grsnn.nn.SpikingDelayConv`: the graph input (:func:`as_edge_index`),
what one simulation shares, the pair order of the edges, and the layer's steps from the
aggregated input to the neuron current (bound to the layer as its private methods)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.utils import is_sparse, to_edge_index

from ..functional import DelayPlan
from ..functional.aggregation import pna_linear

__all__ = ["as_edge_index"]


def as_edge_index(adj) -> Tuple[Tensor, Optional[Tensor]]:
    """``(edge_index, edge_weight)`` of a graph given as ``edge_index`` ``[2, E]`` (weight
    ``None``), a sparse adjacency or a dense ``[N, N]`` adjacency (float or bool; an
    integer one only for ``N != 2``, where it cannot be an edge list). Adjacencies follow
    PyG's convention for sparse input, ``adj[target, source]`` (the transposed adjacency
    ``adj_t``, **not** ``to_dense_adj(edge_index)``, which is ``[source, target]``); their
    values are edge weights.

    Example:
        >>> ei, w = as_edge_index(torch.tensor([[0., 0.], [2., 0.]]))   # 0 -> 1, weight 2
        >>> ei.tolist(), w.tolist()
        ([[0], [1]], [2.0])
    """
    if (isinstance(adj, Tensor) and not is_sparse(adj) and adj.dim() == 2
            and adj.size(0) == adj.size(1)
            and (adj.is_floating_point() or adj.dtype == torch.bool or adj.size(0) != 2)):
        adj = adj.to_sparse()
    if not is_sparse(adj):
        return adj, None
    edge_index, weight = to_edge_index(adj)
    return edge_index.flip(0), weight


@dataclass
class _Run:
    """What every step of one :meth:`SpikingDelayConv.simulate` call shares."""

    num_nodes: int
    batch: int
    edge_index: Tensor
    edge_weight: Optional[Tensor]
    plan: DelayPlan
    edge_level: bool              # per-edge messages (explainer, edge-weight gradients)
    scales: Optional[Tensor]      # PNA degree scalers
    fuse: bool                    # compiled neuron step
    workspace: dict               # pair-level buffers reused by every step


def _pair_key(plan: DelayPlan) -> Tensor:
    """``source * R + relation`` of every edge: the order of the ``(source, relation)``
    pairs of a grouped plan, whether or not ``plan`` is grouped."""
    return (plan.src * plan.num_relations + plan.rel).index_select(0, plan.edge_pair)


def _current(self, lin_out: Tensor, fold: bool) -> Tuple[Tensor, float]:
    """The neuron input and the scale the neuron step applies to it: with ``fold``
    (fused step) ``linear_scale`` folds into the step unless a LayerNorm follows."""
    if fold and self.norm is None:
        return lin_out, self.linear_scale
    current = self.linear_scale * lin_out
    if self.norm is not None:
        current = self.norm(current)
    return current, 1.0


def _arrived(self, agg: Tensor, num_nodes: int, batch: int) -> Tensor:
    """``[N, B]``: whether any message arrived at a node this step (a non-zero sum,
    or a non-zero PNA mean)."""
    if self.aggregate_fn == "pna":
        agg = agg.view(num_nodes, batch, self.channels, 4)[..., 0]
    return (agg.view(num_nodes, batch, -1) != 0).any(-1)


def _linear(self, agg: Tensor, prev: Tensor, scales: Optional[Tensor], num_nodes: int,
            batch: int, reached: Optional[Tensor] = None) -> Tensor:
    """The linear layer on the aggregated input (and the previous spikes with
    ``self_connection``), ``[N, B, D]``. For PNA ``agg`` holds the four statistics and
    the degree scalers are folded into the product (:func:`pna_linear`): the
    ``12 D``-wide features are never built. ``reached`` (``[N, B]`` bool) gates the
    bias (``drive="reached"``)."""
    dim = self.channels
    bias = self.lin.bias if reached is None else None
    if (reached is not None and self.propagation != "dense" and self.aggregate_fn == "sum"
            and not torch.is_grad_enabled()):
        return self._linear_reached(agg, prev, num_nodes, batch, reached)
    if self.aggregate_fn != "pna":
        x = agg.view(num_nodes, batch, -1)
        if self.self_connection:
            x = torch.cat([prev.view(num_nodes, batch, dim), x], dim=-1)
        out = torch.nn.functional.linear(x, self.lin.weight, bias)
    else:
        weight = self.lin.weight
        own = dim if self.self_connection else 0
        out = pna_linear(agg, scales, weight[:, own:], bias)
        if self.self_connection:
            out = torch.addmm(out.view(-1, dim), prev.view(-1, dim), weight[:, :own].t())
        out = out.view(num_nodes, batch, dim)
    if reached is not None and self.lin.bias is not None:
        out = out + reached.unsqueeze(-1).to(out.dtype) * self.lin.bias
    return out


def _linear_reached(self, agg: Tensor, prev: Tensor, num_nodes: int, batch: int,
                    reached: Tensor) -> Tensor:
    """:meth:`_linear` with ``drive="reached"``, without gradient, on the reached rows
    only: an unreached row has no input (no message arrived, no spike of its own) and
    no bias, so its output is exactly zero and needs no work."""
    dim = self.channels
    x = agg.view(num_nodes * batch, -1)
    if self.self_connection:
        x = torch.cat([prev.view(num_nodes * batch, dim), x], dim=-1)
    rows = reached.view(-1).nonzero().squeeze(1)
    out = x.new_zeros(num_nodes * batch, dim)
    if rows.numel():
        part = torch.nn.functional.linear(x.index_select(0, rows), self.lin.weight)
        out.index_copy_(0, rows, part if self.lin.bias is None else part + self.lin.bias)
    return out.view(num_nodes, batch, dim)
