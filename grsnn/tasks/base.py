"""The interface every task implements: what the trainer and the command line call.

A task turns one data set into training batches, a loss, an evaluation and (for knowledge
graphs) answers by name. :class:`Task` declares all of it; :class:`~grsnn.tasks.Trainer`,
:func:`~grsnn.tasks.build_task` and ``grsnn`` call these methods and read these attributes
and nothing else, so a new task is a subclass that the contract test
(``tests/test_task_contract.py``) accepts.

Capabilities a task may lack are declared, not probed: ``resumable`` (its evaluation keeps
its progress in a ``partial`` file), ``supports_prediction`` (:meth:`Task.predict` and
:meth:`Task.resolve` answer queries by entity and relation names). The defaults of those
methods raise :class:`~grsnn.data.DataError` naming what the task is.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data

from ..data import DataError
from ..nn import GRSNN

__all__ = ["Task", "Config"]

#: a validated configuration (:func:`grsnn.tasks.merge_config`): ``section -> key -> value``
Config = Dict[str, Dict[str, Any]]


class Task(ABC):
    """Training batches, loss, evaluation and queries of one data set.

    Attributes:
        name: the ``task.name`` of the configs that build this task.
        data: the data set (:class:`~grsnn.data.KGData` or :class:`~grsnn.data.LinkData`).
        cfg: the validated configuration.
        rows_per_group: training rows that share one loss term; micro-batches and the
            shards of distributed training never split a group.
        resumable: :meth:`evaluate` accepts ``partial`` (a file) and resumes from it.
        supports_prediction: :meth:`predict` and :meth:`resolve` answer queries by name
            (``grsnn predict`` and ``grsnn explain`` need it).
    """

    name: ClassVar[str]
    rows_per_group: ClassVar[int] = 1
    resumable: ClassVar[bool] = False
    supports_prediction: ClassVar[bool] = False

    data: Any
    cfg: Config

    @property
    def circuits_per_row(self) -> int:
        """Circuit runs per training row (sizes the micro-batches)."""
        return 1

    @property
    def split_names(self) -> Tuple[str, ...]:
        """The splits :meth:`evaluate` accepts."""
        return ("train", "valid", "test")

    # ------------------------------------------------------------------ model
    @abstractmethod
    def build_model(self) -> GRSNN:
        """A fresh model for this data set and ``cfg['model']``."""

    @abstractmethod
    def vocab(self) -> Dict[str, List[str]]:
        """Names saved in checkpoints: ``{"relations": [...], "entities": [...]}``."""

    @abstractmethod
    def relation_names(self) -> List[str]:
        """Names of the data set's relations (a knowledge-graph model also has their
        inverses, ``name^-1``, as query relations ``R..2R-1``)."""

    # --------------------------------------------------------------- training
    @property
    @abstractmethod
    def num_train(self) -> int:
        """Training rows per epoch (the trainer shuffles ``range(num_train)``)."""

    @abstractmethod
    def make_batch(self, idx: Tensor, gen: torch.Generator) -> Tuple[Data, Tensor]:
        """The message-passing graph and a batch ``[B, 1 + n, 3]`` of training rows ``idx``."""

    @abstractmethod
    def loss(self, model: GRSNN, graph: Data, batch: Tensor) -> Tensor:
        """Mean loss over the rows (over the row groups) of ``batch``: a scalar."""

    # -------------------------------------------------------------- evaluation
    @abstractmethod
    def evaluate(self, model: GRSNN, split: str, progress: bool = True,
                 partial: Optional[Path] = None) -> Dict[str, float]:
        """Metrics of ``split`` (keys from :data:`grsnn.metrics.METRIC_KEYS` and their
        ``optimistic.``/``pessimistic.`` variants). ``partial``: a file for the progress of
        a :attr:`resumable` task's evaluation (ignored by the others)."""

    @abstractmethod
    def breakdown(self, model: GRSNN, split: str, progress: bool = True,
                  partial: Optional[Path] = None) -> List[Dict[str, Any]]:
        """:meth:`evaluate`'s metrics grouped by the hop distance of each query's source
        to its answer (rows of :func:`grsnn.tasks.distance_breakdown.format_breakdown`; the first
        row is all queries)."""

    @abstractmethod
    def circuit_queries(self, split: str, count: int) -> Tuple[Data, Tensor, Tensor]:
        """The graph of ``split`` and the first ``count`` target queries on it as
        ``(graph, heads, relations)`` (what ``grsnn stats`` measures the circuit on)."""

    # -------------------------------------------------------------- queries
    def _unsupported(self, what: str) -> DataError:
        return DataError(f"{what} works on knowledge-graph checkpoints (kg_completion); "
                         f"this is a {self.name} task")

    def resolve(self, split: str, head: str, relation: str) -> Tuple[int, int]:
        """Ids of an entity name and a relation name on the ``split`` graph."""
        raise self._unsupported("resolve")

    def predict(self, model: GRSNN, head: str, relation: str, top: int = 10,
                split: str = "test") -> List[Tuple[str, float, bool]]:
        """Top answers ``(name, score, known_true)`` of ``(head, relation, ?)``."""
        raise self._unsupported("predict")

    def example_queries(self, split: str, count: int) -> List[Tuple[str, str, str]]:
        """The first ``count`` target triples of ``split`` as names ``(head, relation,
        tail)``: queries to show after training."""
        raise self._unsupported("example queries")
