"""The subgraph a spike page shows and its animation data: which nodes (:func:`_select`) and
edges (:func:`_induced`), where they sit (:func:`_layout`) and the spikes in flight per step
(:func:`_flights`)."""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor


def _layout(n: int, src: np.ndarray, dst: np.ndarray, source: int,
            target: Optional[int]) -> np.ndarray:
    """Radial layout of the breadth-first tree from ``source``: ring ``k`` holds the nodes
    ``k`` hops away (undirected), every subtree gets an angle in proportion to its leaves,
    and the tree is turned so that ``target`` lies to the right of the source; nodes the
    tree does not reach sit on one more ring."""
    adj: List[List[int]] = [[] for _ in range(n)]
    for u, v in zip(src.tolist(), dst.tolist()):
        if u != v:
            adj[u].append(v)
            adj[v].append(u)
    depth = [-1] * n
    children: List[List[int]] = [[] for _ in range(n)]
    depth[source] = 0
    queue = [source]
    for u in queue:
        for v in sorted(set(adj[u])):
            if depth[v] < 0:
                depth[v] = depth[u] + 1
                children[u].append(v)
                queue.append(v)
    leaves = [1] * n
    for u in reversed(queue):
        if children[u]:
            leaves[u] = sum(leaves[c] for c in children[u])
    angle = [0.0] * n
    stack = [(source, 0.0, 2 * math.pi)]
    while stack:
        u, lo, hi = stack.pop()
        angle[u] = (lo + hi) / 2
        at = lo
        for c in children[u]:
            share = (hi - lo) * leaves[c] / leaves[u]
            stack.append((c, at, at + share))
            at += share
    rest = [v for v in range(n) if depth[v] < 0]
    outer = max(depth) + 1
    for i, v in enumerate(rest):
        depth[v], angle[v] = outer, 2 * math.pi * i / len(rest)
    turn = -angle[target] if target is not None and depth[target] > 0 else 0.0
    pos = np.array([[d * math.cos(a + turn), d * math.sin(a + turn)]
                    for d, a in zip(depth, angle)], dtype=np.float64)
    return pos.reshape(n, 2)


def _select(order: Sequence[int], must: Sequence[int], limit: int) -> List[int]:
    """``must`` first, then ``order``, without repeats, at most ``limit`` nodes."""
    chosen: List[int] = []
    seen = set()
    for v in list(must) + list(order):
        if v not in seen:
            seen.add(v)
            chosen.append(v)
            if len(chosen) == limit:
                break
    return chosen


def _induced(edge_index: Tensor, chosen: List[int], num_nodes: int, priority: Tensor,
             max_edges: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Edges between chosen nodes, best ``priority`` first (at most ``max_edges``):
    ``(edge ids, local src, local dst)``."""
    local = torch.full((num_nodes,), -1, dtype=torch.long)
    local[torch.tensor(chosen, dtype=torch.long)] = torch.arange(len(chosen))
    ls, ld = local[edge_index[0]], local[edge_index[1]]
    eid = ((ls >= 0) & (ld >= 0)).nonzero().flatten()
    eid = eid[torch.argsort(priority[eid], descending=True, stable=True)][:max_edges]
    return eid, ls[eid], ld[eid]


def _flights(sends: np.ndarray, travel: np.ndarray, steps: int, priority: np.ndarray,
             max_per_step: int) -> List[np.ndarray]:
    """Spikes in flight per step. ``sends[s, e, k]``: spikes sent at step ``s`` along edge
    ``e`` that travel ``travel[k]`` steps (rows ``(edge, sent, travel, count)``), shown
    at steps ``sent .. sent + travel - 1``; edges of higher ``priority`` first."""
    rank = np.empty_like(priority)
    rank[np.argsort(-priority, kind="stable")] = np.arange(len(priority))
    s_idx, e_idx, k_idx = np.nonzero(sends)
    counts = sends[s_idx, e_idx, k_idx]
    trav = travel[k_idx]
    out = []
    for t in range(steps):
        live = (s_idx <= t) & (t < s_idx + trav)
        rows = np.stack([e_idx[live], s_idx[live], trav[live], counts[live]], 1)
        rows = rows[np.argsort(rank[rows[:, 0]], kind="stable")][:max_per_step]
        out.append(rows.astype(np.int64))
    return out
