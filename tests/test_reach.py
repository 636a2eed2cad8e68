"""The reach levers on tiny circuits with hand-computed values: the query-driven drive
(``drive="reached"``), the state readout (first-spike code, final membrane) and the delay
initialisation."""
import math
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

from grsnn.nn import GRSNN, SpikingDelayConv
from grsnn.nn.grsnn import first_spike_code

TAU, VTH = 4.0, 2.0
A, K = math.exp(-1.0 / TAU), math.e / TAU       # membrane decay, PSP gain e / tau


def chain_conv(drive: str, time_steps: int = 2) -> SpikingDelayConv:
    """One neuron per node, W = 1, b = 0.5, no delays."""
    conv = SpikingDelayConv(1, time_steps=time_steps, tau=TAU, v_threshold=VTH, delay=False,
                            drive=drive).double()
    with torch.no_grad():
        conv.lin.weight.fill_(1.0)
        conv.lin.bias.fill_(0.5)
    return conv


# chain 0 -> 1 -> 2 and a node 3 with no edge; the source 0 gets beta = 3 (fires at t = 0)
CHAIN = torch.tensor([[0, 1], [1, 2]])
BETA = torch.tensor([[3.0], [0.0], [0.0], [0.0]], dtype=torch.float64)


@pytest.mark.parametrize("drive", ["always", "reached"])
def test_state_after_one_step_by_hand(drive):
    frames, (c, u) = chain_conv(drive).simulate(BETA, CHAIN, return_state=True)
    assert frames[0].view(-1).tolist() == [1.0, 0.0, 0.0, 0.0]      # beta = 3 >= V_th
    # t = 1: node 0 (has beta, so it is reached) gets only the bias: I = 0.5,
    # c = K * 0.5, u = 0 (reset) + c + beta -> fires and resets
    assert frames[1][0].item() == 1.0 and c[0].item() == pytest.approx(K * 0.5)
    # node 1: the spike of node 0 at t = 0 arrives (delay 0): I = 1 + 0.5
    assert c[1].item() == pytest.approx(K * 1.5) and u[1].item() == pytest.approx(K * 1.5)
    assert frames[1][1].item() == 0.0                                # 1.019 < 2
    # nodes 2 and 3 have received nothing: the bias alone drives them in the paper's
    # circuit, nothing does in the query-driven one
    expected = K * 0.5 if drive == "always" else 0.0
    for v in (2, 3):
        assert c[v].item() == pytest.approx(expected) and u[v].item() == pytest.approx(expected)


def test_bias_enters_from_the_first_arrival_on():
    """Node 1 sees the bias from t = 1 (first arrival) on, node 2 from its own first
    arrival on; before that both are exactly at rest."""
    conv = chain_conv("reached", time_steps=8)
    frames = conv.simulate(BETA, CHAIN)
    spikes = torch.stack(frames).view(8, 4)
    first = [int(spikes[:, v].nonzero()[0]) if spikes[:, v].any() else None for v in range(4)]
    # hand simulation of node 1: input 1 + 0.5 every step (node 0 fires every step)
    c = u = 0.0
    t1 = None
    for t in range(1, 8):
        c = A * c + K * 1.5
        u = A * u + c
        if u >= VTH:
            t1 = t
            break
    assert first[1] == t1 == 2
    assert first[2] is not None and first[2] > first[1]
    assert first[3] is None                                             # never reached
    before = chain_conv("reached", time_steps=first[1] + 1)
    _, (c, u) = before.simulate(BETA, CHAIN, return_state=True)
    assert c[3].item() == 0.0 and u[3].item() == 0.0


def test_query_driven_circuit_is_silent_where_no_path_leads():
    """Random graphs and weights: with drive="reached" a node with no path from a source
    never fires (and every node fires in the paper's circuit when the bias is large)."""
    torch.manual_seed(0)
    n = 30
    ei = torch.randint(0, 20, (2, 60))                    # nodes 20..29 have no edges
    beta = torch.zeros(n, 3, 4)
    beta[0, 0], beta[5, 1], beta[7, 2] = 3.0, 3.0, 3.0
    for drive in ("always", "reached"):
        conv = SpikingDelayConv(4, time_steps=16, drive=drive)
        with torch.no_grad():
            conv.lin.bias.fill_(1.0)
        spikes = conv(beta, ei).bool()                          # [T, N, B, D]
        fired = spikes.any(0).any(-1)                           # [N, B]
        if drive == "always":
            assert fired.all()
            continue
        from grsnn.tasks.distance_breakdown import pair_hop_distances
        src = torch.tensor([0, 5, 7]).repeat_interleave(n)
        hops = pair_hop_distances(ei, n, src, torch.arange(n).repeat(3)).view(3, n).t()
        assert not fired[hops < 0].any()
        assert fired[hops == 0].all()


