"""Experiment configuration: YAML sections ``dataset``, ``model``, ``task``, ``optimizer``,
``train``, validated against typed defaults (an unknown key is an error naming it)."""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Dict, List

import yaml

__all__ = ["ConfigError", "DEFAULTS", "load_config", "merge_config", "apply_overrides",
           "dump_config"]


class ConfigError(ValueError):
    """Bad configuration; the message names the file and/or the key."""


# Every accepted key with its default. ``None`` defaults accept any value of a listed type.
DEFAULTS: Dict[str, Dict[str, Any]] = {
    "dataset": {
        "name": None,           # fb15k237, wn18rr, fb237_v1..v4, WN18RR_v1..v4, cora, citeseer,
                                # pubmed, family
        "path": None,           # a folder with train.txt / valid.txt / test.txt (own triples)
        "root": None,           # data root for the large data sets
        "seed": 0,              # edge split seed (homogeneous graphs)
    },
    "model": {
        "hidden_dim": 32, "time_steps": 10, "tau": 4.0, "v_threshold": 2.0, "delay_bound": 4,
        "linear_scale": 1.0, "dependent": True, "relation_weight": False,
        "self_connection": False, "layer_norm": False, "aggregate": "sum", "delay": True,
        "symmetric": False, "readout_decay": 0.95, "num_mlp_layers": 2,
        "surrogate": "sigmoid",
        "compiled": True,       # torch.compile the neuron step (falls back to eager if it fails)
        "drive": "always",      # always (the paper) or reached (query-driven circuit)
        "readout": "spikes",    # spikes (the paper) or state (+ first spike, final membrane)
        "degree_prior": False,  # incoming edges per relation of the candidate, in the readout
        "delay_init": None,     # initial delay logit offset (None: PyTorch's default init)
    },
    "task": {
        "name": "kg_completion",       # or link_prediction
        "num_negative": 32,
        "strict_negative": True,
        "adversarial_temperature": 1.0,
        "remove_one_hop": False,       # remove every edge between h and t (FB15k-237)
        "eval_batch_size": 32,         # queries per circuit run in evaluation
        "metric": "mrr",               # model selection metric (auroc for link prediction)
        "max_eval_queries": None,      # cap on evaluated target triples per split (budget runs)
        "eval_memory_mb": None,        # memory budget of one evaluation pass (chunks queries)
    },
    "optimizer": {"name": "Adam", "lr": 5.0e-3, "weight_decay": 0.0},
    "train": {
        "num_epoch": 10, "batch_size": 32, "gradient_interval": 1, "seed": 0,
        "valid_interval": 1,           # validate every k epochs
        "max_steps_per_epoch": None,   # budget: batches per epoch
        "checkpoint_interval": 200,    # batches between mid-epoch checkpoints
        "log_interval": 50,
        "num_threads": None,
        "micro_batch": None,           # queries per forward/backward pass (None: automatic)
        "device": "auto",              # auto (cuda if available), cpu, cuda, cuda:N
        "deterministic": False,        # deterministic kernels only (GPU reproducibility)
    },
}

_POSITIVE = {("model", "hidden_dim"), ("model", "time_steps"), ("model", "tau"),
             ("model", "num_mlp_layers"), ("task", "num_negative"), ("task", "eval_batch_size"),
             ("optimizer", "lr"), ("train", "num_epoch"), ("train", "batch_size"),
             ("train", "gradient_interval"), ("train", "valid_interval"),
             ("train", "checkpoint_interval"), ("train", "log_interval"),
             ("task", "adversarial_temperature"), ("model", "v_threshold")}
# keys whose default is None ("not set"): the type a set value must have
_OPTIONAL_TYPES = {("model", "delay_init"): float, ("dataset", "name"): str,
                   ("dataset", "path"): str, ("dataset", "root"): str,
                   ("task", "max_eval_queries"): int, ("task", "eval_memory_mb"): float,
                   ("train", "max_steps_per_epoch"): int, ("train", "num_threads"): int,
                   ("train", "micro_batch"): int}
_POSITIVE |= {("task", "max_eval_queries"), ("task", "eval_memory_mb"),
              ("train", "max_steps_per_epoch"), ("train", "num_threads"),
              ("train", "micro_batch")}
