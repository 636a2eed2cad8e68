"""train.ema_decay: the parameters' moving average, against a hand computation, and what
validation, best.pt and the final test see."""
import json

import pytest
import torch

from grsnn.tasks import KGCompletionTask
from grsnn.data import load_triples_folder
from grsnn.training import ConfigError, Trainer, apply_overrides, load_checkpoint
from grsnn.training.averaging import ParameterAverage
from test_tasks import tiny_cfg, write_kg


def test_average_follows_the_warmed_up_decay_by_hand():
    lin = torch.nn.Linear(2, 1, bias=True).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -2.0]]))
        lin.bias.fill_(0.5)
    avg = ParameterAverage(lin, decay=0.3)
    want_w, want_b = torch.tensor([[1.0, -2.0]], dtype=torch.double), 0.5
    # decays min(0.3, (1 + n) / (10 + n)): 2/11, 3/12 = 0.25, then 0.3, 0.3
    for n, (w, b) in enumerate([([3.0, 0.0], 1.5), ([-1.0, 4.0], 0.0),
                                ([2.0, 2.0], -1.0), ([0.0, 0.0], 2.0)], start=1):
        with torch.no_grad():
            lin.weight.copy_(torch.tensor([w]))
            lin.bias.fill_(b)
        d = [2 / 11, 0.25, 0.3, 0.3][n - 1]
        assert avg.current_decay() == pytest.approx(d)
        avg.update(lin)
        want_w = d * want_w + (1 - d) * torch.tensor([w], dtype=torch.double)
        want_b = d * want_b + (1 - d) * b
        assert torch.allclose(avg.shadow["weight"], want_w, atol=1e-15), n
        assert avg.shadow["bias"].item() == pytest.approx(want_b, abs=1e-15)
    assert avg.updates == 4
    # by hand: w1 = 2/11 [1, -2] + 9/11 [3, 0] = [29/11, -4/11];
    # w2 = 0.25 w1 + 0.75 [-1, 4] = [-1/11, 32/11]; w3 = 0.3 w2 + 0.7 [2, 2] = [15.1/11, 25/11]
    # w4 = 0.3 w3 + 0.7 [0, 0] = [4.53/11, 7.5/11]
    assert torch.allclose(avg.shadow["weight"], torch.tensor([[4.53 / 11, 7.5 / 11]],
                                                             dtype=torch.double), atol=1e-12)


def test_applied_swaps_in_the_average_and_always_restores():
    lin = torch.nn.Linear(3, 2)
    avg = ParameterAverage(lin, decay=0.5)
    with torch.no_grad():
        lin.weight.add_(1.0)
    own = {n: p.detach().clone() for n, p in lin.named_parameters()}
    with pytest.raises(RuntimeError, match="inside"):
        with avg.applied(lin):
            assert torch.equal(lin.weight, avg.shadow["weight"])
            assert not torch.equal(lin.weight, own["weight"])
            raise RuntimeError("inside")
    for n, p in lin.named_parameters():
        assert torch.equal(p, own[n]), n
    state = avg.state_dict()
    other = ParameterAverage(torch.nn.Linear(3, 2), decay=0.5)
    other.load_state_dict(state)
    assert torch.equal(other.shadow["weight"], avg.shadow["weight"])
    assert other.updates == avg.updates
    with pytest.raises(ValueError, match="not this model's"):
        ParameterAverage(torch.nn.Linear(3, 2, bias=False), 0.5).load_state_dict(state)
    with pytest.raises(ValueError, match="decay"):
        ParameterAverage(lin, decay=1.0)


def test_config_rejects_a_decay_of_one_or_more():
    cfg = tiny_cfg("unused")
    with pytest.raises(ConfigError, match="train.ema_decay: must be < 1"):
        apply_overrides(cfg, ["train.ema_decay=1.0"])
    with pytest.raises(ConfigError, match="train.ema_decay: must not be negative"):
        apply_overrides(cfg, ["train.ema_decay=-0.5"])


def test_training_validates_keeps_and_tests_the_average(tmp_path, monkeypatch):
    folder = write_kg(tmp_path / "kg", seed=4)
    cfg = tiny_cfg(folder, num_epoch=2, ema_decay=0.6)
    task = KGCompletionTask(load_triples_folder(folder), cfg)
    trainer = Trainer(task, cfg, tmp_path / "run", progress=False)
    (tmp_path / "run").mkdir()
    # every optimizer step's parameters, to recompute the average by hand
    steps = []
    original_step = trainer.optimizer.step

    def recording_step(*args, **kw):
        out = original_step(*args, **kw)
        steps.append({n: p.detach().clone() for n, p in trainer.model.named_parameters()})
        return out

    monkeypatch.setattr(trainer.optimizer, "step", recording_step)
    init = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    validated = []
    original_eval = task.evaluate

    def recording_eval(model, split, **kw):
        validated.append((split, {n: p.detach().clone() for n, p in model.named_parameters()}))
        return original_eval(model, split, **kw)

    monkeypatch.setattr(task, "evaluate", recording_eval)
    results = trainer.fit()

    want = {n: v.clone() for n, v in init.items()}
    for k, params in enumerate(steps, start=1):
        d = min(0.6, (1 + k) / (10 + k))
        for n in want:
            want[n] = d * want[n] + (1 - d) * params[n]
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert last["average"]["updates"] == len(steps) > 2
    for n, value in want.items():
        assert torch.allclose(last["average"]["shadow"][n], value, atol=1e-6), n
        # last.pt keeps the trained parameters, for the resume
        assert torch.equal(last["model"][n], steps[-1][n]), n
    assert any(not torch.equal(want[n], steps[-1][n]) for n in want)
    # the last validation saw the final average, not the trained parameters
    split, seen = validated[1]
    assert split == "valid"
    for n in want:
        assert torch.allclose(seen[n], want[n], atol=1e-6), n
    # best.pt holds the weights it validated, and the test ran on them
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    epoch_weights = validated[best["epoch"] - 1][1]
    for n, value in epoch_weights.items():
        assert torch.equal(best["model"][n], value), n
    assert validated[-1][0] == "test"
    for n, value in epoch_weights.items():
        assert torch.equal(validated[-1][1][n], value), n
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["test"]["mrr"] == results["test"]["mrr"]
