"""Experiment configuration: YAML sections ``dataset``, ``model``, ``task``, ``optimizer``,
``train``, each a dataclass whose fields are the accepted keys, their types and defaults
(an unknown key is an error naming it).

The ``model`` section is made from the signature of :class:`~grsnn.nn.GRSNN`: every keyword
argument of a plain type (``bool``, ``int``, ``float``, ``str``, optionally ``None``) is a
key with the argument's default, so a new model argument is a config key without an edit
here. :data:`MODEL_OVERRIDES` names the three keys whose config form differs on purpose.

A validated configuration is handed around, and stored in checkpoints, as a plain
``section -> key -> value`` dict (:func:`merge_config`); :class:`Config` is its typed form.

Example:
    >>> cfg = merge_config({"model": {"time_steps": 12}})
    >>> cfg["model"]["time_steps"], cfg["model"]["hidden_dim"]
    (12, 32)
    >>> Config.from_dict({"train": {"seed": 3}}).train.seed
    3
"""
from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from ..functional import PROPAGATIONS
from ..nn import GRSNN

__all__ = ["ConfigError", "Config", "DatasetConfig", "ModelConfig", "TaskConfig",
           "OptimizerConfig", "TrainConfig", "MODEL_OVERRIDES", "DEFAULTS", "load_config",
           "merge_config", "apply_overrides", "dump_config"]


class ConfigError(ValueError):
    """Bad configuration; the message names the file and/or the key."""


def _key(default: Any, positive: bool = False, signed: bool = False,
         choices: Tuple[Any, ...] = ()) -> Any:
    """A config field: its default and the rules its values follow (numbers are never
    negative unless ``signed``; ``positive``: > 0; ``choices``: one of these)."""
    return field(default=default,
                 metadata={"positive": positive, "signed": signed, "choices": choices})


@dataclass
class DatasetConfig:
    """``dataset``: the graph a run trains on."""
    #: fb15k237, wn18rr, fb237_v1..v4, WN18RR_v1..v4, cora, citeseer, pubmed, family
    name: Optional[str] = _key(None)
    #: a folder with train.txt / valid.txt / test.txt (own triples)
    path: Optional[str] = _key(None)
    #: data root for the large data sets
    root: Optional[str] = _key(None)
    #: edge split seed (homogeneous graphs)
    seed: int = _key(0)


@dataclass
class TaskConfig:
    """``task``: the protocol (:mod:`grsnn.tasks`) and its evaluation."""
    name: str = _key("kg_completion", choices=("kg_completion", "link_prediction"))
    num_negative: int = _key(32, positive=True)
    strict_negative: bool = _key(True)
    adversarial_temperature: float = _key(1.0, positive=True)
    #: firing-rate regulariser: ``loss + w * model.firing_rate`` in training (0: off;
    #: turns on the model's ``track_rate``)
    firing_rate_weight: float = _key(0.0)
    #: remove every edge between h and t (FB15k-237)
    remove_one_hop: bool = _key(False)
    #: share of the training graph's facts (both directions; for link prediction its
    #: edges, self loops kept) left out of each training batch's graph, drawn afresh per
    #: batch (0: none; below 1)
    edge_dropout: float = _key(0.0)
    #: queries per circuit run in evaluation
    eval_batch_size: int = _key(32, positive=True)
    #: model selection metric (``auroc`` is the default for link prediction)
    metric: str = _key("mrr", choices=("mrr", "hits@1", "hits@3", "hits@10", "hits@10_50",
                                        "auroc", "ap"))
    #: cap on evaluated target triples per split (budget runs)
    max_eval_queries: Optional[int] = _key(None, positive=True)
    #: memory budget of one evaluation pass in MiB (chunks the queries)
    eval_memory_mb: Optional[float] = _key(None, positive=True)


@dataclass
class OptimizerConfig:
    """``optimizer``: a ``torch.optim`` class by name and its settings."""
    name: str = _key("Adam", choices=("Adam", "AdamW", "SGD"))
    lr: float = _key(5.0e-3, positive=True)
    weight_decay: float = _key(0.0)


@dataclass
class TrainConfig:
    """``train``: the training loop (:class:`~grsnn.training.Trainer`)."""
    num_epoch: int = _key(10, positive=True)
    batch_size: int = _key(32, positive=True)
    gradient_interval: int = _key(1, positive=True)
    seed: int = _key(0)
    #: validate every k epochs
    valid_interval: int = _key(1, positive=True)
    #: budget: batches per epoch
    max_steps_per_epoch: Optional[int] = _key(None, positive=True)
    #: batches between mid-epoch checkpoints
    checkpoint_interval: int = _key(200, positive=True)
    log_interval: int = _key(50, positive=True)
    num_threads: Optional[int] = _key(None, positive=True)
    #: queries per forward/backward pass (None: automatic)
    micro_batch: Optional[int] = _key(None, positive=True)
    #: auto (cuda if available), cpu, cuda, cuda:N
    device: str = _key("auto")
    #: deterministic kernels only (GPU reproducibility)
    deterministic: bool = _key(False)
    #: validate, keep and test the exponential moving average of the parameters with this
    #: decay (warmed up; 0: off, below 1; :mod:`grsnn.training.averaging`)
    ema_decay: float = _key(0.0)


