"""The spike page of :func:`grsnn.shortest_paths` on a networkx graph: one neuron per node,
one spike wave (:func:`shortest_paths_page`)."""
from __future__ import annotations

from typing import Hashable, List, Optional, Sequence

import networkx as nx
import numpy as np
import torch
from torch import Tensor

from .page import SpikePage
from .subgraph import _flights, _induced, _layout, _select


def shortest_paths_page(G: nx.Graph, source: Hashable, weight: str = "weight",
                        resolution: float = 1.0, targets: Optional[Sequence[Hashable]] = None,
                        max_nodes: int = 300, max_flights: int = 3000) -> SpikePage:
    """The page of :func:`grsnn.shortest_paths` from ``source``: one neuron per node, one
    spike wave; a node lights up at its first spike, which is its distance.

    The subgraph holds the source, the ``targets`` and their shortest paths (default: the
    five farthest shown nodes), then the nodes in the order the wave reaches them, up to
    ``max_nodes``. The paths follow, from each node back, the synapse whose spike arrived
    first (the wave's tree, drawn in orange).

    Example:
        >>> page = shortest_paths_page(nx.path_graph(4), 0)
        >>> page.steps, int(page.lit(1).sum())
        (4, 2)
    """
    from ..paths import compile_circuit, first_spike_times, hop_distances
    if not isinstance(G, nx.Graph):
        raise TypeError(f"expected a networkx graph, got {type(G).__name__}")
    if source not in G:
        raise nx.NodeNotFound(f"source {source!r} is not in the graph")
    nodes, ptr, dst_all, delay = compile_circuit(G, weight, resolution)
    n_all = len(nodes)
    s = nodes.index(source)
    first_t, parent_t, _ = first_spike_times(ptr, dst_all, delay, s)
    src_all = torch.repeat_interleave(torch.arange(n_all), ptr[1:] - ptr[:-1])
    ei = torch.stack([src_all, dst_all])
    hops = hop_distances(ei, n_all, s).numpy().astype(np.int64)
    first = first_t.numpy().astype(np.int64)
    parent = parent_t.tolist()
    steps = int(first.max()) + 1
    names = [str(v) for v in nodes]

    wave = sorted(range(n_all), key=lambda v: (first[v] < 0, first[v], v))
    goal = _wave_goal(nodes, wave, first, targets, max_nodes)
    goal_paths = [_chain(parent, v) for v in goal if first[v] >= 0]
    chosen = _select(wave, [s] + [v for p in goal_paths for v in p] + goal, max(max_nodes, 1))
    tree = _wave_tree(ei, parent, first_t, delay, goal_paths)
    chosen_set = set(chosen)
    eid, src, dst = _induced(ei, chosen, n_all, tree, 10 * max_nodes)
    eids = eid.tolist()
    fire, d_np, flights = _wave_firing(first, chosen, delay, eid, src, tree, steps, max_flights)
    return _wave_spike_page(s, n_all, ei, resolution, names, first, hops, wave, goal,
                            goal_paths, chosen, chosen_set, tree, eids, src, dst, fire, d_np,
                            flights)


def _chain(parent: List[int], v: int) -> List[int]:
    """The path of the wave's tree from the source to ``v`` (``parent``: -1 at the root)."""
    out = [v]
    while parent[out[-1]] >= 0:
        out.append(parent[out[-1]])
    return out[::-1]


def _wave_goal(nodes: list, wave: List[int], first: np.ndarray,
               targets: Optional[Sequence[Hashable]], max_nodes: int) -> List[int]:
    """The ids of the ``targets`` (default: the five farthest shown nodes)."""
    if targets is None:
        shown = [v for v in wave if first[v] >= 0][:max_nodes]
        goal = sorted(shown, key=lambda v: (-first[v], v))[:5]
    else:
        index = {v: i for i, v in enumerate(nodes)}
        missing = [t for t in targets if t not in index]
        if missing:
            raise nx.NodeNotFound(f"targets {missing!r} are not in the graph")
        goal = [index[t] for t in targets]
    return goal


def _wave_tree(ei: Tensor, parent: List[int], first_t: Tensor, delay: Tensor,
               goal_paths: List[List[int]]) -> Tensor:
    """Per edge: 2 on a path to a target, 1 elsewhere on the wave's tree, 0 off it."""
    tree = torch.zeros(ei.size(1), dtype=torch.float64)
    par = torch.tensor(parent)
    is_tree = (par[ei[1]] == ei[0]) & (first_t[ei[1]] == first_t[ei[0]] + delay)
    on_goal = {(p[i], p[i + 1]) for p in goal_paths for i in range(len(p) - 1)}
    for e in is_tree.nonzero().flatten().tolist():
        u, v = int(ei[0, e]), int(ei[1, e])
        tree[e] = 2.0 if (u, v) in on_goal else 1.0
    return tree


