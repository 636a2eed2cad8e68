"""``eval_time_steps``: a circuit trained at one horizon, evaluated at another."""
import pytest
import torch
from torch_geometric.data import Data

from grsnn.functional import readout_kernel
from grsnn.nn import GRSNN


def _path(n):
    """The directed path 0 -> 1 -> ... -> n-1, one relation."""
    ei = torch.stack([torch.arange(n - 1), torch.arange(1, n)])
    return Data(edge_index=ei, edge_type=torch.zeros(n - 1, dtype=torch.long), num_nodes=n)


def _wave(model):
    """One neuron per node, delays 0, a synapse and a query current that make a neuron
    fire at the step its input arrives: the wave moves one node per step."""
    with torch.no_grad():
        model.conv.lin.weight.fill_(10.0)
        model.conv.lin.bias.zero_()
        model.query.weight.fill_(10.0)
        model.conv.delay_logit.fill_(-30.0)              # sigmoid -> 0: delay 0
    return model


def test_the_eval_horizon_lets_the_wave_reach_farther_by_hand():
    torch.manual_seed(0)
    model = _wave(GRSNN(1, hidden_dim=1, time_steps=3, eval_time_steps=6, dependent=False,
                        drive="reached"))
    data, h, r = _path(8), torch.tensor([0]), torch.tensor([0])
    trains = model.spike_trains(data, h, r)[..., 0, 0]          # [T, N]
    # source at step 0, then one node per step (a message sent at t arrives at t + 1)
    assert trains.shape == (3, 8)
    first = [int(trains[:, v].float().argmax()) if trains[:, v].any() else None
             for v in range(8)]
    assert first == [0, 1, 2, None, None, None, None, None]
    model.eval()
    assert model.time_steps == 6
    assert torch.equal(model.kappa, readout_kernel(6, 0.95))
    trains = model.spike_trains(data, h, r)[..., 0, 0]
    assert trains.shape == (6, 8)
    first = [int(trains[:, v].float().argmax()) if trains[:, v].any() else None
             for v in range(8)]
    assert first == [0, 1, 2, 3, 4, 5, None, None]
    model.train()
    assert model.time_steps == 3 and model.kappa.numel() == 3
    assert model.spike_trains(data, h, r).size(0) == 3


def test_eval_mode_equals_a_model_built_at_the_eval_horizon():
    torch.manual_seed(1)
    n, rels = 12, 2
    ei = torch.randint(0, n, (2, 40))
    data = Data(edge_index=ei, edge_type=torch.randint(0, rels, (40,)), num_nodes=n)
    kw = dict(hidden_dim=4, linear_scale=3.0, background=True, degree_prior=True,
              drive="reached")
    trained = GRSNN(rels, time_steps=5, eval_time_steps=9, **kw).double()
    long = GRSNN(rels, time_steps=9, **kw).double()
    short = GRSNN(rels, time_steps=5, **kw).double()
    long.load_state_dict(trained.state_dict())         # nothing learnt depends on T
    short.load_state_dict(trained.state_dict())
    batch = torch.tensor([[[0, 3, 1], [0, 5, 1], [0, 7, 1]], [[4, 2, 0], [4, 9, 0], [4, 1, 0]]])
    with torch.no_grad():
        want_train = short(data, batch)
        assert torch.equal(trained(data, batch), want_train)          # training mode: T = 5
        trained.eval(), long.eval(), short.eval()
        got, want = trained(data, batch), long(data, batch)
        assert torch.equal(got, want)
        assert not torch.allclose(got, short(data, batch))          # the horizon matters here
        trained.train()
        assert torch.equal(trained(data, batch), want_train)


def test_eval_time_steps_is_checked():
    with pytest.raises(ValueError, match="eval_time_steps must be >= 1"):
        GRSNN(2, eval_time_steps=0)
    from grsnn.training.config import ConfigError, merge_config
    with pytest.raises(ConfigError, match="eval_time_steps"):
        merge_config({"model": {"eval_time_steps": 0}})
    assert merge_config({"model": {"eval_time_steps": 14}})["model"]["eval_time_steps"] == 14
    assert merge_config({})["model"]["eval_time_steps"] is None


def test_training_runs_its_horizon_and_evaluation_the_eval_horizon(tmp_path, capsys):
    """A run with ``model.eval_time_steps``: validation, test and the by-distance report
    run the longer horizon; the checkpoint also evaluates at another one with ``--set``."""
    from grsnn.cli import main
    from grsnn.tasks import load_trained
    from test_tasks import write_kg
    folder = write_kg(tmp_path / "kg")
    out = tmp_path / "run"
    assert main(["train", "--data", str(folder), "--out", str(out), "--quiet", "--set",
                 "model.hidden_dim=8", "model.time_steps=3", "model.eval_time_steps=5",
                 "train.num_epoch=1", "task.num_negative=4"]) == 0
    task, model = load_trained(out / "best.pt")
    assert model.training and model.time_steps == 3
    assert model.eval().time_steps == 5
    capsys.readouterr()
    args = ["eval", "--checkpoint", str(out / "best.pt"), "--split", "test", "--quiet",
            "--by-distance"]
    assert main(args) == 0
    assert "(horizon 4 hops)" in capsys.readouterr().out
    assert main(args + ["--set", "model.eval_time_steps=7"]) == 0
    assert "(horizon 6 hops)" in capsys.readouterr().out


