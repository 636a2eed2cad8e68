"""SpikingGNN with default arguments against GCN, in PyG's standard recipes, over a grid.

The model line of ``examples/node_classification.py`` and ``examples/link_prediction.py``
is ``GCN(in, width, layers, out, ...)`` or ``SpikingGNN(in, width, layers, out, ...)`` with
the same arguments (no spiking argument set). Node classification: Planetoid public split,
Adam (weight decay 5e-4), dropout 0.5, 200 epochs, test accuracy at the best validation
epoch. Link prediction: ``RandomLinkSplit`` 85/5/10, dot-product decoder, fresh negatives
every epoch, 100 epochs, test AUROC at the best validation epoch.

Two parts, both with GCN trained in the same run:

- ``defaults``: width 64, 2 layers, lr 0.01, ``--seeds`` seeds, on every task;
- ``grid``: widths x layers x learning rates on the grid tasks, ``--grid-seeds`` seeds.

Every finished run is appended to ``--results`` (JSON lines) and skipped when the script
is run again, so an interrupted grid resumes; the tables are built from that file. The
table also gives SpikingGNN's firing rate at initialisation on the task's graph (mean over
its layers), which the defaults keep in the same range for every width and depth.

Run:  python benchmarks/gnn_defaults.py [--part defaults,grid] [--seeds 3] [--grid-seeds 1]
          [--threads 1] [--results docs/bench/gnn_defaults.jsonl]
          [--markdown docs/spiking_gnn_defaults.md] [--spiking-kwargs '{"input_residual": true}']

``--part defaults`` runs only the default point. ``--spiking-kwargs`` gives SpikingGNN
extra arguments (GCN runs as it is); its rows carry them under ``kwargs`` and belong in
their own ``--results`` file (the resume key does not include them).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

import torch  # noqa: E402

import link_prediction  # noqa: E402
import node_classification  # noqa: E402

TASKS = {   # name: (recipe, dataset, epochs, metric)
    "nc-Cora": (node_classification, "Cora", 200, "accuracy"),
    "nc-CiteSeer": (node_classification, "CiteSeer", 200, "accuracy"),
    "lp-Cora": (link_prediction, "Cora", 100, "AUROC"),
    "lp-CiteSeer": (link_prediction, "CiteSeer", 100, "AUROC"),
}
TITLES = {"nc": "node classification", "lp": "link prediction"}
DEFAULT = (64, 2, 0.01)   # width, layers, lr of the drop-in recipe


def init_rate(task: str, width: int, layers: int, seed: int, **kwargs) -> float:
    """Mean firing rate over the layers of a freshly built SpikingGNN on the task's graph."""
    from grsnn.data import planetoid_data
    from grsnn.nn import SpikingGNN
    data = planetoid_data(TASKS[task][1])
    torch.manual_seed(seed)
    model = SpikingGNN(data.num_features, width, layers, width, **kwargs).eval()
    trains = model.spike_trains(data.x, data.edge_index)
    return float(sum(t.float().mean() for t in trains) / len(trains))


def key(task, model, width, layers, lr, seed):
    return f"{task}|{model}|{width}|{layers}|{lr}|{seed}"


def run_one(task, model, width, layers, lr, seed, spiking_kwargs=None) -> dict:
    recipe, dataset, epochs, _ = TASKS[task]
    kwargs = dict(spiking_kwargs or {}) if model == "spiking" else {}
    r = recipe.run(dataset, model, epochs, seed, width, verbose=False, num_layers=layers, lr=lr,
                   model_kwargs=kwargs)
    out = {"task": task, "model": model, "width": width, "layers": layers, "lr": lr,
           "seed": seed, "test": r["test"], "val": r["val"], "seconds": r["seconds"]}
    if model == "spiking":
        out["init_rate"] = init_rate(task, width, layers, seed, **kwargs)
        if kwargs:
            out["kwargs"] = kwargs
    return out


def _stats(rows, task, model, width, layers, lr):
    mine = [r for r in rows if (r["task"], r["model"], r["width"], r["layers"], r["lr"])
            == (task, model, width, layers, lr)]
    return [r["test"] for r in mine], [r["init_rate"] for r in mine if "init_rate" in r]


def _fmt(vals):
    if not vals:
        return "not run"
    if len(vals) == 1:
        return f"{vals[0]:.3f}"
    return f"{statistics.mean(vals):.3f} ± {statistics.stdev(vals):.3f}"


