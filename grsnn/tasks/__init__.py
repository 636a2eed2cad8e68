"""Task protocols: the :class:`Task` interface and the tasks that implement it
(``kg_completion``, ``link_prediction``, the family rules of ``path_reasoning``), and
:func:`build_task` / :func:`load_trained`, which make one from a config or a checkpoint.

The training machinery they run on lives in :mod:`grsnn.training`; its public names
(:class:`~grsnn.training.Trainer`, :func:`~grsnn.training.load_config`, the checkpoint
functions, ...) are importable from here too, as they always were.
"""
from __future__ import annotations

from ..training import (ConfigError, RunError, Trainer, apply_overrides, dump_config,
                        evaluate_checkpoint, load_checkpoint, load_config, load_model,
                        merge_config, save_checkpoint)
from .base import Task
from .build import build_task, load_trained
from .kg_completion import KGCompletionTask
from .link_prediction import LinkPredictionTask

__all__ = ["ConfigError", "RunError", "Task", "Trainer", "KGCompletionTask",
           "LinkPredictionTask", "build_task", "load_config", "merge_config", "apply_overrides",
           "dump_config", "evaluate_checkpoint", "load_checkpoint", "load_model", "load_trained",
           "save_checkpoint"]
