"""Markdown table of the reach ablation runs written by scripts/ablation.sh.

    python scripts/ablation_table.py results/ablation/WN18RR_v1/*
    python scripts/ablation_table.py results/WN18RR_v1 results/WN18RR_v1_qs_degree_bg

One row per run directory (an ablation run, or a full run once `bash
scripts/run_reports.sh <run>` has written its reports): its levers, the test metrics
(Hits@10 against 50 negatives, realistic and pessimistic, or AUROC), MRR, the tie share,
what the answers at each range of hop distances cost (share x (1 - metric), summed over
the range's groups), the firing rate of 64 test queries and the mean seconds per training
epoch from log.txt. The test metrics are those the by-distance report printed (the
current evaluation of best.pt), else those results.json kept from the end of training.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

RANGES = (("1-3", lambda g: g.isdigit() and 1 <= int(g) <= 3),
          ("4-9", lambda g: g.isdigit() and 4 <= int(g) <= 9),
          (">9, none", lambda g: not g.isdigit() or int(g) > 9))


def _breakdown(path: Path):
    """Rows of the by-distance table: {group: {column: value}}."""
    lines = [x.split() for x in path.read_text().splitlines()]
    head = next((x for x in lines if x and x[0] == "group"), None)
    if head is None:
        return {}
    start = lines.index(head) + 1
    rows = {}
    for x in lines[start:]:
        if len(x) != len(head):
            break
        # "-": a group without positives has no AUROC
        rows[x[0]] = {k: float("nan") if v == "-" else float(v) for k, v in zip(head[1:], x[1:])}
    return rows


def _by_distance(run: Path) -> Path:
    """The run's by-distance report: test_by_distance.txt (scripts/run_reports.sh, which
    scripts/ablation.sh calls) or by_distance.txt (the name many ablation runs under
    results/ carry)."""
    for name in ("by_distance.txt", "test_by_distance.txt"):
        if (run / name).is_file():
            return run / name
    return run / "by_distance.txt"


def _test_metrics(run: Path) -> dict:
    """The test metrics: those the by-distance report printed (today's evaluation of
    best.pt), else the ones results.json kept from the end of training."""
    test = json.loads((run / "results.json").read_text())["test"]
    printed = re.findall(r"^test\.(\S+): ([-0-9.e]+)$", _by_distance(run).read_text(), re.M)
    return {**test, **{k: float(v) for k, v in printed}}


def row(run: Path) -> list:
    test = _test_metrics(run)
    kg = "hits@10_50" in test
    metric = "hits@10_50" if kg else "auroc"
    groups = _breakdown(_by_distance(run))
    col = "hits@10_50" if kg else "auroc_vs_all_negatives"
    share = "share" if kg else "positives"
    cost = []
    for _, pick in RANGES:
        miss = sum(r[share] * (1 - r[col]) for g, r in groups.items()
                   if g != "all" and pick(g) and col in r and r[col] == r[col])
        cost.append(f"{miss:.3f}")
    stats = (run / "stats.txt").read_text()
    rate = re.search(r"firing rate \(all steps\): ([0-9.]+)", stats)
    epochs = [float(x) for x in re.findall(r"epoch \d+: mean loss [0-9.]+ over \d+ batches, "
                                            r"([0-9.]+) s", (run / "log.txt").read_text())]
    pess = test.get("pessimistic." + metric)
    tied = test.get("tied_fraction")
    return [run.name, f"{test[metric]:.3f}", "-" if pess is None else f"{pess:.3f}",
            f"{test.get('mrr', test.get('ap', 0)):.3f}",
            "-" if tied is None else f"{tied:.3f}", *cost,
            rate.group(1) if rate else "-",
            f"{sum(epochs) / len(epochs):.0f}" if epochs else "-"]


def main(runs) -> None:
    runs = [Path(r) for r in runs
            if all(f.is_file() for f in (Path(r) / "results.json", _by_distance(Path(r)),
                                         Path(r) / "stats.txt"))]
    head = ["levers", "test metric", "pessimistic", "MRR / AP", "tied", "missed 1-3 hops",
            "missed 4-9 hops", "missed >9 / no path", "firing rate", "logged s / epoch"]
    print("| " + " | ".join(head) + " |")
    print("|---|" + "---:|" * (len(head) - 1))
    for run in runs:
        print("| " + " | ".join(row(run)) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