_SIGNED = {("model", "delay_init")}     # numbers that may be negative
_CHOICES = {("model", "aggregate"): ("sum", "pna"),
            ("model", "drive"): ("always", "reached"),
            ("model", "readout"): ("spikes", "state"),
            ("model", "surrogate"): ("sigmoid", "atan"),
            ("task", "name"): ("kg_completion", "link_prediction"),
            ("task", "metric"): ("mrr", "hits@1", "hits@3", "hits@10", "hits@10_50", "auroc", "ap"),
            ("optimizer", "name"): ("Adam", "AdamW", "SGD")}


def _check_value(section: str, key: str, value: Any, default: Any, where: str) -> Any:
    name = f"{where}{section}.{key}"
    if value is None:
        if default is None:        # an optional key: null means "not set"
            return None
        kind = {bool: "true or false", int: "an integer", float: "a number",
                str: "a string"}.get(type(default), type(default).__name__)
        raise ConfigError(f"{name}: expected {kind}, got null")
    if default is None and (section, key) in _OPTIONAL_TYPES:
        default = _OPTIONAL_TYPES[(section, key)]()
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false, got {value!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{name}: expected a finite number, got {value!r}")
    elif isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{name}: expected a string, got {value!r}")
    if (section, key) in _POSITIVE and value <= 0:
        raise ConfigError(f"{name}: must be > 0, got {value!r}")
    if (isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0
            and (section, key) not in _SIGNED):
        raise ConfigError(f"{name}: must not be negative, got {value!r}")
    choices = _CHOICES.get((section, key))
    if choices and value not in choices:
        raise ConfigError(f"{name}: expected one of {list(choices)}, got {value!r}")
    return value


def merge_config(raw: Dict[str, Any], where: str = "") -> Dict[str, Dict[str, Any]]:
    """Validate ``raw`` against :data:`DEFAULTS` and fill in the defaults.

    Example:
        >>> merge_config({"train": {"seed": 3}})["train"]["seed"]
        3
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}expected a mapping of sections, got {type(raw).__name__}")
    cfg = copy.deepcopy(DEFAULTS)
    for section, values in raw.items():
        if section not in DEFAULTS:
            raise ConfigError(f"{where}unknown section {section!r}; expected one of "
                              f"{sorted(DEFAULTS)}")
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{where}{section}: expected a mapping, got {values!r}")
        for key, value in values.items():
            if key not in DEFAULTS[section]:
                raise ConfigError(f"{where}unknown key {section}.{key}; expected one of "
                                  f"{sorted(DEFAULTS[section])}")
            cfg[section][key] = _check_value(section, key, value, DEFAULTS[section][key], where)
    if cfg["task"]["name"] == "link_prediction" and "metric" not in (raw.get("task") or {}):
        cfg["task"]["metric"] = "auroc"
    if cfg["model"]["delay_bound"] > 30:
        raise ConfigError(f"{where}model.delay_bound: must be <= 30")
    return cfg


def load_config(path: str | Path) -> Dict[str, Dict[str, Any]]:
    """Read and validate a YAML task file (``yaml.safe_load``; never evaluates code)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"{path}: not valid YAML ({first})") from None
    return merge_config(raw or {}, where=f"{path}: ")


def apply_overrides(cfg: Dict[str, Dict[str, Any]], overrides: List[str]
                    ) -> Dict[str, Dict[str, Any]]:
    """Apply ``section.key=value`` strings (values parsed as YAML scalars).

    Example:
        >>> apply_overrides(merge_config({}), ["train.num_epoch=3"])["train"]["num_epoch"]
        3
    """
    raw = {s: dict(v) for s, v in cfg.items()}
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        dotted, value = item.split("=", 1)
        section, key = dotted.split(".", 1)
        try:
            parsed = yaml.safe_load(value) if value != "" else None
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: cannot parse the value") from None
        raw.setdefault(section, {})[key] = parsed
    return merge_config(raw, where="--set: ")


def dump_config(cfg: Dict[str, Dict[str, Any]]) -> str:
    """The configuration as YAML text."""
    return yaml.safe_dump(cfg, sort_keys=False)