def tables(rows, tasks, grid_tasks, widths, layer_list, lrs) -> str:
    out = ["Default arguments (width 64, 2 layers, lr 0.01); mean ± standard deviation over "
           "the seeds; difference = SpikingGNN - GCN in points (x 100).", "",
           "| task | metric | seeds | GCN | SpikingGNN | difference | SpikingGNN firing rate "
           "at init |", "|---|---|---:|---:|---:|---:|---:|"]
    for task in tasks:
        gcn, _ = _stats(rows, task, "gcn", *DEFAULT)
        spk, rates = _stats(rows, task, "spiking", *DEFAULT)
        diff = (f"{100 * (statistics.mean(spk) - statistics.mean(gcn)):+.1f}"
                if gcn and spk else "-")
        rate = f"{statistics.mean(rates):.3f}" if rates else "-"
        kind, name = task.split("-")
        out.append(f"| {TITLES[kind]}, {name} | {TASKS[task][3]} | {min(len(gcn), len(spk))} | "
                   f"{_fmt(gcn)} | {_fmt(spk)} | {diff} | {rate} |")
    for task in grid_tasks:
        kind, name = task.split("-")
        out += ["", f"Grid: {TITLES[kind]}, {name} (test {TASKS[task][3]}; mean over the seeds "
                    "run; difference in points)", "",
                "| width | layers | lr | seeds | GCN | SpikingGNN | difference "
                "| firing rate at init |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for width in widths:
            for layers in layer_list:
                for lr in lrs:
                    gcn, _ = _stats(rows, task, "gcn", width, layers, lr)
                    spk, rates = _stats(rows, task, "spiking", width, layers, lr)
                    if not gcn and not spk:
                        out.append(f"| {width} | {layers} | {lr} | 0 | not run | not run | - | - |")
                        continue
                    g = statistics.mean(gcn) if gcn else None
                    s = statistics.mean(spk) if spk else None
                    diff = f"{100 * (s - g):+.1f}" if gcn and spk else "-"
                    rate = f"{statistics.mean(rates):.3f}" if rates else "-"
                    out.append(f"| {width} | {layers} | {lr} | {min(len(gcn), len(spk))} | "
                               f"{'%.3f' % g if gcn else 'not run'} | "
                               f"{'%.3f' % s if spk else 'not run'} | {diff} | {rate} |")
    return "\n".join(out) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", default="defaults,grid")
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--grid-tasks", default="nc-Cora,nc-CiteSeer,lp-Cora")
    p.add_argument("--widths", default="16,64,256")
    p.add_argument("--layers", default="1,2,3")
    p.add_argument("--lrs", default="0.01,0.005")
    p.add_argument("--seeds", type=int, default=3, help="seeds of the default point")
    p.add_argument("--grid-seeds", type=int, default=1)
    p.add_argument("--models", default="gcn,spiking")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--results", default=str(ROOT / "docs" / "bench" / "gnn_defaults.jsonl"))
    p.add_argument("--markdown", default=None, help="write the tables to this file")
    p.add_argument("--table-only", action="store_true", help="build the tables, run nothing")
    p.add_argument("--spiking-kwargs", default=None,
                   help="JSON object of extra SpikingGNN arguments (for example "
                        "'{\"input_residual\": true}'); use its own --results file")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tasks, grid_tasks = args.tasks.split(","), args.grid_tasks.split(",")
    widths = [int(w) for w in args.widths.split(",")]
    layer_list = [int(n) for n in args.layers.split(",")]
    lrs = [float(x) for x in args.lrs.split(",")]
    models = args.models.split(",")
    spiking_kwargs = json.loads(args.spiking_kwargs) if args.spiking_kwargs else {}
    path = Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = ([json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if path.exists() else [])
    done = {key(r["task"], r["model"], r["width"], r["layers"], r["lr"], r["seed"]) for r in rows}

    jobs = []
    if "defaults" in args.part.split(","):
        jobs += [(t, m, *DEFAULT, s) for s in range(args.seeds) for t in tasks for m in models]
    if "grid" in args.part.split(","):
        # one learning rate over the whole grid before the next: a partial run still
        # covers every width and depth
        jobs += [(t, m, w, n, lr, s) for s in range(args.grid_seeds) for lr in lrs
                 for w in widths for n in layer_list for t in grid_tasks for m in models]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{sum(key(*j) not in done for j in jobs)} runs to do", flush=True)
    for job in ([] if args.table_only else jobs):
        if key(*job) in done:
            continue
        start = time.perf_counter()
        row = run_one(*job, spiking_kwargs=spiking_kwargs)
        rows.append(row)
        done.add(key(*job))
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{key(*job)}: {row['test']:.4f} ({time.perf_counter() - start:.0f} s)", flush=True)
    text = tables(rows, tasks, grid_tasks, widths, layer_list, lrs)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