def test_first_spike_code_by_hand_and_gradient():
    frames = [torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.0, 1.0, 1.0]),
              torch.tensor([1.0, 1.0, 0.0]), torch.tensor([1.0, 0.0, 0.0])]
    code = first_spike_code(frames)                    # T = 4: first spikes at 2, 1, 0
    assert torch.allclose(code, torch.tensor([0.5, 0.75, 1.0]))
    assert first_spike_code([torch.zeros(2), torch.zeros(2)]).tolist() == [0.0, 0.0]
    # d code / d s[t] for a silent neuron: (1 - t/T) for every t (each could be the first)
    x = [torch.zeros(1, requires_grad=True) for _ in range(4)]
    first_spike_code(x).sum().backward()
    assert [g.grad.item() for g in x] == [1.0, 0.75, 0.5, 0.25]


def test_state_readout_features():
    data = Data(edge_index=torch.tensor([[0, 1], [1, 2]]), edge_type=torch.tensor([0, 0]),
                num_nodes=4)
    torch.manual_seed(0)
    model = GRSNN(2, hidden_dim=4, readout="state", drive="reached").double()
    h, r = torch.tensor([0]), torch.tensor([0])
    feat = model.node_features(data, h, r)                      # [B, N, 4D]
    assert feat.shape == (1, 4, 16)
    spikes = model.spikes(data, h, r)                           # [T, N, B, D]
    frames = list(spikes.reshape(spikes.size(0), 4, 4))
    assert torch.allclose(feat[0, :, 4:8], first_spike_code(frames))
    kappa = model.kappa.view(-1, 1, 1)
    assert torch.allclose(feat[0, :, :4], (kappa * spikes[:, :, 0]).sum(0))
    _, (_, u) = model.conv.simulate(_beta(model, 4, h, r), data.edge_index, data.edge_type,
                                    delay_logits=model.relation_parameters(
                                        model.scaled_query(r))[0], return_state=True)
    assert torch.allclose(feat[0, :, 8:12], u / model.v_threshold)
    assert torch.equal(feat[0, 3, :12], torch.zeros(12, dtype=torch.float64))  # unreached
    with pytest.raises(ValueError, match="readout"):
        GRSNN(2, readout="membrane")
    with pytest.raises(ValueError, match="drive"):
        GRSNN(2, drive="sometimes")


def _beta(model, n, h, r):
    q = model.scaled_query(r)
    beta = q.new_zeros(n, 1, model.hidden_dim)
    beta[h, 0] = q
    return beta


def test_delay_init_starts_every_delay_at_zero():
    torch.manual_seed(0)
    plain = GRSNN(6, hidden_dim=8)
    fast = GRSNN(6, hidden_dim=8, delay_init=-6.0)
    free = GRSNN(6, hidden_dim=8, dependent=False, delay_init=-6.0)
    r = torch.arange(6)
    assert plain.integer_delays(r).float().mean() > 0.5
    assert fast.integer_delays(r).max() == 0 and free.integer_delays(r).max() == 0
    fast.reset_parameters()
    assert fast.integer_delays(r).max() == 0


