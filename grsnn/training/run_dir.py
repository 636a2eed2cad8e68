"""The run directory: what a run writes, how a resumed run may differ, how its log reads.

A run directory holds ``config.yaml``, ``log.txt``, ``metrics.jsonl`` (one JSON line per
evaluation), ``last.pt`` (resume point), ``best.pt`` (best by the validation metric) and
``results.json`` (``{"valid": {...}, "test": {...}}``); :class:`~grsnn.training.Trainer`
writes them, every file atomically (temporary file + rename) except the appended logs.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, List

from ..metrics import shown_metrics
from .checkpoints import RunError, atomic_write

__all__ = ["RUN_FILES", "RESUMABLE_CHANGES", "prepare_run_dir", "config_changes",
           "write_text", "forget_metrics_after", "epoch_log_lines", "format_duration",
           "format_metrics"]

#: the files a run writes (``--force`` removes them before it starts over)
RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl", "results.json", "log.txt")


def check_run_dir(out: Path, resume: bool, force: bool) -> None:
    """Refuse a run directory that :func:`prepare_run_dir` would refuse, touching nothing."""
    if out.exists() and not out.is_dir():
        raise RunError(f"{out}: exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not (resume or force):
        raise RunError(f"{out}: run directory is not empty (use --resume to continue it or "
                       f"--force to start over)")
    if resume and not (out / "last.pt").is_file():
        raise RunError(f"{out}: nothing to resume (no last.pt)")


def prepare_run_dir(out: Path, resume: bool, force: bool) -> None:
    """Create ``out``; refuse to reuse a non-empty one unless resuming or forced."""
    check_run_dir(out, resume, force)
    out.mkdir(parents=True, exist_ok=True)
    if force and not resume:
        for name in RUN_FILES:
            if (out / name).exists():
                (out / name).unlink()


# config keys a resumed run may change: they change neither the model nor the results
# (train.num_epoch extends or shortens the run)
RESUMABLE_CHANGES = {("train", k) for k in ("num_epoch", "num_threads", "device", "micro_batch",
                                            "log_interval", "checkpoint_interval")} | {
    ("task", "eval_batch_size"), ("task", "eval_memory_mb"),
    ("dataset", "root")}                  # where the same data set lies on this machine


def config_changes(old: Dict[str, Dict[str, Any]], new: Dict[str, Dict[str, Any]]
                   ) -> List[str]:
    """``section.key: old -> new`` for every value of ``new`` that differs from ``old``
    (a run's stored config), except :data:`RESUMABLE_CHANGES`.

    Example:
        >>> config_changes({"model": {"time_steps": 20}}, {"model": {"time_steps": 10}})
        ['model.time_steps: 20 -> 10']
    """
    out = []
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section, {}), new.get(section, {})
        for key in sorted(set(a) | set(b)):
            if (section, key) not in RESUMABLE_CHANGES and a.get(key) != b.get(key):
                out.append(f"{section}.{key}: {a.get(key)!r} -> {b.get(key)!r}")
    return out


def write_text(path: Path, text: str) -> None:
    """Replace the text file ``path`` atomically (temporary file + rename)."""
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def forget_metrics_after(path: Path, epoch: int) -> bool:
    """Drop the lines of epochs after ``epoch`` from a ``metrics.jsonl`` (and lines cut by a
    kill); returns whether anything was dropped.

    A run killed between validating and checkpointing validates that epoch again when it
    resumes: without this its metrics would stand twice.
    """
    if not path.is_file():
        return False
    lines = path.read_text(encoding="utf-8").splitlines()
    keep = []
    for line in lines:
        try:
            if int(json.loads(line)["epoch"]) <= epoch:
                keep.append(line)
        except (ValueError, KeyError, TypeError):   # a line cut by the kill
            continue
    if keep == lines:
        return False
    write_text(path, "".join(line + "\n" for line in keep))
    return True


def epoch_log_lines(log_text: str) -> Dict[int, Dict[str, float]]:
    """The trainer's end-of-epoch lines of a run's ``log.txt`` (``epoch N: mean loss L over
    B batches[ (K since the resume)], S s``), as ``{N: {"loss": L, "seconds": S}}``;
    progress lines within an epoch are skipped, and where an epoch was logged twice (a
    run resumed after its end-of-epoch line but before the next checkpoint) the last line
    counts. ``seconds`` is missing for lines without a time.

    Example:
        >>> epoch_log_lines("t epoch 1 batch 5/9: mean loss 0.7, 3 queries/s\\n"
        ...                 "t epoch 1: mean loss 0.6 over 9 batches (4 since the resume), 7.0 s")
        {1: {'loss': 0.6, 'seconds': 7.0}}
    """
    lines = {}
    for m in re.finditer(r"\bepoch (\d+): mean loss ([^\s,]+)(?: over \d+ batches[^,\n]*, "
                         r"([\d.]+) s)?", log_text):
        lines[int(m.group(1))] = {"loss": float(m.group(2))}
        if m.group(3) is not None:
            lines[int(m.group(1))]["seconds"] = float(m.group(3))
    return lines


def format_duration(seconds: float) -> str:
    """``seconds`` as ``1h05m``, ``4m10s`` or ``12s``.

    Example:
        >>> format_duration(3900), format_duration(250.4), format_duration(12.6)
        ('1h05m', '4m10s', '13s')
    """
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def format_metrics(metrics: Dict[str, float]) -> str:
    """The metrics a log line shows, ``key value`` with four decimals.

    Example:
        >>> format_metrics({"mrr": 0.5, "hits@1": 0.25})
        'mrr 0.5000, hits@1 0.2500'
    """
    return ", ".join(f"{k} {metrics[k]:.4f}" for k in shown_metrics(metrics))
