"""The circuit horizon a graph's structure asks for: its effective diameter and the
simulation steps ``T`` that reach it at a given wave speed.

    python scripts/graph_horizon.py fb237_v1 WN18RR_v1 WN18RR_v2 WN18RR_v4 cora citeseer

For each data set, on the graph its test queries run on (a GraIL split's ``_ind`` graph; a
citation graph's training edges, the message-passing graph of every split): the hop
distances between node pairs joined by a path, from up to ``--sources`` source nodes
drawn with a fixed seed (every node when there are fewer), and their median, 90th
percentile (the effective diameter) and largest value; then the horizon that lets a wave
of ``--steps-per-hop`` steps per hop inform a node that far: a node ``k`` hops from the
source first spikes at step ``1 + s k`` (the source at step 1, ``s`` steps per hop: a
trained circuit's waves travel at ``s = 2``, docs/RESULTS.md), so ``T = 1 + s k``. It reads
the graph only, no test answer.
"""
from __future__ import annotations

import argparse
import sys
from typing import Dict

import numpy as np
import torch

from grsnn.data import DataError, load_kg
from grsnn.data.homogeneous import load_planetoid

PLANETOID = ("cora", "citeseer", "pubmed")


def query_graph(name: str) -> tuple:
    """``(edge_index [2, E] with both directions, num_nodes)`` of the graph ``name``'s
    test queries run on."""
    if name.lower() in PLANETOID:
        data = load_planetoid(name.lower())
        u, v = data.train_edges
        return torch.stack([torch.cat([u, v]), torch.cat([v, u])]), int(data.num_nodes)
    g = load_kg(name).splits["test"].graph
    return g.edge_index, int(g.num_nodes)


def hop_distances(edge_index: torch.Tensor, num_nodes: int, sources: int = 1000,
                  seed: int = 0) -> np.ndarray:
    """Hop distances (>= 1) from up to ``sources`` seeded source nodes to every node they
    reach along ``edge_index`` (pairs without a path and a node to itself left out).

    Example:
        >>> hop_distances(torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), 4).tolist()
        [1, 2, 1, 1, 2, 1]
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path

    e = edge_index.cpu().numpy()
    adj = csr_matrix((np.ones(e.shape[1], dtype=np.float32), (e[0], e[1])),
                     shape=(num_nodes, num_nodes))
    rng = np.random.default_rng(seed)
    rows = np.arange(num_nodes) if num_nodes <= sources else \
        np.sort(rng.choice(num_nodes, size=sources, replace=False))
    out = []
    for lo in range(0, len(rows), 256):
        block = shortest_path(adj, unweighted=True, indices=rows[lo:lo + 256])
        d = block[np.isfinite(block) & (block > 0)]
        out.append(d.astype(np.int64))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def horizon(name: str, sources: int = 1000, steps_per_hop: int = 2) -> Dict[str, float]:
    """Effective diameter of ``name``'s test graph and the horizon it implies."""
    edge_index, n = query_graph(name)
    d = hop_distances(edge_index, n, sources)
    if d.size == 0:
        raise DataError(f"{name}: its test graph has no edge")
    k90 = int(np.ceil(np.percentile(d, 90)))
    return {"nodes": n, "median": float(np.median(d)), "k90": k90, "max": int(d.max()),
            "within4": float((d <= 4).mean()), "T": 1 + steps_per_hop * k90}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="+", help="GraIL splits (fb237_v1, WN18RR_v2, ...) or "
                   "cora / citeseer / pubmed")
    p.add_argument("--sources", type=int, default=1000, help="source nodes sampled (1000)")
    p.add_argument("--steps-per-hop", type=int, default=2, help="wave speed (2)")
    args = p.parse_args(argv)
    try:
        rows = {name: horizon(name, args.sources, args.steps_per_hop) for name in args.names}
    except (DataError, FileNotFoundError, ValueError) as err:
        print(f"graph_horizon.py: {err}", file=sys.stderr)
        return 2
    print(f"| graph | nodes | median hop distance | effective diameter (90%) | largest | "
          f"pairs within 4 hops | T at {args.steps_per_hop} steps per hop |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['nodes']:,} | {r['median']:g} | {r['k90']} | {r['max']} | "
              f"{r['within4']:.2f} | {r['T']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
