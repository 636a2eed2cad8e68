"""SpikingGNN against GCN, GraphSAGE and GAT of the same width, in the same run.

Node classification (Planetoid public split, ``examples/node_classification.py``: 200
epochs, Adam lr 0.01, weight decay 5e-4, dropout 0.5, test accuracy at the best validation
epoch) and link prediction (``RandomLinkSplit`` 85/5/10, a dot-product decoder, fresh
negatives every epoch, ``examples/link_prediction.py``: 100 epochs, test AUROC at the best
validation epoch). Every model is trained with every seed; the table gives mean and
standard deviation over the seeds, training seconds per run (wall clock, this machine),
parameters, and for SpikingGNN the firing rate and synaptic operations (accumulates) of
one full-graph forward pass, counted from its spikes and the graph
(:func:`grsnn.reports.firing_stats.spiking_gnn_stats`: accumulates of the delivered spikes, plus the
multiply-accumulates of its dense encoder and output layers), next to the dense
multiply-accumulates of a 2-layer GCN of the same width (``E * H + N * F * H`` per layer).

Run:  python benchmarks/gnn_comparison.py [--datasets Cora,CiteSeer] [--seeds 3]
          [--hidden 64] [--tasks nc,lp] [--markdown docs/gnn_comparison.md]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

import torch  # noqa: E402

import link_prediction  # noqa: E402
import node_classification  # noqa: E402
from grsnn.reports.firing_stats import spiking_gnn_stats  # noqa: E402

MODELS = ("gcn", "sage", "gat", "spiking")
TASKS = {"nc": ("node classification", "accuracy", node_classification.run, 200),
         "lp": ("link prediction", "AUROC", link_prediction.run, 100)}


def gcn_macs(data, in_channels: int, hidden: int, out: int) -> float:
    """Dense multiply-accumulates of a 2-layer GCN forward pass (messages + transforms)."""
    n, e = data.num_nodes, data.edge_index.size(1) + data.num_nodes   # with self loops
    return float(n * in_channels * hidden + e * hidden + n * hidden * out + e * out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", default="Cora,CiteSeer")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--tasks", default="nc,lp")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--markdown", default=None, help="also write the table to this file")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, width {args.hidden}, "
          f"{args.seeds} seeds", flush=True)
    lines = []
    for task in args.tasks.split(","):
        title, metric, run, epochs = TASKS[task]
        for dataset in args.datasets.split(","):
            lines += [f"\n{title}, {dataset} ({epochs} epochs, width {args.hidden}, "
                      f"{args.seeds} seeds)\n",
                      f"| model | test {metric} | s per run | parameters | firing rate | "
                      f"spiking ops per pass | 2-layer GCN MACs per pass |",
                      "|---|---:|---:|---:|---:|---:|---:|"]
            print("\n".join(lines[-3:]), flush=True)
            for name in args.models.split(","):
                scores, secs, stats = [], [], None
                for seed in range(args.seeds):
                    r = run(dataset, name, epochs, seed, args.hidden, verbose=False)
                    scores.append(r["test"])
                    secs.append(r["seconds"])
                    data = r["data"]
                    if name == "spiking" and seed == 0:
                        stats = spiking_gnn_stats(r["model"], data.x, data.edge_index)
                    params = r["params"]
                spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
                out = int(data.y.max()) + 1 if task == "nc" else args.hidden
                macs = gcn_macs(data, data.num_features, args.hidden, out)
                extra = (f"{stats['firing_rate']:.3f} | {stats['sops'] / 1e6:.2f} M AC + "
                         f"{stats['dense_macs'] / 1e6:.2f} M MAC | " if stats else "- | - | ")
                line = (f"| {name} | {statistics.mean(scores):.3f} ± {spread:.3f} | "
                        f"{statistics.mean(secs):.1f} | {params:,} | {extra}"
                        f"{macs / 1e6:.2f} M |")
                lines.append(line)
                print(line, flush=True)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
