"""Exact shortest paths computed by a spiking circuit (the classical result GRSNN generalises).

A graph is compiled into a circuit with one neuron per node; every edge is a synapse whose
integer delay is the edge weight, and every neuron fires once, on the first spike that
reaches it. A spike of the source at ``t = 0`` starts one wave; the first-spike time of a
node is its distance from the source, and following, from each node, the synapse whose
spike arrived first gives a shortest path.

The circuit is simulated event-driven and vectorised: only the times at which some neuron
fires are visited, and at each of them the firing neurons send along their out-edges at
once (each edge carries one spike in the whole run).
"""
from __future__ import annotations

import math
from typing import Dict, Hashable, List, Tuple

import networkx as nx
import torch

__all__ = ["compile_circuit", "first_spike_times", "hop_distances", "shortest_path_lengths",
           "shortest_paths"]


def compile_circuit(G: nx.Graph, weight: str = "weight", resolution: float = 1.0
                    ) -> Tuple[List[Hashable], torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nodes and CSR synapses ``(nodes, ptr, dst, delay)`` of ``G``.

    Delays are ``round(w / resolution)`` steps (a missing weight counts 1); undirected graphs
    get a synapse in each direction; of parallel edges the shortest counts.

    Raises:
        TypeError: ``G`` is not a networkx graph.
        ValueError: a negative, NaN or infinite weight, or a bad resolution.
    """
    if not isinstance(G, nx.Graph):
        raise TypeError(f"expected a networkx graph, got {type(G).__name__}")
    if not (resolution > 0 and math.isfinite(resolution)):
        raise ValueError(f"resolution must be a positive number, got {resolution!r}")
    nodes = list(G.nodes)
    index = {v: i for i, v in enumerate(nodes)}
    src, dst, w = [], [], []
    for u, v, data in G.edges(data=True):
        x = data.get(weight, 1)
        try:
            x = float(x)
        except (TypeError, ValueError):
            raise ValueError(f"edge ({u!r}, {v!r}): weight {x!r} is not a number") from None
        if not math.isfinite(x) or x < 0:
            raise ValueError(f"edge ({u!r}, {v!r}): weight {x!r} must be finite and >= 0 "
                             f"(negative weights have no spiking shortest-path semantics)")
        src.append(index[u])
        dst.append(index[v])
        w.append(x)
        if not G.is_directed():
            src.append(index[v])
            dst.append(index[u])
            w.append(x)
    src_t = torch.tensor(src, dtype=torch.long)
    dst_t = torch.tensor(dst, dtype=torch.long)
    delay = torch.round(torch.tensor(w, dtype=torch.float64) / resolution).long()
    order = torch.argsort(src_t, stable=True)
    counts = torch.bincount(src_t, minlength=len(nodes))
    ptr = torch.zeros(len(nodes) + 1, dtype=torch.long)
    ptr[1:] = counts.cumsum(0)
    return nodes, ptr, dst_t[order], delay[order]


def first_spike_times(ptr: torch.Tensor, dst: torch.Tensor, delay: torch.Tensor, source: int
                      ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Event-driven simulation of the one-wave circuit.

    Returns ``(first, parent, wave)``: first-spike step of every neuron (``-1``: never
    fires), the neuron whose spike arrived first (``-1`` for the source and silent neurons)
    and the index of the simulation event at which it fired (parents fire at earlier events,
    also across zero-delay synapses).
    """
    n = ptr.numel() - 1
    big = torch.iinfo(torch.long).max
    arrival = torch.full((n,), big, dtype=torch.long)
    parent = torch.full((n,), -1, dtype=torch.long)
    fired = torch.zeros(n, dtype=torch.bool)
    wave = torch.full((n,), -1, dtype=torch.long)    # event at which a neuron fired
    arrival[source] = 0
    now, event = 0, 0
    while True:
        pending = torch.where(fired, big, arrival)
        now = int(pending.min())
        if now == big:
            break
        firing = (pending == now).nonzero().flatten()
        fired[firing] = True
        wave[firing] = event
        event += 1
        counts = ptr[firing + 1] - ptr[firing]
        if int(counts.sum()) == 0:
            continue
        start = torch.repeat_interleave(ptr[firing], counts)
        offset = torch.arange(int(counts.sum())) - torch.repeat_interleave(
            counts.cumsum(0) - counts, counts)
        edge = start + offset
        targets, when = dst[edge], now + delay[edge]
        senders = torch.repeat_interleave(firing, counts)
        keep = ~fired[targets] & (when < arrival[targets])
        targets, when, senders = targets[keep], when[keep], senders[keep]
        if targets.numel():
            # earliest arrival per target; among equal arrivals the lowest sender wins
            key = when * n + senders
            best = torch.full((n,), big, dtype=torch.long).scatter_reduce(
                0, targets, key, reduce="amin", include_self=True)
            hit = best[targets] == key
            arrival[targets[hit]] = when[hit]
            parent[targets[hit]] = senders[hit]
    first = torch.where(fired, arrival, torch.full_like(arrival, -1))
    return first, parent, wave


def _run(G: nx.Graph, source: Hashable, weight: str, resolution: float):
    if not isinstance(G, nx.Graph):
        raise TypeError(f"expected a networkx graph, got {type(G).__name__}")
    if source not in G:
        raise nx.NodeNotFound(f"source {source!r} is not in the graph")
    nodes, ptr, dst, delay = compile_circuit(G, weight, resolution)
    return (nodes, *first_spike_times(ptr, dst, delay, nodes.index(source)))


def shortest_path_lengths(G: nx.Graph, source: Hashable, weight: str = "weight",
                          resolution: float = 1.0) -> Dict[Hashable, float]:
    """Distances from ``source`` as first-spike times, like
    ``networkx.single_source_dijkstra_path_length`` (unreachable nodes are absent).

    Integer weights give exact distances (ints). Float weights are quantised to
    ``resolution`` (delay = ``round(w / resolution)`` steps) and the distances are returned
    as ``steps * resolution``: exact when every weight is a multiple of ``resolution``.

    Example:
        >>> G = nx.Graph([(0, 1, {"weight": 2}), (1, 2, {"weight": 1}), (0, 2, {"weight": 5})])
        >>> shortest_path_lengths(G, 0)
        {0: 0, 1: 2, 2: 3}
    """
    nodes, first, _, _ = _run(G, source, weight, resolution)
    scale = (lambda s: s) if resolution == 1.0 else (lambda s: s * resolution)
    return {nodes[i]: scale(int(first[i])) for i in torch.argsort(first).tolist()
            if first[i] >= 0}


def shortest_paths(G: nx.Graph, source: Hashable, weight: str = "weight",
                   resolution: float = 1.0) -> Dict[Hashable, List[Hashable]]:
    """Shortest paths from ``source`` found by following, backwards from every node, the
    synapse whose spike arrived first (like ``networkx.single_source_dijkstra_path``; among
    equally short paths one is chosen).

    Example:
        >>> G = nx.DiGraph([(0, 1), (1, 2), (0, 2)])
        >>> shortest_paths(G, 0)[2]
        [0, 2]
    """
    nodes, first, parent, wave = _run(G, source, weight, resolution)
    par = parent.tolist()
    out: Dict[Hashable, List[Hashable]] = {}
    for i in torch.argsort(wave).tolist():
        if first[i] < 0:
            continue
        p = par[i]
        out[nodes[i]] = (out[nodes[p]] + [nodes[i]]) if p >= 0 else [nodes[i]]
    return out


def hop_distances(edge_index: torch.Tensor, num_nodes: int, source: int) -> torch.Tensor:
    """Hop distance of every node from ``source`` along ``edge_index`` (``-1``: unreachable),
    from the first-spike times of the unit-delay circuit.

    Example:
        >>> hop_distances(torch.tensor([[0, 1], [1, 2]]), 4, 0).tolist()
        [0, 1, 2, -1]
    """
    src, dst = edge_index
    order = torch.argsort(src, stable=True)
    ptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    ptr[1:] = torch.bincount(src, minlength=num_nodes).cumsum(0)
    return first_spike_times(ptr, dst[order], torch.ones_like(src), source)[0]
