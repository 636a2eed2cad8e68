"""The task of a configuration (:func:`build_task`) and of a checkpoint (:func:`load_trained`).

Example:
    >>> from grsnn.tasks import build_task, load_config
    >>> task = build_task(load_config("tasks/path_reasoning/family.yaml"))  # doctest: +SKIP
    >>> task.name                                                           # doctest: +SKIP
    'kg_completion'
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch

from ..nn import GRSNN
from ..training.checkpoints import load_checkpoint, model_from_state, stored_config
from ..training.config import ConfigError
from .base import Task
from .kg_completion import KGCompletionTask
from .link_prediction import LinkPredictionTask

__all__ = ["HOMOGENEOUS", "build_task", "load_trained"]

#: the homogeneous (Planetoid) link data sets ``task.name: link_prediction`` loads by name
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


def load_trained(path: str | Path, device: str | torch.device = "cpu",
                 compiled: Optional[bool] = None) -> Tuple[Task, GRSNN]:
    """The task a checkpoint was trained on (its stored config, its data) and its model.

    Args:
        path: a checkpoint (``best.pt``, ``last.pt``).
        device: where the model goes (default CPU).
        compiled: override ``model.compiled`` (``False``: no ``torch.compile`` for a few
            queries; the scores agree with the compiled kernels to rounding).

    Example:
        >>> task, model = load_trained("results/cora/best.pt")   # doctest: +SKIP
    """
    state = load_checkpoint(path)
    cfg = stored_config(state, path)
    if compiled is not None:
        cfg["model"]["compiled"] = bool(compiled)
    task = build_task(cfg)
    return task, model_from_state(task, state, path, torch.device(device))
