"""The Task contract: every task does what the trainer and the command line call on it.

One set of checks, run on knowledge-graph completion, link prediction and the family rules
(tiny data made here). A new task passes these before the trainer or ``grsnn`` sees it.
"""
import inspect
import math
import re
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

from grsnn.data import DataError, LinkData, load_triples_folder
from grsnn.data.family import family_kg
from grsnn.metrics import METRIC_KEYS, RANK_KINDS
from grsnn.nn import GRSNN
from grsnn.tasks import (KGCompletionTask, LinkPredictionTask, Task, Trainer, build_task,
                         merge_config)
from grsnn.tasks.path_reasoning import FamilyRulesTask
from grsnn.training.trainer import accumulate_gradients

from test_tasks import write_kg

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"model": {"hidden_dim": 4, "time_steps": 4, "compiled": False},
         "task": {"num_negative": 2, "eval_batch_size": 8, "max_eval_queries": 6},
         "train": {"num_epoch": 1, "batch_size": 4, "max_steps_per_epoch": 2}}


def _cfg(**sections):
    raw = {k: dict(v) for k, v in SMALL.items()}
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return merge_config(raw)


def kg_task(tmp_path):
    folder = write_kg(tmp_path / "kg")
    return KGCompletionTask(load_triples_folder(folder), _cfg(dataset={"path": str(folder)}))


def link_task(tmp_path):
    g = torch.Generator().manual_seed(0)
    edges = {(u, v) for c in (0, 10) for u in range(c, c + 10) for v in range(u + 1, c + 10)
             if torch.rand(1, generator=g).item() < 0.6}
    edges = torch.tensor(sorted(edges)).t()
    train, valid, test = edges[:, :40], edges[:, 40:46], edges[:, 46:52]
    neg = torch.stack([torch.arange(6), torch.arange(10, 16)])
    data = LinkData("toy", 20, train, {"train": train, "valid": valid, "test": test},
                    {"valid": neg, "test": neg})
    return LinkPredictionTask(data, _cfg(dataset={"name": "toy"},
                                         task={"name": "link_prediction", "num_negative": 1}))


def family_task(tmp_path):
    kg, rule_of = family_kg(num_families=2, generations=3)
    return FamilyRulesTask(kg, _cfg(dataset={"name": "family"}), rule_of)


MAKERS = {"kg_completion": kg_task, "link_prediction": link_task, "family_rules": family_task}


@pytest.fixture(params=sorted(MAKERS))
def task(request, tmp_path):
    torch.manual_seed(0)
    return MAKERS[request.param](tmp_path)


def _metric_base(key):
    for kind in RANK_KINDS:
        if key.startswith(kind + "."):
            return key[len(kind) + 1:]
    return key


def test_declares_the_whole_interface(task):
    assert isinstance(task, Task) and not inspect.isabstract(type(task))
    assert task.name == task.cfg["task"]["name"]
    assert isinstance(task.rows_per_group, int) and task.rows_per_group >= 1
    assert isinstance(task.circuits_per_row, int) and task.circuits_per_row >= 1
    assert isinstance(task.resumable, bool) and isinstance(task.supports_prediction, bool)
    for method in ("evaluate", "breakdown"):        # the trainer and the CLI pass these
        params = inspect.signature(getattr(task, method)).parameters
        assert {"model", "split", "progress", "partial"} <= set(params), method


def test_model_vocab_and_training_batches(task):
    model = task.build_model()
    assert isinstance(model, GRSNN)
    names = task.relation_names()
    assert all(isinstance(x, str) for x in names)
    assert len(names) <= model.num_relations <= 2 * len(names)     # (inverses)
    vocab = task.vocab()
    assert set(vocab) == {"relations", "entities"}
    assert all(isinstance(x, str) for x in vocab["relations"] + vocab["entities"])
    assert task.num_train > 0
    rows = 4 * task.rows_per_group
    graph, batch = task.make_batch(torch.arange(rows) % task.num_train,
                                   torch.Generator().manual_seed(0))
    assert isinstance(graph, Data) and graph.edge_type.max() < 2 * model.num_relations
    assert batch.dim() == 3 and batch.size(0) == rows and batch.size(2) == 3
    loss = task.loss(model, graph, batch)
    assert loss.dim() == 0 and loss.requires_grad and math.isfinite(loss.item())
    # what the trainer does with it: micro-batches that add up to the batch's loss
    cfg = {**task.cfg, "train": {**task.cfg["train"], "micro_batch": 1}}
    assert accumulate_gradients(task, model, cfg, graph, batch) == pytest.approx(loss.item())


def test_evaluation_and_breakdown(task, tmp_path):
    model = task.build_model()
    metrics = task.evaluate(model, "valid", progress=False)
    assert task.cfg["task"]["metric"] in metrics
    assert all(isinstance(v, float) for v in metrics.values())
    assert {_metric_base(k) for k in metrics} <= set(METRIC_KEYS) | {"num_queries"}
    # a partial file is kept by resumable tasks and ignored by the others; same metrics
    again = task.evaluate(model, "valid", progress=False, partial=tmp_path / "p.pt")
    assert again == pytest.approx(metrics)
    assert not (tmp_path / "p.pt").exists()         # removed once the evaluation is done
    rows = task.breakdown(model, "valid", progress=False)
    assert rows[0]["group"] == "all" and all("group" in r for r in rows)
    graph, heads, rels = task.circuit_queries("test", 3)
    assert isinstance(graph, Data) and 0 < len(heads) == len(rels) <= 3
    assert int(heads.max()) < graph.num_nodes and int(rels.max()) < model.num_relations


def test_queries_by_name_or_a_clear_refusal(task):
    model = task.build_model()
    if task.supports_prediction:
        (head, rel, tail), = task.example_queries("test", 1)
        h, r = task.resolve("test", head, rel)
        assert isinstance(h, int) and isinstance(r, int)
        answers = task.predict(model, head, rel, top=3)
        assert len(answers) == 3
        for name, score, known in answers:
            assert isinstance(name, str) and isinstance(score, float) and isinstance(known, bool)
    else:
        for call in (lambda: task.predict(model, "a", "b"), lambda: task.resolve("test", "a", "b"),
                     lambda: task.example_queries("test", 1)):
            with pytest.raises(DataError, match="knowledge-graph checkpoints"):
                call()


def test_the_trainer_runs_it(task, tmp_path):
    (tmp_path / "run").mkdir()
    results = Trainer(task, task.cfg, tmp_path / "run", progress=False).fit()
    metric = task.cfg["task"]["metric"]
    assert metric in results["valid"] and metric in results["test"]
    assert (tmp_path / "run" / "best.pt").is_file()


def test_build_task_gives_each_kind():
    cfg = merge_config({"dataset": {"name": "family"}})
    task = build_task(cfg)
    assert isinstance(task, FamilyRulesTask) and set(task.rule_of) <= set(task.data.relations)


def test_the_trainer_and_the_command_line_never_probe_a_task():
    for name in ("grsnn/cli.py", "grsnn/training/trainer.py", "grsnn/training/checkpoints.py",
                 "grsnn/training/run_dir.py", "grsnn/tasks/build.py"):
        text = (ROOT / name).read_text(encoding="utf-8")
        assert not re.search(r"\b(hasattr|getattr)\(\s*(self\.)?task\b", text), name
