"""Seconds per training batch against the number of edges (should be linear).

For each data set (GraIL fb237_v1..v4 and WN18RR_v1..v4 from the shipped files, WN18RR and
FB15k-237 from the data root, Cora and CiteSeer link prediction), one training batch of the
data set's paper configuration (``tasks/paper/kg_completion/*.yaml``,
``tasks/paper/link_prediction/*.yaml``, the whole-graph circuit: queries per batch,
negatives, linear scale; easy-edge removal and strict negatives included) is timed after a
warm-up, and the seconds per batch and per query are printed with the number of edges. A
least-squares line through the per-query times and its R^2 tell how linear the cost is;
``--plot PATH`` writes the figure (matplotlib).
``s/epoch`` is the training time of one epoch predicted from the batch time (batches per
epoch x seconds per batch; validation not included).

``--eager`` also times every batch with ``model.compiled: false`` (the neuron step as separate
eager kernels, the engine before the compiled step) and prints the ratio.

Run:  python benchmarks/scaling.py [--data-root DIR] [--repeats 3] [--plot docs/scaling.png]
          [--only fb237_v1,WN18RR_v1] [--one-pass] [--eager] [--from-table saved_output.txt]
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
from grsnn.training.checkpoints import load_model  # noqa: E402
from grsnn.training.memory import keep_freed_memory  # noqa: E402
from grsnn.training.trainer import accumulate_gradients, micro_rows  # noqa: E402

SETS = [(f"fb237_v{i}", f"paper/kg_completion/fb237_v{i}") for i in range(1, 5)] + \
       [(f"WN18RR_v{i}", f"paper/kg_completion/WN18RR_v{i}") for i in range(1, 5)] + \
       [("wn18rr", "paper/kg_completion/wn18rr"), ("fb15k237", "paper/kg_completion/fb15k237"),
        ("cora", "paper/link_prediction/cora"), ("citeseer", "paper/link_prediction/citeseer")]
# link prediction runs 2 circuits per row and 1 + n rows per positive: timed, not fitted
LINK_SETS = ("cora", "citeseer")


def time_batch(name: str, config: str, root: str | None, repeats: int,
               micro_batch: int | None = None, compiled: bool = True,
               model: dict | None = None, checkpoint: str | Path | None = None) -> dict:
    """One training batch of ``tasks/<config>.yaml`` (or of the YAML file ``config`` names,
    a run's ``config.yaml``) timed ``repeats`` times after a warm-up (``model``: config keys
    of the model section to override; ``checkpoint``: start from its weights, a trained
    circuit, instead of the initial ones)."""
    path = Path(config) if str(config).endswith(".yaml") else ROOT / "tasks" / f"{config}.yaml"
    cfg = load_config(path)
    if root:
        cfg["dataset"]["root"] = root
    cfg["train"]["micro_batch"] = micro_batch
    cfg["model"]["compiled"] = compiled
    cfg["model"].update(model or {})
    task = build_task(cfg)
    torch.manual_seed(0)
    net = task.build_model() if checkpoint is None else load_model(task, checkpoint, "cpu")
    gen = torch.Generator().manual_seed(0)
    bs = cfg["train"]["batch_size"]
    times = []
    for i in range(repeats + 1):
        idx = torch.randint(0, task.num_train, (bs,), generator=gen)
        t0 = time.perf_counter()
        graph, batch = task.make_batch(idx, gen)
        accumulate_gradients(task, net, cfg, graph, batch)   # what `grsnn train` runs
        if i:   # the first batch is the warm-up
            times.append(time.perf_counter() - t0)
    graph = task.graph if hasattr(task, "graph") else task.data.splits["train"].graph
    sec = statistics.median(times)
    batches = -(-task.num_train // bs)
    return {"name": name, "edges": graph.edge_index.size(1), "nodes": graph.num_nodes,
            "epoch_s": sec * batches, "batches": batches,
            "batch": bs, "pass": micro_rows(task, net, cfg, graph, batch), "sec": sec,
            "sec_per_query": sec / bs}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", default=None)
    p.add_argument("--glibc-default", action="store_true",
                   help="leave glibc's mmap/trim thresholds at their defaults (baseline)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--plot", default=None)
    p.add_argument("--only", default=None)
    p.add_argument("--one-pass", action="store_true",
                   help="also time each batch as one pass (train.micro_batch = batch size), "
                        "the baseline of the automatic micro-batching")
    p.add_argument("--eager", action="store_true",
                   help="also time each batch with model.compiled = false (eager neuron step)")
    p.add_argument("--from-table", default=None, metavar="FILE",
                   help="refit and replot the table printed by an earlier run (no timing)")
    args = p.parse_args()
    if not args.glibc_default:
        keep_freed_memory()   # as grsnn train / eval do on CPU
    if args.from_table:
        fit_and_plot([r for r in read_table(args.from_table) if r["name"] not in LINK_SETS],
                     args.plot)
        return 0
    only = set(args.only.split(",")) if args.only else None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = []
    print(f"{'data set':12s} {'edges':>9s} {'nodes':>7s} {'batch':>5s} {'pass':>5s} "
          f"{'s/batch':>8s} {'s/query':>8s} {'batches':>7s} {'s/epoch':>8s}")
    for name, config in SETS:
        if only and name not in only:
            continue
        try:
            r = time_batch(name, config, args.data_root, args.repeats)
        except Exception as err:   # a data set missing from the root: say so and go on
            print(f"{name:12s} skipped: {str(err).splitlines()[0][:100]}")
            continue
        rows.append(r)
        line = (f"{name:12s} {r['edges']:9d} {r['nodes']:7d} {r['batch']:5d} {r['pass']:5d} "
                f"{r['sec']:8.3f} {r['sec_per_query']:8.4f} {r['batches']:7d} {r['epoch_s']:8.0f}")
        if args.one_pass:
            one = time_batch(name, config, args.data_root, args.repeats, 10 ** 9)  # one pass
            line += f"   one pass {one['sec']:8.3f} s/batch ({one['sec'] / r['sec']:.2f}x)"
        if args.eager:
            eager = time_batch(name, config, args.data_root, args.repeats, compiled=False)
            line += f"   eager {eager['sec']:8.3f} s/batch ({eager['sec'] / r['sec']:.2f}x)"
        print(line, flush=True)
    if len(rows) >= 3:
        fit_and_plot([r for r in rows if r["name"] not in LINK_SETS], args.plot)
    return 0


def _lstsq(columns, y):
    a = torch.stack(columns + [torch.ones_like(y)], 1)
    coef = torch.linalg.lstsq(a, y.unsqueeze(1)).solution.squeeze(1)
    pred = a @ coef
    return coef, pred, float(1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def fit_and_plot(rows, plot=None) -> None:
    """Least squares of seconds per query on edges, and on edges and nodes (the engine's
    cost is ``E * B * D`` edge work plus ``N * B * D`` node work per step); the figure
    shows the time per query against the edges and against the two-term fit."""
    e = torch.tensor([float(r["edges"]) for r in rows], dtype=torch.float64)
    n = torch.tensor([float(r["nodes"]) for r in rows], dtype=torch.float64)
    y = torch.tensor([r["sec_per_query"] for r in rows], dtype=torch.float64)
    c1, _, r2_1 = _lstsq([e], y)
    c2, pred2, r2_2 = _lstsq([e, n], y)
    print(f"least squares: s/query = {c1[0] * 1e6:.3f} us x edges + {c1[1] * 1e3:.2f} ms, "
          f"R^2 = {r2_1:.4f}")
    print(f"least squares: s/query = {c2[0] * 1e6:.3f} us x edges + {c2[1] * 1e6:.3f} us x nodes"
          f" {c2[2] * 1e3:+.2f} ms, R^2 = {r2_2:.4f}")
    if not plot:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax.scatter(e.numpy(), y.numpy())
    for r in rows:
        ax.annotate(r["name"], (r["edges"], r["sec_per_query"]), fontsize=7)
    xs = torch.linspace(0, float(e.max()), 50, dtype=torch.float64)
    ax.plot(xs.numpy(), (c1[0] * xs + c1[1]).numpy(), "--", label=f"a E + c, R^2 {r2_1:.3f}")
    ax.set_xlabel("directed edges E (with inverses)")
    ax.set_ylabel("seconds per training query (fwd+bwd)")
    ax.legend()
    bx.scatter(pred2.numpy(), y.numpy())
    for r, px in zip(rows, pred2.tolist()):
        bx.annotate(r["name"], (px, r["sec_per_query"]), fontsize=7)
    top = float(max(pred2.max(), y.max())) * 1.05
    bx.plot([0, top], [0, top], "--", label=f"a E + b N + c, R^2 {r2_2:.3f}")
    bx.set_xlabel(f"fit: {c2[0] * 1e6:.2f} us x E + {c2[1] * 1e6:.2f} us x N {c2[2] * 1e3:+.1f} ms")
    bx.set_ylabel("measured seconds per training query")
    bx.legend()
    fig.tight_layout()
    Path(plot).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(plot, dpi=120)
    print(f"wrote {plot}")


def read_table(path: str):
    """Rows of a previous run's printed table (to refit and replot without timing again)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 9 and parts[1].isdigit() and parts[2].isdigit():
            rows.append({"name": parts[0], "edges": int(parts[1]), "nodes": int(parts[2]),
                         "sec_per_query": float(parts[6])})
    return rows


if __name__ == "__main__":
    sys.exit(main())
