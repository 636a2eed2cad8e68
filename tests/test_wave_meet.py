"""The meet of the two ends' waves (GRSNN(wave_meet=True)): for a pair (h, v), per channel
log(1 + sum_w enc_h[w] * enc_v[w]) of the spike readouts of the circuits run from h and
from v, an input of the scoring MLP."""
import copy
import math

import pytest
import torch
from torch_geometric.data import Data
from test_query_sized import _graph as _kg_graph

import grsnn.nn.query_sized as qs
from grsnn.nn import GRSNN
from grsnn.training.config import ConfigError, merge_config


def _path(n=9):
    """The path 0 - 1 - ... - n-1, both directions and a self loop per node, relation 0
    (the link-prediction graph)."""
    src = torch.arange(n - 1)
    loops = torch.arange(n)
    ei = torch.stack([torch.cat([src, src + 1, loops]), torch.cat([src + 1, src, loops])])
    return Data(edge_index=ei, edge_type=torch.zeros(ei.size(1), dtype=torch.long),
                num_nodes=n)


def _wave(time_steps, **kw):
    """A circuit whose wave moves one hop per step: every delay 0, every synapse 1, no
    bias, q~ = 1 = V_th on every channel; every neuron of a node k hops from the source
    fires at every step from step k on."""
    args = dict(hidden_dim=3, time_steps=time_steps, drive="reached", surrogate="triangle",
                dependent=False, symmetric=True, wave_meet=True, delay_bound=2,
                v_threshold=1.0)
    args.update(kw)
    torch.manual_seed(0)
    model = GRSNN(1, **args).double()
    with torch.no_grad():
        model.conv.lin.weight.fill_(1.0)
        model.conv.lin.bias.zero_()
        model.conv.delay_logit.fill_(-20.0)
        model.query.weight.fill_(1.0)
    return model.eval()


def _inputs(model, data, h, v):
    """The scoring MLP's inputs for the pair (h, v), from node_features of each end and the
    meet from the spike trains (independent of forward's code)."""
    r = torch.tensor([0])
    one = model.node_features(data, torch.tensor([h]), r)[0, v]
    two = model.node_features(data, torch.tensor([v]), r)[0, h]
    kappa = model.kappa.double()
    enc = [torch.einsum("t,tnd->nd", kappa,
                        model.spike_trains(data, torch.tensor([x]), r)[:, :, 0].double())
           for x in (h, v)]
    meet = torch.log1p((enc[0] * enc[1]).sum(0))
    at = 2 * model.hidden_dim
    avg = (one + two) / 2
    return torch.cat([avg[:at], meet, avg[at:]]), meet


def test_meet_by_hand_on_a_path():
    """Path of 9 nodes, one hop per step: node j's readout in the wave from h is
    S(|j - h|) = sum_{t >= |j - h|} kappa_t (0 beyond the horizon), so the meet of (h, v)
    is log(1 + sum_j S(|j - h|) S(|j - v|)) on every channel; at T = 4 the waves from 0
    and 8 (3 hops each) do not meet. The model's logits are the MLP of these inputs."""
    data = _path()
    for steps, pairs in ((6, [(0, 8), (0, 7), (2, 5), (4, 4), (3, 0)]), (4, [(0, 8), (1, 6)])):
        model = _wave(steps)
        rho = model.readout_decay
        kappa = [rho ** t / sum(rho ** s for s in range(steps)) for t in range(steps)]
        reach = [sum(kappa[k:]) for k in range(9)]    # 0 beyond the horizon
        for h, v in pairs:
            want = math.log1p(sum(reach[abs(j - h)] * reach[abs(j - v)] for j in range(9)))
            with torch.no_grad():
                feats, meet = _inputs(model, data, h, v)
                got = model(data, torch.tensor([[[h, v, 0]]]))
            # the model's kernel is a float32 buffer: agreement to its rounding
            torch.testing.assert_close(meet, torch.full((3,), want, dtype=torch.float64),
                                       rtol=1e-6, atol=1e-9)
            torch.testing.assert_close(got, model.score(feats).view(1, 1), rtol=1e-12, atol=1e-12)
            assert (want == 0) == ((steps, h, v) == (4, 0, 8))


@pytest.mark.parametrize("query_sized", [False, True])
def test_training_rows_score_every_candidate_with_its_own_meet(query_sized, monkeypatch):
    """A training batch (one circuit from the head, one from every candidate): each
    candidate's logit is the MLP of its own inputs, whole graph or query-sized alike."""
    monkeypatch.setattr(qs, "CROSSOVER", 1.0)
    data = _path()
    model = _wave(6, query_sized=query_sized)
    batch = torch.tensor([[[0, 7, 0], [0, 8, 0], [0, 3, 0]],
                          [[5, 2, 0], [5, 0, 0], [5, 8, 0]]])
    with torch.no_grad():
        got = model(data, batch)
        want = torch.stack([torch.stack([model.score(_inputs(model, data, int(h), int(v))[0])
                                         for h, v, _ in row]) for row in batch])
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert model.query_sized_fallbacks == 0


def _graph():
    """test_query_sized's sparse random graph (two components, 0..19 and 20..39) as the
    link-prediction graph: every edge relation 0, a self loop per node."""
    kg = _kg_graph()
    loops = torch.arange(int(kg.num_nodes))
    ei = torch.cat([kg.edge_index, torch.stack([loops, loops])], 1)
    return Data(edge_index=ei, edge_type=torch.zeros(ei.size(1), dtype=torch.long),
                num_nodes=kg.num_nodes)