#: ``model`` keys whose config form differs from :class:`~grsnn.nn.GRSNN`'s Python default,
#: on purpose: the surrogate is named in YAML (any callable in Python, where ``None`` means
#: the sigmoid), and configured runs ``torch.compile`` the neuron step (it falls back to
#: eager if compiling fails); a model built in Python stays eager unless asked. A config
#: switches the node features on (``model.node_features: true``) and the task gives the model
#: their width, which a Python caller passes (``GRSNN(..., node_features=F)``).
MODEL_OVERRIDES: Dict[str, Tuple[type, Any]] = {"surrogate": (str, "sigmoid"),
                                                 "compiled": (bool, True),
                                                 "node_features": (bool, False)}
# value rules of model keys (their types and defaults come from the signature)
_MODEL_RULES: Dict[str, Dict[str, Any]] = {
    "hidden_dim": {"positive": True}, "time_steps": {"positive": True},
    "eval_time_steps": {"positive": True},
    "tau": {"positive": True}, "v_threshold": {"positive": True},
    "num_mlp_layers": {"positive": True},
    "delay_init": {"signed": True},                 # a logit offset: may be negative
    "aggregate": {"choices": ("sum", "pna")},
    "drive": {"choices": ("always", "reached")},     # the paper / query-driven circuit
    "readout": {"choices": ("spikes", "state")},     # the paper / + first spike, membrane
    "surrogate": {"choices": ("sigmoid", "atan", "triangle")},
    "propagation": {"choices": tuple(PROPAGATIONS)},
}
_PLAIN = (bool, int, float, str)
#: the largest ``model.delay_bound`` (delays are kept in 5 bits)
MAX_DELAY_BOUND = 30


def _plain_type(hint: Any) -> Optional[Tuple[type, bool]]:
    """``(type, accepts None)`` for ``T`` / ``Optional[T]`` of a plain ``T``, else None."""
    if hint in _PLAIN:
        return hint, False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and args[0] in _PLAIN and len(typing.get_args(hint)) == 2:
            return args[0], True
    return None


