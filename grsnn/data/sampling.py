"""Neighbour sampling for PyG's ``NeighborLoader`` without ``pyg-lib`` or ``torch-sparse``.

PyG's ``NeighborSampler`` runs its sampling in ``pyg-lib`` or ``torch-sparse``; neither has
wheels for every PyTorch build (none for torch 2.13 CPU on PyPI), and without them
``NeighborLoader`` stops with an ``ImportError``. :class:`TorchNeighborSampler` is the same
sampler with the sampling step written in plain torch (homogeneous graphs, directional
sampling, with or without replacement); pass it to ``NeighborLoader(...,
neighbor_sampler=...)`` and everything else (batch layout, ``n_id``, ``e_id``,
``batch_size``, edge attributes) is PyG's own. Where ``pyg-lib`` is installed, use PyG's
sampler: it is faster.
"""
from __future__ import annotations

import warnings
from typing import List, Optional

import torch
from torch import Tensor
from torch_geometric.sampler import NeighborSampler, SamplerOutput
from torch_geometric.sampler.base import SubgraphType

__all__ = ["TorchNeighborSampler"]


class TorchNeighborSampler(NeighborSampler):
    """PyG's ``NeighborSampler`` with a pure-torch sampling step (see the module text).

    For every hop ``k`` and every frontier node ``v`` it draws ``num_neighbors[k]`` of
    ``v``'s incoming edges (all of them if ``-1`` or if ``v`` has fewer and sampling is
    without replacement), adds their unseen sources to the batch in order of first
    appearance, and returns the edges as ``(source, target)`` in batch-local ids: the seeds
    are the first nodes, as in PyG.

    Example:
        >>> from torch_geometric.data import Data
        >>> from torch_geometric.loader import NeighborLoader
        >>> data = Data(x=torch.randn(4, 2), edge_index=torch.tensor([[1, 2, 3], [0, 0, 1]]))
        >>> sampler = TorchNeighborSampler(data, num_neighbors=[-1, -1])
        >>> loader = NeighborLoader(data, [-1, -1], batch_size=1, neighbor_sampler=sampler)
        >>> next(iter(loader)).n_id.tolist()       # node 0, its in-neighbours, theirs
        [0, 1, 2, 3]
    """

    def __init__(self, data, num_neighbors, replace: bool = False, **kwargs) -> None:
        with warnings.catch_warnings():     # "without pyg-lib is deprecated": that is the point
            warnings.simplefilter("ignore")
            super().__init__(data, num_neighbors, replace=replace, **kwargs)

    def _sample(self, seed: Tensor, seed_time: Optional[Tensor] = None, **kwargs
                ) -> SamplerOutput:
        if (isinstance(seed, dict) or self.disjoint or seed_time is not None
                or self.subgraph_type != SubgraphType.directional):
            raise NotImplementedError("TorchNeighborSampler samples homogeneous graphs "
                                      "directionally (no induced, bidirectional, disjoint or "
                                      "temporal sampling); install pyg-lib for those")
        colptr, row = self.colptr, self.row
        num_nodes = colptr.numel() - 1
        local = torch.full((num_nodes,), -1, dtype=torch.long)
        seed = seed.long()
        local[seed] = torch.arange(seed.numel())
        nodes: List[Tensor] = [seed]
        rows: List[Tensor] = []
        cols: List[Tensor] = []
        edges: List[Tensor] = []
        sampled_nodes, sampled_edges = [seed.numel()], []
        count, frontier = seed.numel(), seed
        for k in self.num_neighbors.get_mapped_values():
            start, stop = colptr[frontier], colptr[frontier + 1]
            deg = stop - start
            widest = int(deg.max()) if deg.numel() else 0
            if k < 0 or (not self.replace and widest <= k):
                take = deg                               # every incoming edge
                seg = torch.repeat_interleave(torch.arange(frontier.numel()), take)
                first = torch.cumsum(take, 0) - take
                pos = start[seg] + torch.arange(int(take.sum())) - first[seg]
            elif self.replace:
                has = deg > 0
                seg = torch.repeat_interleave(torch.arange(frontier.numel())[has], k)
                pick = (torch.rand(seg.numel()) * deg[seg]).long()
                pos = start[seg] + pick
            else:                                        # k distinct edges per node
                seg = torch.repeat_interleave(torch.arange(frontier.numel()), deg)
                first = torch.cumsum(deg, 0) - deg
                offset = torch.arange(int(deg.sum())) - first[seg]
                key = torch.rand(seg.numel()) + seg.to(torch.float64)   # sort within segments
                order = torch.argsort(key)
                rank = torch.empty_like(order)
                rank[order] = torch.arange(order.numel())
                keep = (rank - first[seg]) < k
                seg, pos = seg[keep], (start[seg] + offset)[keep]
            src = row[pos]
            new = torch.unique(src[local[src] < 0], sorted=False)
            if new.numel():                              # first appearance order
                firsts = torch.full((num_nodes,), src.numel(), dtype=torch.long)
                firsts.scatter_reduce_(0, src, torch.arange(src.numel()), "amin")
                new = new[torch.argsort(firsts[new])]
                local[new] = torch.arange(count, count + new.numel())
                count += new.numel()
                nodes.append(new)
            rows.append(local[src])
            cols.append(local[frontier[seg]])
            edges.append(pos)
            sampled_nodes.append(new.numel())
            sampled_edges.append(pos.numel())
            frontier = new
        empty = torch.zeros(0, dtype=torch.long)
        return SamplerOutput(node=torch.cat(nodes), row=torch.cat(rows) if rows else empty,
                             col=torch.cat(cols) if cols else empty,
                             edge=torch.cat(edges) if edges else empty, batch=None,
                             num_sampled_nodes=sampled_nodes, num_sampled_edges=sampled_edges)
