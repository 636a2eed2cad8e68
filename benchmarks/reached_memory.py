"""Peak memory of one query without gradient: the dense engine against query-sized
inference (:func:`grsnn.nn.reached.simulate_reached`), on a generated large graph.

The graph is a ring lattice with random edge types: node ``i`` sends an edge to
``i +- 1 .. i +- degree/2`` (``degree`` edges out, ``nodes * degree`` in all), so a query's
wave reaches a neighbourhood that grows with the steps and not with the graph. The circuit
is the query-driven one (``drive="reached"``, relation weights, learnable delays), ``D``
neurons per node, ``T`` steps, one query whose current enters at node 0.

Each engine runs in a fresh process that builds the graph and its plan, resets the peak
resident set (``/proc/self/clear_refs``), runs the query and reports the growth of the peak
(``VmHWM``) over the resident set before the query: the memory the query itself held. Both
engines' spikes are compared on the reached nodes. The last line reads
``one query, <E> edges: dense <a> MB, reached nodes only <b> MB (<r>x less), <n> nodes reached``.

The same comparison then runs for the whole model: the scores of every node as the tail
of one query of a :class:`~grsnn.nn.GRSNN` with the query-driven circuit (what ``grsnn
predict`` computes), by ``score_all`` (dense engine) and by ``score_query`` (reached nodes
only), and checks that the scores are equal.

    python benchmarks/reached_memory.py                     # 200,000 nodes, 2 million edges
    python benchmarks/reached_memory.py --nodes 1000000     # 10 million edges (~6 GB resident)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _status(key: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def _graph(nodes: int, degree: int, relations: int):
    import torch
    g = torch.Generator().manual_seed(0)
    src = torch.arange(nodes).repeat_interleave(degree)
    steps = torch.tensor([k for j in range(1, degree // 2 + 1) for k in (j, -j)])
    dst = (src + steps.repeat(nodes)) % nodes
    edge_type = torch.randint(0, relations, (src.numel(),), generator=g)
    return torch.stack([src, dst]), edge_type


def run_engine(args) -> dict:
    """One engine in this process: the query's peak memory and its spikes (reached rows)."""
    import torch

    from grsnn.nn import SpikingDelayConv
    from grsnn.nn.reached import simulate_reached

    torch.set_num_threads(1)
    edge_index, edge_type = _graph(args.nodes, args.degree, args.relations)
    torch.manual_seed(0)
    conv = SpikingDelayConv(args.dim, num_relations=args.relations, time_steps=args.steps,
                            drive="reached", relation_weight=True, linear_scale=2.0,
                            v_threshold=1.0)
    plan = conv.build_plan(edge_index, args.nodes, edge_type)
    plan.operators(torch.float32)
    ids, beta = torch.tensor([0]), torch.full((1, args.dim), 2.5)
    dense_beta = None
    if args.engine == "dense":
        dense_beta = torch.zeros(args.nodes, args.dim)
        dense_beta[ids] = beta
    os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", "0")
    before = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")       # VmHWM := VmRSS
    start = time.perf_counter()
    with torch.no_grad():
        if args.engine == "dense":
            frames = conv.simulate(dense_beta, edge_index, edge_type, plan=plan)
            spikes = torch.stack(frames)
            fired = spikes.any(0).any(1).nonzero().squeeze(1)
            reached = -1
            out = spikes[:, fired].sum(dim=(0, 2))
        else:
            ids, frames = simulate_reached(conv, ids, beta, plan)
            fired_rows = torch.zeros(ids.numel(), dtype=torch.bool)
            counts = torch.zeros(ids.numel())
            for f in frames:
                fired_rows[:f.size(0)] |= f.any(1)
                counts[:f.size(0)] += f.sum(1)
            fired, order = ids[fired_rows].sort()
            out = counts[fired_rows][order]
            reached = ids.numel()
    seconds = time.perf_counter() - start
    peak = _status("VmHWM")
    return {"engine": args.engine, "peak_mb": peak - before, "seconds": seconds,
            "reached": reached, "fired": fired.tolist(), "spikes": out.tolist()}


