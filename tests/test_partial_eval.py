"""Resumable evaluation (grsnn.training.resumable_eval): an interrupted filtered ranking continues
from its saved chunks and gives exactly the rankings of an uninterrupted one."""
import pytest
import torch

import grsnn.training.resumable_eval as partial_mod
from grsnn.cli import main
from grsnn.data import load_triples_folder
from grsnn.nn import GRSNN
from grsnn.tasks import KGCompletionTask
from grsnn.training.checkpoints import partial_eval_path

from test_tasks import tiny_cfg, write_kg


@pytest.fixture
def small_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(partial_mod, "SAVE_INTERVAL", 0.0)    # save after every chunk
    folder = write_kg(tmp_path / "kg")
    cfg = tiny_cfg(folder)
    cfg["task"]["eval_batch_size"] = 3
    task = KGCompletionTask(load_triples_folder(folder), cfg)
    torch.manual_seed(0)
    return task, task.build_model()


def interrupt_after(monkeypatch, model, calls_before_failure):
    """Make ``model.score_all`` raise KeyboardInterrupt at call ``calls_before_failure + 1``;
    returns the list of calls made."""
    calls, real = [], type(model).score_all.__get__(model)   # the unpatched method

    def score_all(*args, **kw):
        calls.append(1)
        if calls_before_failure is not None and len(calls) > calls_before_failure:
            raise KeyboardInterrupt
        return real(*args, **kw)
    monkeypatch.setattr(model, "score_all", score_all)
    return calls


def test_interrupted_evaluation_resumes_with_identical_rankings(small_chunks, tmp_path,
                                                                monkeypatch):
    task, model = small_chunks
    calls = interrupt_after(monkeypatch, model, None)
    want = task.rankings(model, "test", progress=False)
    chunks = len(calls)
    assert chunks >= 4
    path = tmp_path / "eval.partial.pt"
    interrupt_after(monkeypatch, model, 2)
    with pytest.raises(KeyboardInterrupt):
        task.rankings(model, "test", progress=False, partial=path)
    state = torch.load(path, weights_only=True)
    assert state["next"] == 6 and state["realistic"].numel() > 0     # two chunks of 3 saved
    calls = interrupt_after(monkeypatch, model, None)
    got = task.rankings(model, "test", progress=False, partial=path)
    assert len(calls) == chunks - 2                                  # only the rest ran
    for k in want[0]:
        assert torch.equal(got[0][k], want[0][k])
    for a, b in zip(got[1:], want[1:]):
        assert torch.equal(a, b)
    assert not path.exists()                                         # removed when complete
    assert task.evaluate(model, "test", partial=path) == task.evaluate(model, "test")


def test_partial_results_of_another_model_or_a_broken_file_are_not_used(small_chunks,
                                                                        tmp_path, monkeypatch):
    task, model = small_chunks
    path = tmp_path / "eval.partial.pt"
    calls = interrupt_after(monkeypatch, model, None)
    task.rankings(model, "test", progress=False)
    test_chunks = len(calls)
    assert test_chunks >= 4
    interrupt_after(monkeypatch, model, 2)
    with pytest.raises(KeyboardInterrupt):
        task.rankings(model, "test", progress=False, partial=path)
    calls = interrupt_after(monkeypatch, model, None)
    other = task.rankings(model, "valid", progress=False, partial=path)  # other split
    full = len(calls)
    assert not path.exists()
    interrupt_after(monkeypatch, model, 2)
    with pytest.raises(KeyboardInterrupt):
        task.rankings(model, "test", progress=False, partial=path)
    with torch.no_grad():
        model.conv.lin.bias.add_(0.1)                                # other weights
    calls = interrupt_after(monkeypatch, model, None)
    task.rankings(model, "test", progress=False, partial=path)
    assert len(calls) == test_chunks and not path.exists()
    interrupt_after(monkeypatch, model, 2)
    with pytest.raises(KeyboardInterrupt):
        task.rankings(model, "test", progress=False, partial=path)
    task.cfg["model"]["time_steps"] += 1                             # other model settings
    calls = interrupt_after(monkeypatch, model, None)
    task.rankings(model, "test", progress=False, partial=path)
    assert len(calls) == test_chunks and not path.exists()
    path.write_bytes(b"not a checkpoint")                            # broken file
    calls = interrupt_after(monkeypatch, model, None)
    task.rankings(model, "valid", progress=False, partial=path)
    assert len(calls) == full and other[0]["realistic"].numel() > 0


def test_eval_command_resumes_and_restarts(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(partial_mod, "SAVE_INTERVAL", 0.0)
    folder = write_kg(tmp_path / "kg")
    out = tmp_path / "run"
    assert main(["train", "--data", str(folder), "--out", str(out), "--quiet", "--set",
                 "model.hidden_dim=8", "--set", "model.time_steps=3", "--set",
                 "train.num_epoch=1", "--set", "task.num_negative=4"]) == 0
    assert not list(out.glob("*.partial.pt"))             # the final test left nothing behind
    args = ["eval", "--checkpoint", str(out / "best.pt"), "--split", "test", "--quiet",
            "--set", "task.eval_batch_size=2"]
    capsys.readouterr()
    assert main(args) == 0
    fresh = capsys.readouterr().out
    real, calls = GRSNN.score_all, []

    def score_all(self, *a, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *a, **kw)
    monkeypatch.setattr(GRSNN, "score_all", score_all)
    assert main(args) == 130
    assert "continues from the last saved progress" in capsys.readouterr().err
    path = partial_eval_path(out / "best.pt", "test")
    assert path.is_file() and torch.load(path, weights_only=True)["next"] == 4
    calls.clear()
    monkeypatch.setattr(GRSNN, "score_all", lambda self, *a, **kw: (calls.append(1), real(
        self, *a, **kw))[1])
    assert main(args) == 0
    assert capsys.readouterr().out == fresh and not path.exists()
    resumed = len(calls)
    calls.clear()
    assert main(args) == 0                                  # from the start: more passes
    assert len(calls) == resumed + 2
    capsys.readouterr()
    path.write_bytes(b"x")
    assert main(args + ["--restart"]) == 0 and not path.exists()
    assert capsys.readouterr().out == fresh
