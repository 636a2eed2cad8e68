"""The graph structure of delayed propagation: the :class:`DelayPlan` of ``(source,
relation)`` pairs and its sparse operators (:func:`build_plan`), and the integer bit
history of the spike frames (:func:`history_dtype`, :func:`push_history`)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

__all__ = ["DelayPlan", "build_plan", "csr_tensor", "history_dtype", "push_history"]


@dataclass
class DelayPlan:
    """Precomputed graph structure for delayed propagation (built once per graph).

    Attributes:
        num_nodes: ``N``.
        num_relations: ``R`` (edge types, inverses included).
        src: ``[P]`` source node of every ``(source, relation)`` pair (sorted).
        rel: ``[P]`` relation of every pair.
        edge_pair: ``[E]`` pair of every edge.
        dst: ``[E]`` destination of every edge.
        adj: sparse CSR ``[N, P]``: ``adj[v, p]`` = summed weight of the edges of pair
            ``p`` into ``v``.
        adj_t: sparse CSR ``[P, N]``, the transpose of ``adj``.
        in_degree: ``[N]`` number of incoming edges (float).
    """

    num_nodes: int
    num_relations: int
    src: Tensor
    rel: Tensor
    edge_pair: Tensor
    dst: Tensor
    adj: Tensor
    adj_t: Tensor
    in_degree: Tensor
    weighted: bool = False

    @property
    def num_pairs(self) -> int:
        return int(self.src.numel())

    def operators(self, dtype: torch.dtype) -> tuple:
        """``(adj, adj_t)`` in ``dtype`` (converted once, then kept)."""
        if self.adj.dtype != dtype:
            self.adj, self.adj_t = self.adj.to(dtype), self.adj_t.to(dtype)
        return self.adj, self.adj_t

    def extreme_operators(self, dtype: torch.dtype) -> Optional[tuple]:
        """``(adj_sq, adj_ext)``: the pair-level operators that make edge-level statistics
        exact from pair messages (every edge of a pair carries the same message ``m``).

        ``adj_sq[v, p]`` sums the squared edge weights (``sum_e (w_e m)^2 = adj_sq m^2``);
        ``adj_ext[v, p]`` is the weight of *one* edge, so that a max / min reduction of
        ``adj_ext[v, p] * m_p`` over the pairs is the max / min over the edges. Without
        edge weights ``adj_ext`` is the pattern of ``adj`` with ones; with edge weights it
        is ``adj`` itself when no two edges share ``(source, relation, destination)``, and
        ``None`` otherwise (the caller falls back to edge-level messages).
        """
        key = ("extreme", dtype)
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            adj = self.operators(dtype)[0]
            crow, col, val = adj.crow_indices(), adj.col_indices(), adj.values()

            if not self.weighted:
                cache[key] = (adj, csr_tensor(crow, col, torch.ones_like(val), adj.shape))
            elif val.numel() == self.dst.numel():   # no duplicate edges: one weight each
                cache[key] = (csr_tensor(crow, col, val * val, adj.shape), adj)
            else:
                cache[key] = None
        return cache[key]


def csr_tensor(crow: Tensor, col: Tensor, values: Tensor, shape: tuple) -> Tensor:
    """A sparse CSR tensor from its parts, without the "CSR support is in beta" warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


def _csr(row: Tensor, col: Tensor, val: Tensor, shape: tuple) -> Tensor:
    coo = torch.sparse_coo_tensor(torch.stack([row, col]), val, shape,
                                  check_invariants=False).coalesce()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": it is what we use
        warnings.simplefilter("ignore", UserWarning)
        return coo.to_sparse_csr()


def build_plan(edge_index: Tensor, num_nodes: int, edge_type: Optional[Tensor] = None,
               num_relations: int = 1, edge_weight: Optional[Tensor] = None,
               group: bool = True, dtype: torch.dtype = torch.float32) -> DelayPlan:
    """Group the edges into ``(source, relation)`` pairs and build the sparse operators.

    Args:
        edge_index: ``[2, E]`` long, messages flow ``edge_index[0] -> edge_index[1]``.
        num_nodes: number of nodes ``N``.
        edge_type: ``[E]`` long in ``[0, num_relations)``; ``None`` means one relation.
        num_relations: number of edge types ``R``.
        edge_weight: optional ``[E]`` multiplicative edge weights (default 1).
        group: merge the edges that share ``(source, relation)`` (``False``: one pair
            per edge, the plain per-edge formulation).
        dtype: floating dtype of the sparse operators.

    Example:
        >>> ei = torch.tensor([[0, 0, 1], [1, 2, 2]])
        >>> plan = build_plan(ei, 3, torch.tensor([0, 0, 1]), num_relations=2)
        >>> plan.num_pairs  # (0, rel 0) feeds nodes 1 and 2; (1, rel 1) feeds node 2
        2
    """
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {list(edge_index.shape)}")
    device = edge_index.device
    src_e, dst_e = edge_index[0].long(), edge_index[1].long()
    num_edges = src_e.numel()
    if edge_type is None:
        edge_type = torch.zeros(num_edges, dtype=torch.long, device=device)
    edge_type = edge_type.long()
    if num_edges and (int(edge_type.min()) < 0 or int(edge_type.max()) >= num_relations):
        raise ValueError(f"edge_type must lie in [0, {num_relations}), got "
                         f"[{int(edge_type.min())}, {int(edge_type.max())}]")
    if num_edges and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"edge_index refers to node {int(edge_index.max())} but the graph "
                         f"has {num_nodes} nodes")
    if group:
        key = src_e * num_relations + edge_type
        uniq, edge_pair = torch.unique(key, return_inverse=True)
        src, rel = uniq // num_relations, uniq % num_relations
    else:
        edge_pair = torch.arange(num_edges, device=device)
        src, rel = src_e, edge_type
    num_pairs = src.numel()
    weight = (torch.ones(num_edges, dtype=dtype, device=device) if edge_weight is None
              else edge_weight.detach().to(dtype))
    adj = _csr(dst_e, edge_pair, weight, (num_nodes, num_pairs))
    adj_t = _csr(edge_pair, dst_e, weight, (num_pairs, num_nodes))
    in_degree = torch.zeros(num_nodes, dtype=dtype, device=device).index_add_(
        0, dst_e, torch.ones(num_edges, dtype=dtype, device=device))
    return DelayPlan(num_nodes, num_relations, src, rel, edge_pair, dst_e, adj, adj_t,
                     in_degree, weighted=edge_weight is not None)


def history_dtype(delay_bound: int) -> torch.dtype:
    """Smallest integer dtype whose bits hold ``delay_bound + 1`` spike frames.

    Example:
        >>> history_dtype(4)
        torch.uint8
    """
    if delay_bound < 0:
        raise ValueError(f"delay_bound must be >= 0, got {delay_bound}")
    if delay_bound <= 7:
        return torch.uint8
    if delay_bound <= 14:
        return torch.int16
    if delay_bound <= 30:
        return torch.int32
    raise ValueError(f"delay_bound must be <= 30, got {delay_bound}")


def push_history(hist: Tensor, spikes: Tensor) -> Tensor:
    """Shift a new spike frame into the bit history (bit 0 = newest frame).

    Example:
        >>> h = torch.zeros(2, dtype=torch.uint8)
        >>> h = push_history(push_history(h, torch.tensor([1., 0.])), torch.tensor([0., 1.]))
        >>> h  # node 0 fired one step ago, node 1 fired now
        tensor([2, 1], dtype=torch.uint8)
    """
    return (hist << 1) | spikes.detach().to(hist.dtype)