def _grads(model, data, batch):
    model.zero_grad()
    logits = model(data, batch)
    (logits.sin() * torch.linspace(-1, 1, logits.numel(), dtype=logits.dtype)
     .view_as(logits)).sum().backward()
    return logits.detach(), {k: p.grad.clone() for k, p in model.named_parameters()
                             if p.grad is not None}


@pytest.mark.parametrize("kw", [{}, {"background": True, "degree_prior": True,
                                     "wave_only_rows": 0.5}])
def test_query_sized_gives_the_whole_graphs_logits_and_gradients(kw, monkeypatch):
    """Double precision: the meet from the reached subgraphs (scattered into every node)
    equals the whole graph's, logits and every gradient, and its columns learn."""
    monkeypatch.setattr(qs, "CROSSOVER", 1.0)
    data = _graph()
    torch.manual_seed(0)
    dense = GRSNN(1, hidden_dim=5, time_steps=7, drive="reached", surrogate="triangle",
                  dependent=False, symmetric=True, wave_meet=True, delay_bound=2,
                  v_threshold=1.0, **kw).double()
    with torch.no_grad():
        dense.conv.lin.weight.uniform_(0.2, 0.9)
    small = copy.deepcopy(dense)
    small.query_sized = True
    g = torch.Generator().manual_seed(4)
    heads = torch.tensor([0, 3, 25, 7])
    tails = torch.randint(0, 40, (4, 3), generator=g)
    batch = torch.stack([heads.unsqueeze(1).expand_as(tails), tails,
                         torch.zeros_like(tails)], -1)
    torch.manual_seed(1)
    la, ga = _grads(dense, data, batch)
    torch.manual_seed(1)
    lb, gb = _grads(small, data, batch)
    torch.testing.assert_close(la, lb, rtol=1e-12, atol=1e-12)
    assert ga.keys() == gb.keys()
    for k in ga:
        torch.testing.assert_close(ga[k], gb[k], rtol=1e-10, atol=1e-12, msg=k)
    assert small.query_sized_fallbacks == 0
    d = dense.hidden_dim
    at = dense.query_independent_start() - d
    meet_cols = ga["mlp.0.weight"][:, at:at + d]
    assert meet_cols.abs().sum() > 0
    assert ga["conv.delay_logit"].abs().sum() > 0
    # the meet reached something: some pair's inputs are not all zero
    assert dense.meet_features(*_waves(dense, data, batch)).abs().sum() > 0


def _waves(model, data, batch):
    r = torch.tensor([0])
    with torch.no_grad():
        ends = model.node_features(data, batch[:, 0, 0], r.expand(batch.size(0)))
        others = model.node_features(data, batch[..., 1].reshape(-1),
                                     r.expand(batch[..., 1].numel()))
    d = model.hidden_dim
    return ends[..., :d], others[..., :d].view(*batch.shape[:2], -1, d)


def test_wave_only_rows_keep_the_meet():
    """The meet is read from the query's circuits: wave-only rows zero the background
    readout and pair inputs after it, not the meet."""
    torch.manual_seed(0)
    model = GRSNN(1, hidden_dim=4, dependent=False, symmetric=True, wave_meet=True,
                  background=True, degree_prior=True)
    d = model.hidden_dim
    assert model.query_independent_start() == 4 * d          # readout, q~, prior, meet
    assert model.mlp[0].in_features == 5 * d                  # and the background readout
    feat = torch.ones(2, 3, 5 * d)
    out = model.drop_query_independent(feat, torch.tensor([True, False]))
    assert torch.equal(out[0, :, :4 * d], feat[0, :, :4 * d])
    assert torch.equal(out[0, :, 4 * d:], torch.zeros(3, d))
    assert torch.equal(out[1], feat[1])


def test_wave_meet_dropped_zeroes_the_meet_on_wave_only_rows_too():
    torch.manual_seed(0)
    model = GRSNN(1, hidden_dim=4, dependent=False, symmetric=True, wave_meet=True,
                  wave_meet_dropped=True, background=True, degree_prior=True,
                  wave_only_rows=0.3)
    d = model.hidden_dim
    feat = torch.ones(2, 3, 5 * d)
    out = model.drop_query_independent(feat, torch.tensor([True, False]))
    assert torch.equal(out[0, :, :3 * d], feat[0, :, :3 * d])    # readout, q~, prior
    assert torch.equal(out[0, :, 3 * d:], torch.zeros(3, 2 * d))  # meet, background
    assert torch.equal(out[1], feat[1])
    with pytest.raises(ValueError, match="wave_meet_dropped=True needs wave_meet=True"):
        GRSNN(1, symmetric=True, wave_meet=True, wave_meet_dropped=True, background=True)
    with pytest.raises(ConfigError, match="model.wave_meet_dropped: needs model.wave_meet"):
        merge_config({"model": {"wave_meet_dropped": True, "background": True,
                                "wave_only_rows": 0.3}, "task": {"name": "link_prediction"}})


def test_wave_meet_needs_both_ends():
    with pytest.raises(ValueError, match="wave_meet=True needs symmetric=True"):
        GRSNN(2, wave_meet=True)
    with pytest.raises(ConfigError, match="model.wave_meet: needs task.name link_prediction"):
        merge_config({"model": {"wave_meet": True}})
    cfg = merge_config({"model": {"wave_meet": True}, "task": {"name": "link_prediction"}})
    assert cfg["model"]["wave_meet"] is True
