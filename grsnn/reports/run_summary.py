"""One table of several runs: what ``grsnn summary RUN [RUN ...]`` prints.

Everything comes from the run directories the trainer writes (``config.yaml``, ``log.txt``,
``metrics.jsonl``, ``results.json``), so a results table is one command away from the runs:
the epochs trained out of the configured ones, the best validation epoch by the run's own
model selection metric, the test metrics of that epoch (realistic and pessimistic ranks),
the training time the log records and whether the run has finished.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from ..data.triples import DataError
from ..metrics import METRIC_KEYS
from ..training.run_dir import epoch_log_lines, format_duration

__all__ = ["run_summary", "summary_table", "epoch_times"]

# the columns shown by default, in this order, where some run has them
DEFAULT_METRICS = METRIC_KEYS


def epoch_times(log_text: str) -> Dict[int, float]:
    """Seconds of each epoch from a run's ``log.txt`` (the ``epoch N: mean loss ...,
    S s`` lines; a resumed epoch's line counts its pieces before the resume too, unless its
    checkpoint has no ``epoch_seconds``: then it counts the time since the resume).

    Example:
        >>> epoch_times("t epoch 1: mean loss 0.6 over 9 batches, 12.5 s\\n"
        ...             "t epoch 2 batch 5/9: mean loss 0.5, 3 queries/s\\n"
        ...             "t epoch 2: mean loss 0.5 over 9 batches (4 since the resume), 7.0 s")
        {1: 12.5, 2: 7.0}
    """
    return {epoch: line["seconds"] for epoch, line in epoch_log_lines(log_text).items()
            if "seconds" in line}


def _read_json_lines(path: Path) -> List[dict]:
    """The JSON lines of ``path``; a line cut by a kill (the trainer drops it on resume)
    or otherwise unreadable is skipped."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("epoch"), int):
            rows.append(row)
    return rows


def run_summary(run_dir: str | Path) -> Dict[str, Any]:
    """What one run directory says about itself.

    Returns ``run``, ``dataset``, ``epochs`` (trained), ``num_epoch`` (configured),
    ``metric`` (model selection), ``best_epoch`` and ``best_valid`` (by that metric among
    the validated epochs), ``test`` (the metrics of ``results.json``, empty until the run
    has finished), ``train_seconds`` (sum over the logged epochs), ``done`` (the run
    trained its configured epochs and wrote its test: a finished run extended with
    ``--resume --set train.num_epoch=N`` is not done until it reaches N) and
    ``eval_cap`` (``task.max_eval_queries``: the test covered only that many target
    triples, as the budget runs do; their full test is a separate ``grsnn eval``).
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise DataError(f"{run}: no such run directory")
    if not (run / "config.yaml").is_file():
        raise DataError(f"{run}: no config.yaml (not a run directory?)")
    try:
        cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise DataError(f"{run / 'config.yaml'}: not YAML ({err.__class__.__name__})") from None
    ds, task, train = (cfg.get(k) or {} for k in ("dataset", "task", "train"))
    metric = task.get("metric") or ("auroc" if task.get("name") == "link_prediction" else "mrr")
    lines = _read_json_lines(run / "metrics.jsonl") if (run / "metrics.jsonl").is_file() else []
    valid = [r for r in lines if r.get("split") == "valid"]   # none before the first
    scored = [r for r in valid if metric in r]
    best = max(scored, key=lambda r: (r[metric], -r["epoch"])) if scored else None
    log = run / "log.txt"
    times = epoch_times(log.read_text(encoding="utf-8")) if log.is_file() else {}
    results = {}
    if (run / "results.json").is_file():
        try:
            results = json.loads((run / "results.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            raise DataError(f"{run / 'results.json'}: not JSON") from None
        if not isinstance(results, dict):
            raise DataError(f"{run / 'results.json'}: not a JSON object of splits")
    epochs = max([*times, *(r["epoch"] for r in valid), 0])
    finished = "test" in results
    trained_all = epochs >= (train.get("num_epoch") or 0)
    return {"run": run.name, "dataset": ds.get("name") or ds.get("path") or "?",
            "epochs": epochs, "num_epoch": train.get("num_epoch"), "metric": metric,
            "best_epoch": best["epoch"] if best else None,
            "best_valid": best[metric] if best else None,
            "test": results.get("test") or {}, "train_seconds": sum(times.values()),
            "done": finished and trained_all, "stale_test": finished and not trained_all,
            "eval_cap": task.get("max_eval_queries")}


def summary_table(run_dirs: Sequence[str | Path], metrics: Optional[List[str]] = None) -> str:
    """A Markdown table of :func:`run_summary` for every run: test ``metrics`` (default:
    those of ``DEFAULT_METRICS`` that some finished run has; ``pessimistic.*`` are the
    ranks that count every tie against the answer)."""
    rows = [run_summary(r) for r in run_dirs]
    known = sorted({m for r in rows for m in r["test"]})
    if metrics is None:
        metrics = [m for m in DEFAULT_METRICS if m in known]
    for m in metrics:
        if m not in known and known:
            raise DataError(f"unknown metric {m!r} (the runs' test metrics: {', '.join(known)})")
    head = ["run", "data set", "epochs", "best epoch", "valid (selection metric)",
            *(f"test {m}" for m in metrics), "training time", "state"]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] * 4 + ["---:"] * (len(metrics) + 2) + ["---"]) + "|"]
    for r in rows:
        valid = (f"{r['metric']} {r['best_valid']:.4f}" if r["best_valid"] is not None
                 else "not validated")
        cells = [f"{r['test'][m]:.4f}" if m in r["test"] else "" for m in metrics]
        state = "done" if r["done"] else "unfinished (resume with --resume)"
        if r["stale_test"]:
            state += "; its test metrics are from before it was extended"
        if r["done"] and r["eval_cap"]:
            state += f"; test on {r['eval_cap']} target triples only (task.max_eval_queries)"
        lines.append("| " + " | ".join([
            r["run"], str(r["dataset"]), f"{r['epochs']} of {r['num_epoch'] or '?'}",
            str(r["best_epoch"] if r["best_epoch"] is not None else ""), valid, *cells,
            format_duration(r["train_seconds"]), state]) + " |")
    return "\n".join(lines)