def run_model(args) -> dict:
    """One query of a whole GRSNN in this process: peak memory and the scores."""
    import torch
    from torch_geometric.data import Data

    from grsnn.nn import GRSNN

    torch.set_num_threads(1)
    edge_index, edge_type = _graph(args.nodes, args.degree, args.relations)
    data = Data(edge_index=edge_index, edge_type=edge_type, num_nodes=args.nodes)
    torch.manual_seed(0)
    model = GRSNN(args.relations, hidden_dim=args.dim, time_steps=args.steps,
                  drive="reached", relation_weight=True, linear_scale=2.0,
                  v_threshold=0.5).eval()
    model.plan(data).operators(torch.float32)
    os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", "0")
    before = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    start = time.perf_counter()
    with torch.no_grad():
        if args.engine == "model-dense":
            scores = model.score_all(data, torch.tensor([0]), torch.tensor([0]))[0]
        else:
            scores = model.score_query(data, 0, 0)
    seconds = time.perf_counter() - start
    peak = _status("VmHWM")
    distinct, counts = scores.unique(return_counts=True)
    return {"engine": args.engine, "peak_mb": peak - before, "seconds": seconds,
            "scores_sha": __import__("hashlib").sha1(scores.numpy().tobytes()).hexdigest(),
            "distinct": int(distinct.numel()), "top_count": int(counts.max())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=200_000)
    p.add_argument("--degree", type=int, default=10, help="edges out of each node (even)")
    p.add_argument("--relations", type=int, default=8)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--engine", choices=("dense", "reached", "model-dense", "model-reached"),
                   help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.engine:
        run = run_model if args.engine.startswith("model") else run_engine
        print(json.dumps(run(args)))
        return
    edges = args.nodes * args.degree
    print(f"ring lattice: {args.nodes} nodes, {edges} edges, {args.relations} relations, "
          f"D = {args.dim}, T = {args.steps}, one query, no gradient, one thread")
    res = {}
    for engine in ("dense", "reached", "model-dense", "model-reached"):
        cmd = [sys.executable, __file__, "--engine", engine, "--nodes", str(args.nodes),
               "--degree", str(args.degree), "--relations", str(args.relations),
               "--dim", str(args.dim), "--steps", str(args.steps)]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        res[engine] = json.loads(proc.stdout.strip().splitlines()[-1])
        r = res[engine]
        if engine.startswith("model"):
            print(f"{engine:13s} peak {r['peak_mb']:9.1f} MB  {r['seconds']:7.3f} s  "
                  f"{r['distinct']} distinct scores")
        else:
            print(f"{engine:13s} peak {r['peak_mb']:9.1f} MB  {r['seconds']:7.3f} s  "
                  f"{len(r['fired'])} nodes fired")
    same = (res["dense"]["fired"] == res["reached"]["fired"]
            and res["dense"]["spikes"] == res["reached"]["spikes"])
    print("same spikes on every node: " + ("yes" if same else "NO"))
    md, mr = res["model-dense"], res["model-reached"]
    print("GRSNN, scores of every node for one query: score_all "
          f"{md['peak_mb']:.1f} MB, score_query {mr['peak_mb']:.1f} MB "
          f"({md['peak_mb'] / max(mr['peak_mb'], 0.1):.0f}x less), same scores: "
          + ("yes" if md["scores_sha"] == mr["scores_sha"] else "NO"))
    dense, reached = res["dense"]["peak_mb"], res["reached"]["peak_mb"]
    print(f"one query, {edges} edges: dense {dense:.1f} MB, reached nodes only "
          f"{reached:.1f} MB ({dense / max(reached, 0.1):.0f}x less), "
          f"{res['reached']['reached']} nodes reached")


if __name__ == "__main__":
    main()