def test_degree_prior_reads_log_relation_degrees():
    # edges 0 -r0-> 1, 1 -r0-> 2, 2 -r1-> 1, 0 -r1-> 3; node 4 isolated
    data = Data(edge_index=torch.tensor([[0, 1, 2, 0], [1, 2, 1, 3]]),
                edge_type=torch.tensor([0, 0, 1, 1]), num_nodes=5)
    model = GRSNN(2, hidden_dim=4, degree_prior=True).double()
    ln2 = math.log(2.0)
    expected = torch.tensor([[0, 0], [ln2, ln2], [ln2, 0], [0, ln2], [0, 0]],
                            dtype=torch.float64)
    assert torch.allclose(model.relation_degrees(data).double(), expected)
    feat = model.node_features(data, torch.tensor([0, 2]), torch.tensor([0, 1]))
    assert feat.shape == (2, 5, 12)
    prior = model.prior(expected)
    assert torch.allclose(feat[0, :, -4:], prior) and torch.allclose(feat[1, :, -4:], prior)
    out = model(data, torch.tensor([[[0, 1, 0], [0, 4, 0]]]))
    out.sum().backward()
    assert model.prior.weight.grad.abs().sum() > 0


def test_degree_prior_clamps_a_new_graph_to_the_training_range():
    """An inductive test graph can hold more edges of a relation at one node than any
    training node had (WN18RR_v1: 3 against 1 for ``_member_meronym``); the counts are
    clamped to what training saw, so the readout stays in the range it was fitted on."""
    # training graph: at most one r0 edge into a node, two r1 edges (into node 3)
    train = Data(edge_index=torch.tensor([[0, 1, 2, 0, 4], [1, 2, 1, 3, 3]]),
                 edge_type=torch.tensor([0, 0, 1, 1, 1]), num_nodes=5)
    # a new graph: node 0 gets three r1 edges, node 1 two r0 edges
    test = Data(edge_index=torch.tensor([[1, 2, 3, 0, 4], [0, 0, 0, 1, 1]]),
                edge_type=torch.tensor([1, 1, 1, 0, 0]), num_nodes=5)
    model = GRSNN(2, hidden_dim=4, degree_prior=True).double()
    assert model.degree_range.tolist() == [-1.0, -1.0]          # nothing seen: no clamp
    model.eval()
    ln = math.log
    assert torch.allclose(model.relation_degrees(test).double()[:2],
                          torch.tensor([[0, ln(4)], [ln(3), 0]], dtype=torch.float64))
    model.train()
    model(train, torch.tensor([[[0, 1, 0], [0, 4, 0]]]))       # a training forward
    assert model.degree_range.tolist() == [1.0, 2.0]
    model.eval()
    clamped = model.relation_degrees(test).double()
    assert torch.allclose(clamped[:2], torch.tensor([[0, ln(3)], [ln(2), 0]],
                                                     dtype=torch.float64))
    assert model.degree_range.tolist() == [1.0, 2.0]            # evaluation leaves it
    # fit_degree_range sets it from a graph; a checkpoint without the buffer loads
    # with no clamp (its old behaviour)
    assert model.fit_degree_range(test).tolist() == [2.0, 3.0]
    state = {k: v for k, v in model.state_dict().items() if k != "degree_range"}
    fresh = GRSNN(2, hidden_dim=4, degree_prior=True).double()
    fresh.fit_degree_range(train)
    fresh.load_state_dict(state)
    assert fresh.degree_range.tolist() == [-1.0, -1.0]


def _assert_fired_where_informed(report) -> None:
    """In a query-driven circuit a node fires exactly when the query informs it."""
    for g in report["groups"]:
        if g["fired"] is not None:
            assert g["informed"] == pytest.approx(g["fired"])


def _compare_output(runs, capsys) -> str:
    """What ``grsnn compare`` prints for the ``paper`` and ``reach`` runs' checkpoints."""
    from grsnn.cli import main

    capsys.readouterr()
    assert main(["compare", str(runs["paper"] / "best.pt"), str(runs["reach"] / "best.pt"),
                 "--queries", "8", "--quiet"]) == 0
    return capsys.readouterr().out


