"""Spiking shortest paths (grsnn.shortest_path_lengths) against networkx's Dijkstra.

Random directed G(n, m) graphs with integer weights 1..10 (and unit weights), up to a
million edges; every result is checked to be identical to networkx's. Times: networkx
``single_source_dijkstra_path_length``; grsnn split into compiling the networkx graph into
a circuit (one pass over the edges in Python) and the event-driven simulation; the ratio
is networkx / grsnn total, measured in the same run.

Run:  python benchmarks/shortest_paths.py [--sizes 10000,100000,1000000] [--seed 0]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import networkx as nx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grsnn.paths import compile_circuit, first_spike_times  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    print(f"{'edges':>9s} {'nodes':>8s} {'weights':>8s} {'networkx s':>11s} {'compile s':>10s} "
          f"{'simulate s':>11s} {'events':>7s} {'nx/grsnn':>9s} {'nx/simulate':>12s}")
    for m in (int(x) for x in args.sizes.split(",")):
        n = max(10, m // 10)
        G = nx.gnm_random_graph(n, m, seed=args.seed, directed=True)
        rng = random.Random(args.seed)
        for kind in ("1..10", "unit"):
            for u, v in G.edges:
                G[u][v]["weight"] = rng.randint(1, 10) if kind == "1..10" else 1
            t0 = time.perf_counter()
            want = nx.single_source_dijkstra_path_length(G, 0)
            t_nx = time.perf_counter() - t0
            t0 = time.perf_counter()
            nodes, ptr, dst, delay = compile_circuit(G)
            t_compile = time.perf_counter() - t0
            t0 = time.perf_counter()
            first, _, wave = first_spike_times(ptr, dst, delay, nodes.index(0))
            t_sim = time.perf_counter() - t0
            got = {nodes[i]: int(first[i]) for i in range(len(nodes)) if first[i] >= 0}
            if got != want:
                print(f"MISMATCH at {m} edges ({kind} weights)")
                return 1
            print(f"{m:9d} {n:8d} {kind:>8s} {t_nx:11.3f} {t_compile:10.3f} {t_sim:11.3f} "
                  f"{int(wave.max()) + 1:7d} {t_nx / (t_compile + t_sim):9.2f} "
                  f"{t_nx / t_sim:12.2f}", flush=True)
    print("all distances identical to networkx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
