"""The firing-rate regulariser of the task losses (``task.firing_rate_weight``): the
penalty is in the loss of every protocol, and its gradient makes the circuit fire less."""
import pytest
import torch

from grsnn.tasks import merge_config
from grsnn.training.config import ConfigError

from test_task_contract import family_task, kg_task, link_task


def _batch(task):
    rows = 4 * task.rows_per_group
    return task.make_batch(torch.arange(rows) % task.num_train, torch.Generator().manual_seed(0))


def test_the_key_defaults_to_off_and_rejects_negative_weights():
    assert merge_config({})["task"]["firing_rate_weight"] == 0.0
    assert merge_config({"task": {"firing_rate_weight": 0.2}})["task"]["firing_rate_weight"] == 0.2
    with pytest.raises(ConfigError, match="firing_rate_weight"):
        merge_config({"task": {"firing_rate_weight": -0.1}})


@pytest.mark.parametrize("make", [kg_task, link_task, family_task])
def test_the_penalty_is_in_the_training_loss(make, tmp_path):
    torch.manual_seed(0)
    task = make(tmp_path)
    assert not task.build_model().track_rate          # off by default: nothing recorded
    task.cfg["task"]["firing_rate_weight"] = 0.5
    model = task.build_model()
    assert model.track_rate
    graph, batch = _batch(task)
    loss = task.loss(model, graph, batch)
    rate = model.firing_rate
    assert rate.requires_grad and 0 < rate.item() < 1
    task.cfg["task"]["firing_rate_weight"] = 0.0
    plain = task.loss(model, graph, batch)
    assert loss.item() == pytest.approx(plain.item() + 0.5 * rate.item(), rel=1e-6, abs=1e-7)


def _train(tmp_path, weight, steps=8):
    torch.manual_seed(0)
    task = kg_task(tmp_path)
    task.cfg["task"]["firing_rate_weight"] = weight
    model = task.build_model()
    model.track_rate = True                           # measure the rate in both runs
    graph, batch = _batch(task)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    rates = []
    for _ in range(steps):
        opt.zero_grad()
        task.loss(model, graph, batch).backward()
        rates.append(model.firing_rate.item())
        opt.step()
    with torch.no_grad():
        model(graph, batch)
    return rates[0], model.firing_rate.item()


def test_the_penalty_gradient_lowers_the_firing_rate(tmp_path):
    start, plain = _train(tmp_path / "plain", 0.0)
    start_p, penalised = _train(tmp_path / "penalised", 5.0)
    assert start == pytest.approx(start_p)            # same model, same batch
    assert penalised < start and penalised < plain, (start, plain, penalised)
