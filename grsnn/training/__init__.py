"""Training infrastructure that every task runs on: the typed configuration
(:mod:`.config`), the training loop (:mod:`.trainer`) and its run directory
(:mod:`.run_dir`), checkpoints (:mod:`.checkpoints`), ``torchrun`` processes
(:mod:`.distributed`), queries per pass and the CPU allocator (:mod:`.memory`),
evaluations that resume where they stopped (:mod:`.resumable_eval`), and the parameters'
moving average (:mod:`.averaging`).

The task protocols (:mod:`grsnn.tasks`) build on this package; it knows them only through
the :class:`~grsnn.tasks.Task` interface it drives.
"""
from __future__ import annotations

from .checkpoints import (CHECKPOINT_FORMAT, RunError, evaluate_checkpoint, load_checkpoint,
                          load_model, run_checkpoint, save_checkpoint)
from .config import ConfigError, apply_overrides, dump_config, load_config, merge_config
from .run_dir import check_run_dir, prepare_run_dir
from .trainer import Trainer

__all__ = ["CHECKPOINT_FORMAT", "ConfigError", "RunError", "Trainer", "apply_overrides",
           "check_run_dir", "dump_config", "evaluate_checkpoint", "load_checkpoint",
           "load_config", "load_model", "merge_config", "prepare_run_dir", "run_checkpoint",
           "save_checkpoint"]