def test_a_saved_partial_evaluation_is_not_resumed_at_another_horizon():
    """The key of a resumable evaluation (docs: ``grsnn eval`` keeps its progress) tells
    horizons apart: nothing learnt depends on them, so the weights alone would not."""
    from grsnn.training.resumable_eval import model_fingerprint
    torch.manual_seed(0)
    base = GRSNN(2, hidden_dim=4, time_steps=3)
    state = base.state_dict()

    def like(**kw):
        m = GRSNN(2, hidden_dim=4, **kw)
        m.load_state_dict(state)
        return model_fingerprint(m)
    same = like(time_steps=3)
    assert same == model_fingerprint(base)
    others = {like(time_steps=5), like(time_steps=3, eval_time_steps=5),
              like(time_steps=3, eval_time_steps=6)}
    assert same not in others and len(others) == 3


def test_eval_horizons_script_chooses_on_validation(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    from grsnn.cli import main
    from test_tasks import write_kg
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "run"
    assert main(["train", "--data", str(write_kg(tmp_path / "kg")), "--out", str(out),
                 "--quiet", "--set", "model.hidden_dim=8", "model.time_steps=3",
                 "model.drive=reached", "train.num_epoch=1", "task.num_negative=4"]) == 0
    res = subprocess.run([sys.executable, str(root / "scripts" / "eval_horizons.py"), str(out),
                          "--steps", "3,5"], capture_output=True, text=True, cwd=root)
    assert res.returncode == 0, res.stderr
    valid = {}
    for t in (3, 5):       # a transductive graph: chosen by the pessimistic MRR
        text = (out / "horizon" / f"valid_T{t}.txt").read_text()
        assert f"(horizon {t - 1} hops)" in text
        valid[t] = float(text.split("valid.pessimistic.mrr: ")[1].split()[0])
        assert (out / "horizon" / f"test_T{t}.txt").is_file()
    best = 5 if valid[5] > valid[3] else 3
    assert f"chosen on valid mrr: T = {best}" in res.stdout
    assert f"| **{best}** | {valid[best]:.4f} |" in res.stdout
    bad = subprocess.run([sys.executable, str(root / "scripts" / "eval_horizons.py"),
                          str(tmp_path / "none")], capture_output=True, text=True, cwd=root)
    assert bad.returncode == 2 and "best.pt not found" in bad.stderr
    for steps in ("10,x", "0,4"):
        bad = subprocess.run([sys.executable, str(root / "scripts" / "eval_horizons.py"),
                              str(out), "--steps", steps], capture_output=True, text=True,
                             cwd=root)
        assert bad.returncode == 2 and "--steps:" in bad.stderr, steps


def test_eval_horizons_script_chooses_on_the_test_graphs_validation_targets(tmp_path, capsys):
    """``--select test_valid`` on a GraIL split: the `_ind/valid.txt` targets on the test
    graph are evaluated at each horizon and make the choice; ``grsnn eval --split
    test_valid`` names the data set that lacks them."""
    import subprocess
    import sys
    from pathlib import Path
    from grsnn.cli import main
    from test_tasks import write_kg
    root = Path(__file__).resolve().parents[1]
    cfg = tmp_path / "grail.yaml"
    cfg.write_text("dataset:\n  name: WN18RR_v1\nmodel:\n  hidden_dim: 8\n  time_steps: 3\n"
                   "  drive: reached\ntrain:\n  num_epoch: 1\n  max_steps_per_epoch: 2\n"
                   "task:\n  num_negative: 4\n  max_eval_queries: 12\n")
    out = tmp_path / "run"
    assert main(["train", "-c", str(cfg), "--out", str(out), "--quiet"]) == 0
    res = subprocess.run([sys.executable, str(root / "scripts" / "eval_horizons.py"), str(out),
                          "--steps", "3,5", "--select", "test_valid"],
                         capture_output=True, text=True, cwd=root)
    assert res.returncode == 0, res.stderr
    got = {}
    for t in (3, 5):
        text = (out / "horizon" / f"test_valid_T{t}.txt").read_text()
        assert "test_valid.num_queries: 24" in text          # 12 triples, both directions
        got[t] = float(text.split("test_valid.pessimistic.hits@10_50: ")[1].split()[0])
    best = 5 if got[5] > got[3] else 3
    assert f"chosen on test_valid hits@10_50: T = {best}" in res.stdout
    assert "| T | valid hits@10_50 | valid mrr | test_valid hits@10_50 |" in res.stdout
    # a transductive checkpoint has no test_valid split: one line, exit 2
    plain = tmp_path / "plain"
    assert main(["train", "--data", str(write_kg(tmp_path / "kg")), "--out", str(plain),
                 "--quiet", "--set", "model.hidden_dim=8", "model.time_steps=3",
                 "train.num_epoch=1", "task.num_negative=4"]) == 0
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(plain / "best.pt"), "--split", "test_valid"]) != 0
    err = capsys.readouterr().err
    assert "--split test_valid" in err and "has no such split" in err
    assert "Traceback" not in err