def test_compare_command_reports_both_checkpoints(tmp_path, capsys):
    """``grsnn compare``: the metrics are those of the evaluation of the same checkpoint,
    and in a query-driven circuit a node fires exactly when the query informs it (the
    circuit without the source's current is silent)."""
    import json

    from test_tasks import write_kg

    from grsnn.cli import main
    from grsnn.reports.mechanism import mechanism_report

    folder = write_kg(tmp_path / "kg")
    fast = ["--set", "model.hidden_dim=8", "--set", "model.time_steps=6", "--set",
            "train.num_epoch=1", "--set", "task.num_negative=4", "--quiet"]
    runs = {}
    for name, extra in (("paper", []), ("reach", ["--set", "model.drive=reached", "--set",
                                                  "model.readout=state"])):
        runs[name] = tmp_path / name
        assert main(["train", "--data", str(folder), "--out", str(runs[name]), *fast,
                     *extra]) == 0
    a = mechanism_report(runs["paper"] / "best.pt", queries=8)
    b = mechanism_report(runs["reach"] / "best.pt", queries=8)
    for rep, run in ((a, runs["paper"]), (b, runs["reach"])):
        test = json.loads((run / "results.json").read_text())["test"]
        assert rep["metrics"]["mrr"] == pytest.approx(test["mrr"])
        assert len(rep["firing_rate_per_step"]) == 6
    _assert_fired_where_informed(b)
    out = _compare_output(runs, capsys)
    assert "informed A" in out and "firing rate per time step" in out
    assert f"{a['metrics']['mrr']:.3f}" in out and f"{b['metrics']['mrr']:.3f}" in out


def test_compare_command_on_link_prediction_checkpoints(tmp_path, capsys):
    """``grsnn compare`` on two Cora link-prediction checkpoints (one budgeted step each):
    AUROC per hop-distance group of the positives, the overall AUROC that of the run's own
    test evaluation, and the query-driven circuit's nodes fire exactly where informed."""
    import json

    from grsnn.cli import main
    from grsnn.reports.mechanism import mechanism_report

    config = Path(__file__).resolve().parents[1] / "tasks/paper/link_prediction/cora.yaml"
    fast = ["-c", str(config), "--set", "model.hidden_dim=4",
            "--set", "model.time_steps=4", "--set", "train.num_epoch=1", "--set",
            "train.max_steps_per_epoch=1", "--set", "train.batch_size=4", "--set",
            "task.max_eval_queries=40", "--quiet"]
    runs = {}
    for name, extra in (("paper", []), ("reach", ["--set", "model.drive=reached"])):
        runs[name] = tmp_path / name
        assert main(["train", "--out", str(runs[name]), *fast, *extra]) == 0
    reports = {name: mechanism_report(run / "best.pt", queries=8) for name, run in runs.items()}
    for name, rep in reports.items():
        test = json.loads((runs[name] / "results.json").read_text())["test"]
        assert rep["metric_name"] == "auroc_vs_all_negatives"   # per positives group
        assert rep["metrics"]["auroc"] == pytest.approx(test["auroc"])
        assert len(rep["firing_rate_per_step"]) == 4
        assert sum(g["share"] for g in rep["groups"]) == pytest.approx(1.0, abs=1e-3)
    _assert_fired_where_informed(reports["reach"])
    out = _compare_output(runs, capsys)
    assert "informed A" in out and "auroc" in out
    for rep in reports.values():
        assert f"{rep['metrics']['auroc']:.3f}" in out


def test_checkpoint_without_degree_range_gets_the_training_range(tmp_path):
    """A degree-prior checkpoint written before the training range was recorded loads
    with the range of its task's training graph; a new one keeps the range training
    recorded (never above the training graph's counts, since training removes edges)."""
    from test_tasks import write_kg

    from grsnn.cli import main
    from grsnn.tasks import load_trained
    from grsnn.training.checkpoints import load_checkpoint

    folder = write_kg(tmp_path / "kg")
    out = tmp_path / "run"
    assert main(["train", "--data", str(folder), "--out", str(out), "--set",
                 "model.hidden_dim=8", "model.time_steps=4", "model.degree_prior=true",
                 "train.num_epoch=1", "task.num_negative=4", "--quiet"]) == 0
    state = load_checkpoint(out / "best.pt")
    recorded = state["model"]["degree_range"]
    assert (recorded >= 1).any()
    task, model = load_trained(out / "best.pt", compiled=False)
    assert torch.equal(model.degree_range, recorded)
    graph = task.circuit_queries("train", 1)[0]
    full = model._degree_counts(graph).amax(0)
    assert (recorded <= full).all()
    del state["model"]["degree_range"]
    torch.save(state, out / "old.pt")
    _, old = load_trained(out / "old.pt", compiled=False)
    assert torch.equal(old.degree_range, full)
