"""Peak memory of evaluation under ``task.eval_memory_mb`` budgets, against the estimate.

For one data set (default GraIL ``WN18RR_v3``: 12,078 nodes, the largest shipped graph), a
model of the task config (random weights: memory does not depend on them) ranks the first
``--queries`` test triples in both directions, once per budget, each in a fresh process.
The peak RSS above the RSS before evaluation (Linux ``ru_maxrss`` reset through
``/proc/self/clear_refs``) is printed with the queries per pass that the budget allowed and
the estimate ``queries x eval_bytes_per_query(N, D, pairs)``
(:mod:`grsnn.training.memory`); the gap at one query per pass is the fixed part (filter
mask, ranks, index tensors). Metrics must not change with the budget; the script checks.

Run:  python benchmarks/eval_memory.py [--config WN18RR_v3] [--budgets 8,32,128,0]
          [--queries 256] [--data-root DIR]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def worker(config: str, budget: float, queries: int, root: str | None) -> dict:
    import torch

    from grsnn.tasks import build_task, load_config
    from grsnn.training.memory import eval_bytes_per_query

    cfg = load_config(ROOT / "tasks" / "kg_completion" / f"{config}.yaml")
    cfg["task"]["eval_memory_mb"] = budget or None
    cfg["task"]["max_eval_queries"] = queries
    if root:
        cfg["dataset"]["root"] = root
    task = build_task(cfg)
    torch.manual_seed(0)
    model = task.build_model().eval()
    graph = task.data.splits["test"].graph
    plan = model.plan(graph)                            # the plan is not evaluation memory
    per_pass = task.eval_queries_per_pass(model, graph)
    with open("/proc/self/clear_refs", "w") as f:       # reset the peak RSS to now
        f.write("5")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    metrics = task.evaluate(model, "test", progress=False)
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    estimate = per_pass * eval_bytes_per_query(graph.num_nodes, model.hidden_dim, plan.num_pairs)
    return {"budget": budget, "per_pass": per_pass, "peak_mib": peak,
            "estimate_mib": estimate / 2 ** 20, "nodes": int(graph.num_nodes),
            "mrr": metrics["mrr"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="WN18RR_v3")
    p.add_argument("--budgets", default="8,32,128,0", help="MiB; 0 = no budget")
    p.add_argument("--queries", type=int, default=256)
    p.add_argument("--data-root", default=None)
    p.add_argument("--worker", type=float, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.config, args.worker, args.queries, args.data_root)))
        return 0
    rows = []
    print(f"{'budget MiB':>10s} {'queries/pass':>12s} {'peak MiB':>9s} {'estimate MiB':>12s} "
          f"{'peak/est':>8s}  mrr")
    for budget in (float(b) for b in args.budgets.split(",")):
        cmd = [sys.executable, __file__, "--config", args.config, "--queries",
               str(args.queries), "--worker", str(budget)]
        if args.data_root:
            cmd += ["--data-root", args.data_root]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        rows.append(r)
        label = f"{budget:g}" if budget else "none"
        print(f"{label:>10s} {r['per_pass']:12d} {r['peak_mib']:9.1f} {r['estimate_mib']:12.1f} "
              f"{r['peak_mib'] / max(r['estimate_mib'], 1e-9):8.2f}  {r['mrr']:.6f}", flush=True)
    same = len({round(r["mrr"], 12) for r in rows}) == 1
    print("metrics identical under every budget:", same)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
