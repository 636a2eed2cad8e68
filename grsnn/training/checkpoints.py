"""Checkpoints: atomic writes, safe reads, and the one loader of trained models.

A checkpoint is a plain dict of tensors and Python scalars (``model``, ``optimizer``,
``config``, ``epoch``, ...) tagged with :data:`CHECKPOINT_FORMAT`, written to a temporary
file and renamed, and read with ``torch.load(..., weights_only=True)``.
:func:`load_trained` turns one into the task it was trained on and its model;
:func:`load_model` loads the weights into a given task's model.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

import torch

from . import distributed as dist
from .memory import keep_freed_memory
from .config import ConfigError, merge_config

if TYPE_CHECKING:
    from ..nn import GRSNN
    from ..tasks.base import Task

__all__ = ["RunError", "CHECKPOINT_FORMAT", "atomic_write", "save_checkpoint",
           "load_checkpoint", "stored_config", "run_checkpoint", "load_model", "model_from_state",
           "evaluate_checkpoint", "partial_eval_path"]

CHECKPOINT_FORMAT = "grsnn-checkpoint-1"


class RunError(RuntimeError):
    """A run directory or checkpoint problem; the message names the path."""


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Write to a temporary file, flush it to disk, then rename it over ``path``: a reader
    (or a crash at any moment) sees the old file or the new one, never a partial one."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_checkpoint(path: str | Path, state: Dict[str, Any]) -> None:
    """Write ``state`` atomically (temporary file, then rename)."""
    state = dict(state, format=CHECKPOINT_FORMAT)
    atomic_write(Path(path), lambda p: torch.save(state, p))


def load_checkpoint(path: str | Path) -> Dict[str, Any]:
    """Load a grsnn checkpoint with ``weights_only=True``; clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt, truncated or foreign pickle
        first = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise RunError(f"{path}: not a readable grsnn checkpoint ({first})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise RunError(f"{path}: not a grsnn checkpoint (missing format tag)")
    return state


def stored_config(state: Dict[str, Any], path: str | Path) -> Dict[str, Dict[str, Any]]:
    """The config saved in a checkpoint, with the defaults of keys added since."""
    try:
        return merge_config(state["config"])
    except (KeyError, ConfigError) as err:
        raise ConfigError(f"{path}: the stored config is not valid ({err})") from None


def run_checkpoint(run_dir: str | Path) -> Path:
    """The checkpoint that stands for a run directory: ``best.pt``, else ``last.pt``."""
    run = Path(run_dir)
    return run / "best.pt" if (run / "best.pt").is_file() else run / "last.pt"


def model_from_state(task: Task, state: Dict[str, Any], path: str | Path,
                     device: torch.device) -> GRSNN:
    """The task's model on ``device`` with the weights of the loaded checkpoint ``state``
    (``path`` names it in errors)."""
    if device.type == "cpu":
        keep_freed_memory()
    model = task.build_model().to(device)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise RunError(f"{path}: checkpoint does not fit this config's model "
                       f"({str(err).splitlines()[0][:120]})") from None
    if model.prior is not None and "degree_range" not in state["model"]:
        # written before the degree prior recorded its training range: set the range
        # training would have recorded, from the training graph
        model.fit_degree_range(task.circuit_queries("train", 1)[0].to(device))
    return model


def load_model(task: Task, path: str | Path, device: str | torch.device | None = None
               ) -> GRSNN:
    """The task's model with the weights of checkpoint ``path``, on ``device`` (default:
    the task's ``train.device``)."""
    state = load_checkpoint(path)
    where = dist.device_for(task.cfg["train"]["device"]) if device is None else torch.device(device)
    return model_from_state(task, state, path, where)


def evaluate_checkpoint(task: Task, path: str | Path, split: str, progress: bool = True,
                        partial: Optional[Path] = None) -> Dict[str, float]:
    """Load ``path`` into the task's model and evaluate ``split`` (``partial``: the file
    that keeps a resumable evaluation's progress, for the tasks that support it)."""
    return task.evaluate(load_model(task, path), split, progress=progress,
                         partial=partial if task.resumable else None)


def partial_eval_path(checkpoint: str | Path, split: str) -> Path:
    """Where ``grsnn eval`` keeps the progress of ``checkpoint``'s evaluation of ``split``:
    beside the checkpoint, ``<name>.eval_<split>.partial.pt``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}.eval_{split}.partial.pt")
