"""A trained run evaluated at several horizons, the horizon chosen on validation.

    python scripts/eval_horizons.py results/WN18RR_v2_qs_degree_bg --steps 10,12,14,16

For each run directory and each T of ``--steps``: ``grsnn eval --checkpoint <run>/best.pt
--split <split> --by-distance --set model.eval_time_steps=T`` for the validation and the
test split, kept as ``<run>/horizon/<split>_T<T>.txt`` (skipped where the file exists,
so an interrupted sweep continues). Then one table per run: the headline metric
(Hits@10 against 50 negatives, pessimistic, for GraIL splits; AUROC for link prediction;
MRR, pessimistic, for other knowledge graphs) and the MRR, AP or Hits@10 on both splits,
the tie share on the test split, and the horizon with the best validation figure (the
first of equal ones), which is what a configuration would set as
``model.eval_time_steps``. The test figures are printed for every horizon so that the
choice can be checked, never used to make it.

``--select test_valid`` (GraIL splits) chooses on the benchmark's validation targets of the
test graph (``<split>_ind/valid.txt``, ranked on the test graph with a filter that holds no
test target), evaluated beside the other two: the training graph's validation set can
favour another horizon than the test graph (fewer of its targets are unreachable).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

#: (headline metric, second metric) as `grsnn eval` prints them: inductive knowledge
#: graphs (GraIL), link prediction, transductive knowledge graphs; the first that applies
#: (`grsnn eval --by-distance` prints link prediction's AUROC without its pessimistic twin)
METRICS = (("pessimistic.hits@10_50", "mrr"), ("pessimistic.auroc", "ap"), ("auroc", "ap"),
           ("pessimistic.mrr", "hits@10"))


def _grsnn() -> List[str]:
    """The command line of this checkout's grsnn (the interpreter running this script)."""
    return [sys.executable, "-m", "grsnn"]


def _metrics(path: Path, split: str) -> Dict[str, float]:
    """``<split>.<key>: value`` lines of a `grsnn eval` output."""
    out = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(": ")
        if key.startswith(split + ".") and value:
            try:
                out[key[len(split) + 1:]] = float(value)
            except ValueError:
                pass
    return out


def evaluate(run: Path, split: str, steps: int) -> Path:
    """``<run>/horizon/<split>_T<steps>.txt``, written by `grsnn eval` if missing."""
    path = run / "horizon" / f"{split}_T{steps}.txt"
    if not path.is_file() or path.stat().st_size == 0:
        path.parent.mkdir(exist_ok=True)
        part = path.with_suffix(".part")
        with part.open("w") as f:
            subprocess.run([*_grsnn(), "eval", "--checkpoint", str(run / "best.pt"),
                            "--split", split, "--by-distance", "--quiet",
                            "--set", f"model.eval_time_steps={steps}"],
                           stdout=f, check=True)
        part.replace(path)
    return path


def table(run: Path, steps: List[int], select: str = "valid") -> str:
    """The markdown table of ``run``'s horizons and the one chosen on ``select``."""
    splits = ["valid"] + (["test_valid"] if select == "test_valid" else []) + ["test"]
    rows = {t: {s: _metrics(evaluate(run, s, t), s) for s in splits} for t in steps}
    head, second = next(m for m in METRICS if m[0] in rows[steps[0]]["valid"])
    best = max(steps, key=lambda t: (rows[t][select][head], -steps.index(t)))
    name = head.split(".")[-1]
    lines = [f"{run}: chosen on {select} {name}: T = {best}", "",
             "| T | " + " | ".join(f"{s} {m}" for s in splits for m in (name, second))
             + " | test tied |",
             "|---:|" + "---:|" * (2 * len(splits) + 1)]
    for t in steps:
        mark = "**" if t == best else ""
        cells = [f"{rows[t][s][m]:.4f}" for s in splits for m in (head, second)]
        tied = rows[t]["test"].get("tied_fraction")
        lines.append(f"| {mark}{t}{mark} | " + " | ".join(cells)
                     + f" | {'-' if tied is None else f'{tied:.4f}'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run directories with best.pt")
    p.add_argument("--steps", default="10,12,14,16",
                   help="horizons to evaluate, comma-separated (default 10,12,14,16)")
    p.add_argument("--select", choices=("valid", "test_valid"), default="valid",
                   help="split the horizon is chosen on: valid (the training graph's) or, for "
                        "GraIL, test_valid (`_ind/valid.txt` on the test graph; default valid)")
    args = p.parse_args(argv)
    try:
        steps = [int(x) for x in args.steps.split(",") if x.strip()]
    except ValueError:
        p.error(f"--steps: integers separated by commas, got {args.steps!r}")
    if not steps or min(steps) < 1:
        p.error(f"--steps: horizons of at least 1 step, got {args.steps!r}")
    for run in args.runs:
        if not (run / "best.pt").is_file():
            print(f"eval_horizons.py: {run / 'best.pt'} not found", file=sys.stderr)
            return 2
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    for run in args.runs:
        try:
            print(table(run, steps, args.select) + "\n", flush=True)
        except subprocess.CalledProcessError as err:
            print(f"eval_horizons.py: {run}: grsnn eval failed (exit {err.returncode})",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
