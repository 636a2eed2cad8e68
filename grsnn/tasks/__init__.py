"""Task protocols (:class:`Task`: ``kg_completion``, ``link_prediction``, the family
rules), the trainer, checkpoints and configuration."""
from __future__ import annotations

from typing import Any, Dict

from .base import Task
from .checkpoints import (RunError, evaluate_checkpoint, load_checkpoint, load_model,
                          load_trained, save_checkpoint)
from .config import ConfigError, apply_overrides, dump_config, load_config, merge_config
from .kg_completion import KGCompletionTask
from .link_prediction import LinkPredictionTask
from .trainer import Trainer

__all__ = ["ConfigError", "RunError", "Task", "Trainer", "KGCompletionTask",
           "LinkPredictionTask", "build_task", "load_config", "merge_config", "apply_overrides",
           "dump_config", "evaluate_checkpoint", "load_checkpoint", "load_model", "load_trained",
           "save_checkpoint"]

HOMOGENEOUS = ("cora", "citeseer", "pubmed")


def build_task(cfg: Dict[str, Dict[str, Any]]) -> Task:
    """Load the data set of ``cfg['dataset']`` and return its task (``task.name``; the
    synthetic ``family`` data set gives a :class:`~.path_reasoning.FamilyRulesTask`)."""
    from ..data import load_kg, load_ogbl, load_planetoid, load_triples_folder

    ds, name = cfg["dataset"], cfg["task"]["name"]
    if ds["path"] is None and ds["name"] is None:
        raise ConfigError("dataset.name or dataset.path must be set")
    if name == "link_prediction":
        dname = str(ds["name"])
        if dname.lower() in HOMOGENEOUS:
            data = load_planetoid(dname, root=ds["root"], seed=ds["seed"])
        elif dname.startswith("ogbl-"):
            if ds["root"] is None:
                raise ConfigError("dataset.root must point at a local OGB root for " + dname)
            data = load_ogbl(dname, ds["root"])
        else:
            raise ConfigError(f"dataset.name: {dname!r} is not a homogeneous link data set "
                              f"({', '.join(HOMOGENEOUS)}, ogbl-*)")
        return LinkPredictionTask(data, cfg)
    if not ds["path"] and str(ds["name"]).lower() == "family":   # synthetic family trees
        from ..data.family import family_kg
        from .path_reasoning import FamilyRulesTask
        family, rule_of = family_kg(seed=ds["seed"])
        return FamilyRulesTask(family, cfg, rule_of)
    kg = load_triples_folder(ds["path"]) if ds["path"] else load_kg(ds["name"], ds["root"])
    return KGCompletionTask(kg, cfg)