def _wave_firing(first: np.ndarray, chosen: List[int], delay: Tensor, eid: Tensor,
                 src: Tensor, tree: Tensor, steps: int, max_flights: int):
    """Firing per step and displayed node, the delays as numpy and the spikes in flight."""
    eids = eid.tolist()
    # one wave: every node fires once, at its distance
    cf = first[chosen]
    fire = (np.arange(steps)[:, None] == cf[None, :]).astype(np.int64)
    d_np = delay.numpy().astype(np.int64)
    k = int(d_np[eids].max()) + 1 if eids else 1
    sends = np.zeros((steps, len(eids), k), dtype=np.int64)
    src_np, e_np = src.numpy(), np.array(eids, dtype=np.int64)
    sent = cf[src_np] if len(eids) else np.zeros(0, dtype=np.int64)
    ok = (sent >= 0) & (d_np[e_np] > 0) if len(eids) else np.zeros(0, dtype=bool)
    sends[sent[ok], np.nonzero(ok)[0], d_np[e_np[ok]]] = 1
    flights = _flights(sends, np.arange(k), steps, tree[eid].numpy(), max_flights)
    return fire, d_np, flights


def _wave_spike_page(s: int, n_all: int, ei: Tensor, resolution: float, names: List[str],
                     first: np.ndarray, hops: np.ndarray, wave: List[int], goal: List[int],
                     goal_paths: List[List[int]], chosen: List[int], chosen_set, tree: Tensor,
                     eids: List[int], src: Tensor, dst: Tensor, fire: np.ndarray,
                     d_np: np.ndarray, flights: List[np.ndarray]) -> SpikePage:
    """The :class:`SpikePage` of the wave from the pieces :func:`shortest_paths_page`
    computed."""
    goal_set = set(goal)
    path_nodes = {v for p in goal_paths for v in p}
    roles = ["source" if v == s else "target" if v in goal_set else
             "path" if v in path_nodes else "" for v in chosen]
    notes = [f"first spike = distance: {'step ' + str(first[v]) if first[v] >= 0 else 'never'}"
             f", hops: {hops[v] if hops[v] >= 0 else 'unreachable'}" for v in chosen]
    edge_text = [f"delay {int(d_np[e])}" + (" (the wave's tree)" if tree[e] > 0 else "")
                 for e in eids]
    local_e = {e: i for i, e in enumerate(eids)}
    nearest = [v for v in wave if first[v] > 0][:10]
    values, counts = np.unique(d_np, return_counts=True)
    unreached = int((first < 0).sum())
    return SpikePage(
        title=f"shortest paths from {names[s]} as one spike wave ({n_all} nodes, "
              f"{ei.size(1)} synapses)",
        description=(f"One neuron per node; an edge of weight w is a synapse of delay "
                     f"round(w / {resolution:g}) steps. The source fires at step 0 and every "
                     f"neuron fires once, on the first spike that reaches it: its first-spike "
                     f"step is its distance (Dijkstra's frontier, step by step). Red dots are "
                     f"spikes in flight; orange edges carried the first spike to their node. "
                     f"{len(chosen)} of {n_all} nodes are shown, in the order the wave reaches "
                     f"them; {unreached} nodes are never reached."),
        names=[names[v] for v in chosen], ids=chosen, roles=roles, notes=notes,
        pos=_layout(len(chosen), src.numpy(), dst.numpy(), 0,
                    chosen.index(goal[0]) if goal and goal[0] in chosen_set else None),
        src=src.numpy(), dst=dst.numpy(), edge_labels=edge_text,
        path_edges=sorted(local_e[e] for e in eids if tree[e] > 0),
        fire=fire, neurons=1, flights=flights,
        answers=[(names[v], float(first[v]), "target" if v in goal_set else "")
                 for v in nearest],
        answers_title="the nearest nodes: first spike step = distance",
        paths=[(" \u2192 ".join(names[v] for v in p), float(first[p[-1]])) for p in goal_paths],
        paths_title="shortest paths to the targets (value: length = first spike step)",
        delay_rows=[str(int(v)) for v in values], delays=counts.astype(np.int64),
        delays_title="synaptic delays of the circuit (edge weights in steps)",
        first=first, hops=hops, query={"source": s})
