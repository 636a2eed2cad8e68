"""What each reach lever costs per training batch, as a ratio to the paper's circuit
measured in the same run (interleaved, so machine noise hits every configuration alike).

For one of the paper's task configs (tasks/paper/), every lever of scripts/ablation.sh is
built with the same seed and the same batches; each round times one training batch
(sampling, forward, backward) of every configuration in turn. Prints the median seconds
per batch, the ratio to ``paper`` and the implied seconds per epoch (batches per epoch x
median).

Run:  python benchmarks/reach_cost.py [--config kg_completion/WN18RR_v1] [--rounds 12]
          [--config-file results/<run>/config.yaml --checkpoint results/<run>/last.pt]
          [--levers paper reached state degree reached+state+degree T16 ...]
          [--threads 1] [--set model.hidden_dim=8 ...]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from grsnn.tasks import build_task, load_config  # noqa: E402
from grsnn.training.memory import keep_freed_memory  # noqa: E402
from grsnn.training.checkpoints import load_model  # noqa: E402
from grsnn.training.config import apply_overrides  # noqa: E402
from grsnn.training.trainer import accumulate_gradients  # noqa: E402

LEVERS = {"paper": [], "reached": ["model.drive=reached"], "state": ["model.readout=state"],
          "degree": ["model.degree_prior=true"], "fast": ["model.delay_init=-3"],
          "pna": ["model.aggregate=pna"], "triangle": ["model.surrogate=triangle"],
          "qs": ["model.query_sized=true"], "auto": ["model.propagation=auto"],
          "whole": ["model.query_sized=false"], "bg": ["model.background=true"]}


def overrides(levers: str) -> list:
    """The ``--set`` pairs of a ``+``-joined lever name (as scripts/ablation.sh)."""
    out: list = []
    for lever in levers.split("+"):
        if lever.startswith("T") and lever[1:].isdigit():
            out.append(f"model.time_steps={lever[1:]}")
        elif lever.startswith("lambda"):
            out.append(f"model.linear_scale={lever[6:]}")
        elif lever in LEVERS:
            out += LEVERS[lever]
        else:
            raise SystemExit(f"reach_cost.py: unknown lever {lever!r}")
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="kg_completion/WN18RR_v1")
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: stable beside other work on 2 cores)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every configuration (e.g. model.hidden_dim=8)")
    p.add_argument("--checkpoint", default=None,
                   help="start every configuration from this checkpoint's weights (a trained "
                        "circuit) instead of the initial ones")
    p.add_argument("--config-file", default=None,
                   help="a YAML config to start from instead of tasks/paper/<config>.yaml "
                        "(e.g. the run's own config.yaml)")
    p.add_argument("--levers", nargs="+",
                   default=["paper", "reached", "state", "degree", "reached+state+degree"])
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()          # as grsnn train does (heap pages reused, not faulted in)
    base = load_config(args.config_file or ROOT / "tasks" / "paper" / f"{args.config}.yaml")
    runs = {}
    for levers in args.levers:
        cfg = apply_overrides(base, args.set + overrides(levers))
        task = build_task(cfg)
        torch.manual_seed(0)
        model = (task.build_model() if args.checkpoint is None
                 else load_model(task, args.checkpoint, "cpu"))
        runs[levers] = (task, model, cfg, torch.optim.Adam(model.parameters(), lr=1e-3))
    batch_size = base["train"]["batch_size"]
    per_epoch = -(-next(iter(runs.values()))[0].num_train // batch_size)
    times = {k: [] for k in runs}
    num_nodes = 0
    nodes = {k: [] for k in runs}        # subgraph nodes of query-sized batches
    for rnd in range(args.warmup + args.rounds):
        idx = torch.randint(0, per_epoch * batch_size, (batch_size,),
                            generator=torch.Generator().manual_seed(rnd))
        for levers, (task, model, cfg, opt) in runs.items():
            gen = torch.Generator().manual_seed(rnd)
            t0 = time.perf_counter()
            graph, batch = task.make_batch(idx % task.num_train, gen)
            opt.zero_grad()
            accumulate_gradients(task, model, cfg, graph, batch)     # as grsnn train does
            opt.step()
            if rnd >= args.warmup:
                times[levers].append(time.perf_counter() - t0)
                if getattr(model, "query_sized", False):
                    nodes[levers].append(model.query_sized_nodes)
                    num_nodes = int(graph.num_nodes)
    paper = statistics.median(times[args.levers[0]])
    print(f"{args.config}: {per_epoch} batches of {batch_size} per epoch, "
          f"{args.rounds} interleaved rounds, {torch.get_num_threads()} threads")
    print(f"{'levers':<32}{'s/batch':>9}{'ratio':>8}{'s/epoch':>9}  query-sized: nodes simulated "
          f"(median, the queries' reaches summed; 0: whole graph)")
    for levers, ts in times.items():
        med = statistics.median(ts)
        sub = (f"  {statistics.median(nodes[levers]):.0f} of {batch_size} x {num_nodes}"
               if nodes[levers]
               else "")
        print(f"{levers:<32}{med:>9.3f}{med / paper:>7.2f}x{med * per_epoch:>9.0f}{sub}")


if __name__ == "__main__":
    main()
