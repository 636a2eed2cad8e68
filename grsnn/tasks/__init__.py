"""Task heads, protocols and the trainer: ``kg_completion`` and ``link_prediction``."""
from __future__ import annotations

from typing import Any, Dict

from .config import ConfigError, apply_overrides, dump_config, load_config, merge_config
from .kg_completion import KGCompletionTask
from .link_prediction import LinkPredictionTask
from .trainer import RunError, Trainer, evaluate_checkpoint, load_checkpoint, save_checkpoint

__all__ = ["ConfigError", "RunError", "Trainer", "KGCompletionTask", "LinkPredictionTask",
           "build_task", "load_config", "merge_config", "apply_overrides", "dump_config",
           "evaluate_checkpoint", "load_checkpoint", "save_checkpoint"]

HOMOGENEOUS = ("cora", "citeseer", "pubmed")


def build_task(cfg: Dict[str, Dict[str, Any]]):
    """Load the data set of ``cfg['dataset']`` and return the task object."""
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
        return KGCompletionTask(family_kg(seed=ds["seed"])[0], cfg)
    data = load_triples_folder(ds["path"]) if ds["path"] else load_kg(ds["name"], ds["root"])
    return KGCompletionTask(data, cfg)
