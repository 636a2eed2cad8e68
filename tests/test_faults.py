"""Faults: a training run killed at any moment resumes to the same result; checkpoints are
never half-written; foreign or malicious checkpoints are refused; the same seed gives the
same metrics."""
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch

from grsnn.data import load_triples_folder
from grsnn.tasks import KGCompletionTask, RunError, Trainer, load_checkpoint, save_checkpoint

from test_tasks import tiny_cfg, write_kg

ARGS = ["--set", "model.hidden_dim=8", "--set", "model.time_steps=6",
        "--set", "task.num_negative=8", "--set", "task.eval_batch_size=7",
        "--set", "train.num_epoch=4", "--set", "train.batch_size=16", "--set", "train.seed=5",
        "--set", "train.valid_interval=1", "--set", "train.checkpoint_interval=1", "--quiet"]


def _train(data, out, *extra):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "grsnn.cli", "train", "--data", str(data),
                             "--out", str(out), *ARGS, *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _epochs(path):
    return [json.loads(line)["epoch"] for line in path.read_text().splitlines()]


@pytest.mark.parametrize("delay", [0.0, 0.35, 0.8])   # epoch 0, epoch 2, final evaluation
def test_sigkill_at_any_moment_then_resume_gives_the_uninterrupted_result(tmp_path, delay):
    data = write_kg(tmp_path / "kg", seed=2)
    ref = _train(data, tmp_path / "ref")
    assert ref.wait(timeout=300) == 0, ref.stderr.read()
    want = json.loads((tmp_path / "ref" / "results.json").read_text())

    run = _train(data, tmp_path / "run")
    deadline = time.time() + 120
    while not (tmp_path / "run" / "last.pt").exists() and run.poll() is None:
        assert time.time() < deadline
        time.sleep(0.01)
    time.sleep(delay)
    run.send_signal(signal.SIGKILL)           # no handler, no cleanup: a real crash
    run.wait(timeout=60)
    state = load_checkpoint(tmp_path / "run" / "last.pt")    # never half-written
    assert run.returncode == -signal.SIGKILL           # killed (early, mid-epoch, final eval)
    again = _train(data, tmp_path / "run")                   # without --resume: refused
    assert again.wait(timeout=120) == 2 and "not empty" in again.stderr.read()
    resumed = _train(data, tmp_path / "run", "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    got = json.loads((tmp_path / "run" / "results.json").read_text())
    assert got == want, f"killed at epoch {state['epoch']} step {state['step']}"
    # a validation that ran before the kill but after the checkpoint is not recorded twice
    assert (_epochs(tmp_path / "run" / "metrics.jsonl")
            == _epochs(tmp_path / "ref" / "metrics.jsonl"))


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "last.pt", {"model": {"w": torch.ones(2)}, "epoch": 1})
    real_save = torch.save

    def dying_save(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        with open(f, "r+b") as fh:        # the disk fills up half-way through
            fh.truncate(20)
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "last.pt", {"model": {"w": torch.zeros(2)}, "epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]   # no temporary left


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_malicious_and_truncated_checkpoints_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open("evil.pt", "wb") as f:
        pickle.dump({"format": "grsnn-checkpoint-1", "model": _Payload()}, f)
    with pytest.raises(RunError, match="evil.pt: not a readable grsnn checkpoint"):
        load_checkpoint("evil.pt")
    assert not (tmp_path / "pwned").exists()          # weights_only: nothing executed
    save_checkpoint("good.pt", {"model": {"w": torch.ones(3)}})
    blob = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(RunError, match="cut.pt"):
        load_checkpoint("cut.pt")


def test_same_seed_same_metrics_other_seed_other_run(tmp_path):
    folder = write_kg(tmp_path / "kg", seed=4)

    def run(name, seed):
        cfg = tiny_cfg(folder, num_epoch=2, seed=seed)
        (tmp_path / name).mkdir()
        trainer = Trainer(KGCompletionTask(load_triples_folder(folder), cfg), cfg,
                          tmp_path / name, progress=False)
        return trainer.fit(), trainer.model.state_dict()

    (a, wa), (b, wb), (_, wc) = run("a", 7), run("b", 7), run("c", 8)
    assert a == b                                       # bit for bit
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)


def test_deterministic_mode_runs_the_whole_engine_and_changes_nothing_on_cpu(tmp_path):
    folder = write_kg(tmp_path / "kg", seed=4)
    results = []
    try:
        for name, flag in (("plain", False), ("det", True)):
            cfg = tiny_cfg(folder, num_epoch=1, seed=7, deterministic=flag)
            (tmp_path / name).mkdir()
            results.append(Trainer(KGCompletionTask(load_triples_folder(folder), cfg), cfg,
                                   tmp_path / name, progress=False).fit())
        assert torch.are_deterministic_algorithms_enabled()   # no op refused to run
    finally:
        torch.use_deterministic_algorithms(False)
    assert results[0] == results[1]


def test_yaml_tags_that_would_run_code_are_refused(tmp_path, monkeypatch):
    from grsnn.tasks import ConfigError, apply_overrides, load_config, merge_config
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.yaml"
    evil.write_text("train:\n  seed: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(ConfigError, match="evil.yaml: not valid YAML"):
        load_config(evil)
    with pytest.raises(ConfigError):
        apply_overrides(merge_config({}),
                        ["train.seed=!!python/object/apply:os.system ['touch pwned']"])
    assert not (tmp_path / "pwned").exists()


def test_checkpoints_with_gradient_accumulation_fall_on_optimizer_steps(tmp_path, monkeypatch):
    """checkpoint_interval 4 with gradient_interval 3: a checkpoint at the first optimizer
    step after every 4 batches (step 6 of 8), and a crash after it resumes exactly."""
    folder = write_kg(tmp_path / "kg", seed=6)
    cfg = tiny_cfg(folder, num_epoch=2, gradient_interval=3, checkpoint_interval=4)
    (tmp_path / "a").mkdir()
    want = Trainer(KGCompletionTask(load_triples_folder(folder), cfg), cfg, tmp_path / "a",
                   progress=False).fit()
    task = KGCompletionTask(load_triples_folder(folder), cfg)
    saved, calls, original = [], {"n": 0}, task.loss

    def crashing_loss(*args):
        calls["n"] += 1
        if calls["n"] == 8 + 8:           # the last batch of epoch 2, after its checkpoint
            raise KeyboardInterrupt
        return original(*args)

    real_save = Trainer.save
    monkeypatch.setattr(Trainer, "save", lambda self, name: (saved.append(
        (name, self.epoch, self.step)), real_save(self, name)))
    monkeypatch.setattr(task, "loss", crashing_loss)
    (tmp_path / "b").mkdir()
    with pytest.raises(KeyboardInterrupt):
        Trainer(task, cfg, tmp_path / "b", progress=False).fit()
    mid = [(e, s) for name, e, s in saved if name == "last.pt" and s]
    assert mid == [(0, 6), (1, 6)]          # optimizer steps at 3, 6, 8: only 6 qualifies
    monkeypatch.undo()
    got = Trainer(KGCompletionTask(load_triples_folder(folder), cfg), cfg, tmp_path / "b",
                  progress=False).fit(resume=True)
    assert got == want


def test_resume_drops_a_best_checkpoint_newer_than_last(tmp_path):
    folder = write_kg(tmp_path / "kg", seed=7)
    cfg = tiny_cfg(folder, num_epoch=1)
    (tmp_path / "run").mkdir()
    trainer = Trainer(KGCompletionTask(load_triples_folder(folder), cfg), cfg,
                      tmp_path / "run", progress=False)
    trainer.epoch = 2
    save_checkpoint(tmp_path / "run" / "best.pt", {**trainer.state(), "epoch": 2})
    trainer._drop_newer_best()
    assert (tmp_path / "run" / "best.pt").is_file()          # same epoch: kept
    save_checkpoint(tmp_path / "run" / "best.pt", {**trainer.state(), "epoch": 3})
    trainer._drop_newer_best()                               # killed before last.pt: dropped
    assert not (tmp_path / "run" / "best.pt").exists()
    assert "dropped best.pt of epoch 3" in (tmp_path / "run" / "log.txt").read_text()