def _model_config_class() -> type:
    """The ``model`` section's dataclass, from ``GRSNN.__init__``'s keyword arguments."""
    try:
        hints = typing.get_type_hints(GRSNN.__init__)
    except (NameError, TypeError):     # an annotation that does not resolve at run time
        hints = {}
    fields = []
    for name, param in inspect.signature(GRSNN.__init__).parameters.items():
        if name == "self" or param.default is inspect.Parameter.empty or param.kind not in (
                param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            continue                       # given by the task (num_relations), not configured
        if name in MODEL_OVERRIDES:
            kind, default = MODEL_OVERRIDES[name]
            hint: Any = kind
        else:
            plain = _plain_type(hints.get(name, type(param.default)))
            if plain is None:
                continue                   # not expressible in YAML (a callable, a tensor)
            hint, default = (Optional[plain[0]] if plain[1] else plain[0]), param.default
        fields.append((name, hint, _key(default, **_MODEL_RULES.get(name, {}))))
    cls = dataclasses.make_dataclass("ModelConfig", fields)
    cls.__module__ = __name__
    cls.__doc__ = ("``model``: the keyword arguments of :class:`~grsnn.nn.GRSNN` (made from "
                   "its signature; :data:`MODEL_OVERRIDES` lists the deliberate differences).")
    return cls


ModelConfig = _model_config_class()

_SECTIONS: Dict[str, type] = {"dataset": DatasetConfig, "model": ModelConfig,
                              "task": TaskConfig, "optimizer": OptimizerConfig,
                              "train": TrainConfig}


@dataclass
class Config:
    """A validated configuration, typed: one dataclass per section.

    Example:
        >>> cfg = Config.from_dict({"task": {"name": "link_prediction"}})
        >>> cfg.task.metric, cfg.to_dict()["task"]["metric"]
        ('auroc', 'auroc')
    """
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: Any = field(default_factory=ModelConfig)     # a ModelConfig
    task: TaskConfig = field(default_factory=TaskConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, raw: Dict[str, Any], where: str = "") -> "Config":
        """Validate ``raw`` (``section -> key -> value``) and fill in the defaults."""
        cfg = merge_config(raw, where)
        return cls(**{s: _SECTIONS[s](**values) for s, values in cfg.items()})

    def to_dict(self) -> Dict[str, Dict[str, Any]]:
        """The plain ``section -> key -> value`` dict (what checkpoints store)."""
        return {s: dataclasses.asdict(getattr(self, s)) for s in _SECTIONS}


def _describe(kind: type) -> str:
    return {bool: "true or false", int: "an integer", float: "a number",
            str: "a string"}.get(kind, kind.__name__)


#: the rules of every key: ``(section, key) -> (type, accepts None, metadata)``
_RULES: Dict[Tuple[str, str], Tuple[type, bool, Any]] = {}
for _section, _cls in _SECTIONS.items():
    _hints = typing.get_type_hints(_cls)
    for _field in dataclasses.fields(_cls):
        _plain = _plain_type(_hints[_field.name])
        assert _plain is not None, f"{_section}.{_field.name}: not a plain type"
        _RULES[(_section, _field.name)] = (*_plain, _field.metadata)

#: every accepted key with its default, ``section -> key -> default``
DEFAULTS: Dict[str, Dict[str, Any]] = Config().to_dict()


def _check_value(section: str, key: str, value: Any, where: str) -> Any:
    name = f"{where}{section}.{key}"
    kind, optional, rules = _RULES[(section, key)]
    if value is None:
        if optional:               # an optional key: null means "not set"
            return None
        raise ConfigError(f"{name}: expected {_describe(kind)}, got null")
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false, got {value!r}")
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{name}: expected a finite number, got {value!r}")
    elif kind is str and not isinstance(value, str):
        raise ConfigError(f"{name}: expected a string, got {value!r}")
    if rules.get("positive") and value <= 0:
        raise ConfigError(f"{name}: must be > 0, got {value!r}")
    if (isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0
            and not rules.get("signed")):
        raise ConfigError(f"{name}: must not be negative, got {value!r}")
    choices = rules.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{name}: expected one of {list(choices)}, got {value!r}")
    return value


def merge_config(raw: Dict[str, Any], where: str = "") -> Dict[str, Dict[str, Any]]:
    """Validate ``raw`` against the sections' dataclasses and fill in the defaults.

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
            cfg[section][key] = _check_value(section, key, value, where)
    if cfg["task"]["name"] == "link_prediction" and "metric" not in (raw.get("task") or {}):
        cfg["task"]["metric"] = "auroc"
    for section, key in (("task", "edge_dropout"), ("train", "ema_decay"),
                         ("model", "wave_only_rows")):
        if not cfg[section][key] < 1.0:
            raise ConfigError(f"{where}{section}.{key}: must be < 1, got "
                              f"{cfg[section][key]!r}")
    if cfg["model"]["delay_bound"] > MAX_DELAY_BOUND:
        raise ConfigError(f"{where}model.delay_bound: must be <= {MAX_DELAY_BOUND}")
    _check_query_sized(cfg["model"], where)
    if cfg["model"]["background_pair"] and not cfg["model"]["background"]:
        raise ConfigError(f"{where}model.background_pair: needs model.background=true")
    if cfg["model"]["node_features"] and not cfg["model"]["background"]:
        raise ConfigError(f"{where}model.node_features: needs model.background=true")
    if cfg["model"]["feature_pair"] and not cfg["model"]["node_features"]:
        raise ConfigError(f"{where}model.feature_pair: needs model.node_features=true")
    for key in ("feature_hops", "feature_cosine"):
        if cfg["model"][key] and not cfg["model"]["node_features"]:
            raise ConfigError(f"{where}model.{key}: needs model.node_features=true")
    if cfg["model"]["feature_cosine_hops"] and not cfg["model"]["feature_cosine"]:
        raise ConfigError(f"{where}model.feature_cosine_hops: needs model.feature_cosine=true")
    if cfg["model"]["wave_only_rows"] and not cfg["model"]["background"]:
        raise ConfigError(f"{where}model.wave_only_rows: needs model.background=true")
    if cfg["model"]["wave_meet_dropped"] and not (cfg["model"]["wave_meet"]
                                                  and cfg["model"]["wave_only_rows"]):
        raise ConfigError(f"{where}model.wave_meet_dropped: needs model.wave_meet=true and "
                          f"model.wave_only_rows > 0")
    if cfg["model"]["wave_meet"] and cfg["task"]["name"] != "link_prediction":
        raise ConfigError(f"{where}model.wave_meet: needs task.name link_prediction (a "
                          f"circuit from each end of a pair; task.name is "
                          f"{cfg['task']['name']})")
    if cfg["model"]["node_features"] and cfg["task"]["name"] != "link_prediction":
        raise ConfigError(f"{where}model.node_features: only link prediction data sets have "
                          f"node features (task.name is {cfg['task']['name']})")
    return cfg


def _check_query_sized(model: Dict[str, Any], where: str) -> None:
    """``model.query_sized`` needs the circuit whose unreached nodes pass no gradient."""
    if not model.get("query_sized"):
        return
    need = {"drive": "reached", "aggregate": "sum", "layer_norm": False,
            "readout": "spikes", "surrogate": "triangle"}
    wrong = [f"model.{k}={str(model.get(k)).lower()}" for k, v in need.items()
             if model.get(k) != v]
    if model.get("v_threshold", 2.0) < 1.0:
        wrong.append(f"model.v_threshold={model['v_threshold']} (the triangle's width is 1)")
    if not model.get("fused", True):
        wrong.append("model.fused=false")
    if not model.get("delay", True) and model.get("dependent") and model.get("relation_weight"):
        wrong.append("model.delay=false with query-dependent relation weights")
    if wrong:
        raise ConfigError(f"{where}model.query_sized: needs model.drive=reached, "
                          f"model.surrogate=triangle, sum aggregation, no layer_norm and "
                          f"the spike readout; got {', '.join(wrong)}")


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
