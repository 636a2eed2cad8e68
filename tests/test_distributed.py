"""Distributed training and evaluation (torchrun, 2 CPU processes, gloo) against one process."""
import json
import os
import subprocess
import sys

import pytest
import torch

from grsnn.training import distributed as dist
from grsnn.tasks import load_checkpoint

from test_tasks import write_kg

SETS = ["--set", "model.hidden_dim=8", "--set", "model.time_steps=6",
        "--set", "task.num_negative=8", "--set", "task.eval_batch_size=7",
        "--set", "train.num_epoch=2", "--set", "train.batch_size=16", "--set", "train.seed=3",
        "--set", "train.valid_interval=1", "--quiet"]


def _run(args, nproc=1):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    prefix = [sys.executable, "-m"]
    if nproc > 1:
        prefix += ["torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m"]
    proc = subprocess.run(prefix + ["grsnn.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("n,group", [(10, 1), (16, 1), (3, 1), (12, 4), (11, 2), (0, 1)])
def test_shards_cover_the_items_once_and_keep_groups(monkeypatch, n, group):
    for world in (1, 2, 3):
        cuts = []
        for r in range(world):
            monkeypatch.setattr(dist, "world_size", lambda w=world: w)
            monkeypatch.setattr(dist, "rank", lambda r=r: r)
            cuts.append(dist.shard(n, group))
        assert cuts[0][0] == 0 and cuts[-1][1] == n
        for (_, b), (c, _) in zip(cuts, cuts[1:]):
            assert b == c                               # contiguous, in rank order
        for lo, hi in cuts:
            assert lo % group == 0 and (hi % group == 0 or hi == n)
        sizes = [hi - lo for lo, hi in cuts]
        assert max(sizes) - min(sizes) <= group         # balanced


def test_two_processes_match_one_process(tmp_path):
    data = write_kg(tmp_path / "kg")
    one, two = tmp_path / "one", tmp_path / "two"
    _run(["train", "--data", str(data), "--out", str(one), *SETS])
    out = _run(["train", "--data", str(data), "--out", str(two), *SETS], nproc=2)
    assert "processes: 2" in out and out.count("run directory:") == 2   # rank 0 prints alone
    r1 = json.loads((one / "results.json").read_text())
    r2 = json.loads((two / "results.json").read_text())
    for split in ("valid", "test"):
        for key, value in r1[split].items():
            assert r2[split][key] == pytest.approx(value, rel=1e-6, abs=1e-9), (split, key)
    # the same trajectory: the replicas applied the same (global-batch) gradients
    w1, w2 = load_checkpoint(one / "last.pt")["model"], load_checkpoint(two / "last.pt")["model"]
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-5, atol=1e-6)
    # rank 0 alone wrote the run directory: one log line per epoch, nothing else there
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    log = (two / "log.txt").read_text()
    assert log.count("epoch 1: mean loss") == 1 and log.count("epoch 2 valid") == 1
    # distributed evaluation of a checkpoint gathers the same metrics
    e1 = _run(["eval", "--checkpoint", str(one / "best.pt"), "--quiet"])
    e2 = _run(["eval", "--checkpoint", str(one / "best.pt"), "--quiet"], nproc=2)
    def parse(text):
        return {line.split(": ")[0]: float(line.split(": ")[1])
                for line in text.splitlines() if line.startswith("test.")}
    m1, m2 = parse(e1), parse(e2)
    assert m1 and m1.keys() == m2.keys()
    for k in m1:
        assert m2[k] == pytest.approx(m1[k], rel=1e-6, abs=1e-9), k


def test_a_rank_0_error_stops_every_process(tmp_path):
    """Rank 0 refuses a non-empty run directory: every rank stops with that error (no rank
    left waiting at a barrier)."""
    data = write_kg(tmp_path / "kg")
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node=2", "-m", "grsnn.cli", "train", "--data", str(data),
                           "--out", str(out), *SETS], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.count("run directory is not empty") == 2      # both ranks say why
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "precious"
