"""The background readout (GRSNN(background=True)): every node's readout in the circuit
run once per graph without a query, bias-driven everywhere."""
import copy
import math

import pytest
import torch
from torch_geometric.data import Data

from grsnn.nn import GRSNN


def _graph():
    g = torch.Generator().manual_seed(5)
    src = torch.randint(0, 12, (30,), generator=g)
    dst = torch.randint(0, 12, (30,), generator=g)
    typ = torch.randint(0, 2, (30,), generator=g)
    edge_index = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
    # nodes 12..15 are isolated: nothing but the bias drives them
    return Data(edge_index=edge_index, edge_type=torch.cat([typ, typ + 2]), num_nodes=16)


def _model(bias=(0.2, 0.6), **kw):
    """A small query-driven circuit whose biases (drawn in ``bias``) make the background
    fire within its steps."""
    args = dict(num_relations=4, hidden_dim=5, time_steps=8, drive="reached",
                surrogate="triangle", relation_weight=True, delay_bound=2,
                v_threshold=1.0, background=True)
    args.update(kw)
    torch.manual_seed(0)
    model = GRSNN(**args).double()
    with torch.no_grad():
        model.conv.lin.bias.uniform_(*bias)
    return model


def _readout(model, trains):
    """The spike readout sum_t kappa_t s[t] of trains [T, N, 1, D] (the model's kappa:
    rho^t normalised to sum 1, checked here against the formula)."""
    t = trains.size(0)
    kappa = model.kappa.to(trains.dtype)
    by_hand = torch.tensor([model.readout_decay ** i for i in range(t)], dtype=trains.dtype)
    torch.testing.assert_close(kappa, by_hand / by_hand.sum(), rtol=1e-6, atol=0)
    return torch.einsum("t,tnd->nd", kappa, trains[:, :, 0])


@pytest.mark.parametrize("dependent", [True, False])
def test_background_is_the_bias_driven_circuit_without_a_query(dependent):
    """The same as the paper's circuit (drive='always') run without injection, with the
    query relation's embedding set to the background query vector."""
    data = _graph()
    model = _model(dependent=dependent)
    paper = copy.deepcopy(model)
    paper.conv.drive = "always"
    with torch.no_grad():
        paper.query.weight[1] = model.background_query.weight[0]
    trains = paper.spikes(data, torch.tensor([0]), torch.tensor([1]), inject=False)
    expect = _readout(model, trains)
    got = model.background_features(data)
    torch.testing.assert_close(got, expect, rtol=1e-12, atol=1e-12)
    # the test means something: the bias drives spikes, not everywhere alike
    assert got.ne(0).any() and not torch.allclose(got[0], got[12])
    # the isolated nodes are driven by the bias alone: all alike
    torch.testing.assert_close(got[12:], got[12:13].expand(4, -1))


def test_isolated_neuron_spikes_by_hand():
    """An isolated node, one neuron driven only by its bias b: the LIF dynamics by hand
    (c[t] = a c[t-1] + b, u[t] = a u[t-1] + c[t], spike and reset at V_th) give the
    spike train the background readout is made of."""
    data = Data(edge_index=torch.zeros(2, 0, dtype=torch.long),
                edge_type=torch.zeros(0, dtype=torch.long), num_nodes=1)
    model = _model(hidden_dim=1, num_relations=2)
    with torch.no_grad():
        model.conv.lin.weight.zero_()
        model.conv.lin.bias.fill_(0.4)
    trains = model.conv.simulate(torch.zeros(1, 1, 1, dtype=torch.float64),
                                 data.edge_index, data.edge_type, drive="always")
    got = [float(s.detach()) for s in trains]
    assert got == _lif_by_hand(model, 0.4), (got, _lif_by_hand(model, 0.4))
    assert sum(got) >= 1
    expect = _readout(model, torch.tensor(got, dtype=torch.float64).view(-1, 1, 1, 1))
    torch.testing.assert_close(model.background_features(data), expect)


def _lif_by_hand(model, b, beta=0.0):
    """The spike train of one neuron with bias ``b`` and constant input current ``beta``."""
    a = math.exp(-1.0 / model.conv.tau)
    c = 0.0
    u = beta                                      # t = 0: u = beta
    s = 1.0 if u >= model.v_threshold else 0.0
    u = u * (1 - s)
    out = [s]
    for _ in range(1, model.time_steps):
        c = a * c + math.e / model.conv.tau * b   # the input current: the bias alone
        u = a * u + c + beta
        s = 1.0 if u >= model.v_threshold else 0.0
        u = u * (1 - s)
        out.append(s)
    return out


def test_query_driven_circuit_is_silent_where_the_background_fires():
    data = _graph()
    model = _model()
    with torch.no_grad():
        trains = model.spikes(data, torch.tensor([13]), torch.tensor([0]))
        assert trains[:, :12].eq(0).all()          # the wave from 13 reaches nothing else
        assert model.background_features(data)[:12].ne(0).any()


def test_background_learns_and_scores_unreached_candidates_apart():
    data = _graph()
    model = _model(hidden_dim=6, time_steps=6)
    batch = torch.tensor([[[13, 0, 0], [13, 5, 0], [13, 14, 0]]])   # none reachable
    logits = model(data, batch)
    assert logits[0, 0] != logits[0, 1]             # told apart by the background
    logits.sum().backward()
    assert model.background_query.weight.grad.ne(0).any()
    plain = _model(background=False)
    with torch.no_grad():
        flat = plain(data, batch)
    assert flat[0, 0] == flat[0, 1]                 # without it: one score for both


def test_evaluation_caches_the_background_until_the_graph_or_a_parameter_changes():
    data = _graph()
    model = _model().eval()
    fresh = _model().background_features(data).detach()          # train mode: no cache
    with torch.no_grad():
        first = model.background_features(data)
        assert model.background_features(data) is first             # cached
        torch.testing.assert_close(first, fresh, rtol=0, atol=0)
        # an optimizer step (in place) invalidates it
        model.background_query.weight.add_(0.5)
        moved = model.background_features(data)
        assert moved is not first and not torch.equal(moved, first)
        ref = copy.deepcopy(model).train()
    torch.testing.assert_close(moved, ref.background_features(data).detach(),
                               rtol=0, atol=0)
    with torch.no_grad():
        # another graph, with the same sizes, is simulated afresh
        other = Data(edge_index=data.edge_index.flip(0), edge_type=data.edge_type,
                     num_nodes=16)
        flipped = model.background_features(other)
        assert flipped is not moved
        torch.testing.assert_close(flipped, ref.background_features(other),
                                   rtol=0, atol=0)
    # with gradients on, nothing is cached: the result carries its graph
    out = model.background_features(data)
    assert out.requires_grad and out is not moved


def test_a_used_model_deep_copies_and_pickles_without_its_graph_caches():
    import pickle
    data = _graph()
    model = _model().eval()
    with torch.no_grad():
        before = model.score_all(data, torch.tensor([0, 3]), torch.tensor([1, 2]))
    assert model._plan is not None and model._background is not None
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert twin._plan is None and twin._background is None
        with torch.no_grad():
            torch.testing.assert_close(
                twin.score_all(data, torch.tensor([0, 3]), torch.tensor([1, 2])), before,
                rtol=0, atol=0)
    assert model._plan is not None                      # the original keeps its caches


def test_background_pair_feature_is_the_product_of_source_and_candidate_readouts():
    data = _graph()
    model = _model(hidden_dim=4, time_steps=6, background_pair=True)
    d = model.hidden_dim
    batch = torch.tensor([[[13, 0, 0], [13, 5, 0], [13, 14, 0]],
                          [[2, 7, 1], [2, 12, 1], [2, 3, 1]]])
    h, t = batch[:, 0, 0], batch[..., 1]
    with torch.no_grad():
        bg = model.background_features(data)
        feat = model.node_features(data, h, batch[:, 0, 2])                  # [B, N, F]
    assert feat.size(-1) == 4 * d                   # readout, query, background, pair
    for b in range(2):
        for v in t[b].tolist():
            pair = [bg[h[b], k].item() * bg[v, k].item() for k in range(d)]
            assert feat[b, v, 3 * d:].tolist() == pytest.approx(pair, rel=1e-12, abs=1e-15)
            assert torch.equal(feat[b, v, 2 * d:3 * d], bg[v])
    assert feat[..., 3 * d:].ne(0).any()
    logits = model(data, batch)
    logits.sum().backward()
    assert model.mlp[0].weight.grad[:, 3 * d:].ne(0).any()     # the pair columns learn
    with pytest.raises(ValueError, match="background_pair=True needs background=True"):
        GRSNN(2, background_pair=True)


def test_config_refuses_background_pair_without_background():
    from grsnn.training.config import ConfigError, merge_config
    with pytest.raises(ConfigError, match="model.background_pair: needs model.background=true"):
        merge_config({"model": {"background_pair": True}})
    cfg = merge_config({"model": {"background_pair": True, "background": True}})
    assert cfg["model"]["background_pair"] is True
    assert merge_config({})["model"]["background_pair"] is False


def test_node_features_drive_isolated_neurons_by_hand():
    """node_features: an isolated node's neuron gets the constant input current
    beta = (V_th / 2) W x / |x| besides its bias; by hand, for two feature vectors, and
    the all-zero vector gives the bias-driven background."""
    data = Data(edge_index=torch.zeros(2, 0, dtype=torch.long),
                edge_type=torch.zeros(0, dtype=torch.long), num_nodes=3,
                x=torch.tensor([[3.0, 4.0], [0.0, -2.0], [0.0, 0.0]], dtype=torch.float64))
    model = _model(hidden_dim=1, num_relations=2, node_features=2)
    with torch.no_grad():
        model.conv.lin.weight.zero_()
        model.conv.lin.bias.fill_(0.3)
        model.feature_encoder.weight.copy_(torch.tensor([[0.5, 1.0]]))
    # unit features (0.6, 0.8) and (0, -1): W x = 1.1 and -1.0, times V_th / 2 = 0.5
    betas = [0.55, -0.5, 0.0]
    trains = [_lif_by_hand(model, 0.3, beta) for beta in betas]
    assert len({tuple(t) for t in trains}) == 3        # three different trains
    expect = _readout(model, torch.tensor(trains, dtype=torch.float64).t()
                      .reshape(-1, 3, 1, 1))
    got = model.background_features(data)
    torch.testing.assert_close(got, expect, rtol=1e-12, atol=1e-12)
    plain = _model(hidden_dim=1, num_relations=2)
    with torch.no_grad():
        plain.conv.lin.weight.zero_()
        plain.conv.lin.bias.fill_(0.3)
    torch.testing.assert_close(got[2], plain.background_features(data)[2])


def test_node_features_tell_alike_neighbourhoods_apart_and_learn():
    data = _graph()
    data.x = torch.rand(16, 7, generator=torch.Generator().manual_seed(2),
                        dtype=torch.float64)
    model = _model(hidden_dim=6, time_steps=6, node_features=7, background_pair=True)
    bg = model.background_features(data)
    # the isolated nodes 12..15, alike without features, now differ
    assert len({tuple(row.tolist()) for row in bg[12:]}) > 1
    batch = torch.tensor([[[13, 0, 0], [13, 5, 0], [13, 14, 0]]])   # none reachable
    logits = model(data, batch)
    logits.sum().backward()
    assert model.feature_encoder.weight.grad.ne(0).any()
    assert model.feature_encoder.weight.shape == (6, 7)
    # the features are read from the graph the model is given
    with pytest.raises(ValueError, match=r"data.x must be \[16, 7\], got None"):
        model.background_features(_graph())
    data.x = data.x[:, :5]
    with pytest.raises(ValueError, match=r"data.x must be \[16, 7\], got \(16, 5\)"):
        model.background_features(data)
    with pytest.raises(ValueError, match="node_features > 0 needs background=True"):
        GRSNN(2, node_features=3)


def test_evaluation_cache_follows_the_node_features():
    data = _graph()
    data.x = torch.rand(16, 4, generator=torch.Generator().manual_seed(3),
                        dtype=torch.float64)
    model = _model(node_features=4).eval()
    with torch.no_grad():
        first = model.background_features(data)
        assert model.background_features(data) is first
        data.x.mul_(-1.0)                                   # changed in place
        flipped = model.background_features(data)
        assert not torch.equal(flipped, first)
        torch.testing.assert_close(flipped, copy.deepcopy(model).train()
                                   .background_features(data), rtol=0, atol=0)


def test_config_switches_node_features_on_for_data_sets_that_have_them():
    from grsnn.data import LinkData
    from grsnn.tasks import LinkPredictionTask
    from grsnn.tasks.kg_helpers import model_arguments
    from grsnn.training.config import ConfigError, merge_config
    with pytest.raises(ConfigError, match="model.node_features: needs model.background=true"):
        merge_config({"model": {"node_features": True}})
    cfg = merge_config({"dataset": {"name": "toy"}, "task": {"name": "link_prediction"},
                        "model": {"node_features": True, "background": True,
                                  "hidden_dim": 4, "time_steps": 4, "compiled": False}})
    assert merge_config({})["model"]["node_features"] is False
    with pytest.raises(ConfigError, match="model.node_features: only link prediction"):
        merge_config({"model": {"node_features": True, "background": True}})
    edges = torch.tensor([[0, 1, 2], [1, 2, 3]])
    pairs = {"train": edges, "valid": edges[:, :1], "test": edges[:, 1:]}
    featured = LinkData("toy", 4, edges, pairs, {"valid": edges[:, :1], "test": edges[:, 1:]},
                        x=torch.eye(4)[:, :3])
    task = LinkPredictionTask(featured, cfg)
    model = task.build_model()
    assert model.feature_dim == 3 and model.feature_encoder.weight.shape == (4, 3)
    # the features travel with the graph of every training batch (easy edges removed)
    graph, batch = task.make_batch(torch.tensor([0, 1]), torch.Generator().manual_seed(0))
    assert graph.x is task.graph.x and torch.equal(graph.x, featured.x)
    assert model(graph, batch).shape == batch.shape[:2]
    # a model without them leaves them off the graph
    plain = merge_config({"task": {"name": "link_prediction"}})
    assert LinkPredictionTask(featured, plain).graph.x is None
    bare = LinkData("toy", 4, edges, pairs, {"valid": edges[:, :1], "test": edges[:, 1:]})
    with pytest.raises(ConfigError, match="model.node_features: toy has no node features"):
        LinkPredictionTask(bare, cfg).build_model()
    assert model_arguments(merge_config({}))["node_features"] == 0


def test_feature_pair_is_the_product_of_the_two_ends_feature_currents():
    data = _graph()
    data.x = torch.rand(16, 5, generator=torch.Generator().manual_seed(4),
                        dtype=torch.float64)
    model = _model(hidden_dim=4, time_steps=6, node_features=5, feature_pair=True)
    d, half = model.hidden_dim, model.v_threshold / 2
    batch = torch.tensor([[[13, 0, 0], [13, 5, 0], [13, 14, 0]],
                          [[2, 7, 1], [2, 12, 1], [2, 3, 1]]])
    h, t = batch[:, 0, 0], batch[..., 1]
    w = model.feature_encoder.weight.detach()
    with torch.no_grad():
        feat = model.node_features(data, h, batch[:, 0, 2])
    assert feat.size(-1) == 4 * d                   # readout, query, background, pair
    for b in range(2):
        xh = data.x[h[b]] / data.x[h[b]].norm()
        for v in t[b].tolist():
            xv = data.x[v] / data.x[v].norm()
            by_hand = [half * float(w[k] @ xh) * half * float(w[k] @ xv) for k in range(d)]
            assert feat[b, v, 3 * d:].tolist() == pytest.approx(by_hand, rel=1e-12)
    calls = []
    inner = model.feature_currents
    model.feature_currents = lambda *a: calls.append(1) or inner(*a)
    logits = model(data, batch)
    # once per forward: the background and both scoring directions share it
    assert len(calls) == 1
    logits.sum().backward()
    assert model.mlp[0].weight.grad[:, 3 * d:].ne(0).any()
    with pytest.raises(ValueError, match="feature_pair=True needs node_features > 0"):
        GRSNN(2, background=True, feature_pair=True)
    from grsnn.training.config import ConfigError, merge_config
    with pytest.raises(ConfigError, match="model.feature_pair: needs model.node_features=true"):
        merge_config({"model": {"feature_pair": True, "background": True},
                      "task": {"name": "link_prediction"}})


def _dense_smoothing(edge_index, n, x, hops):
    """A^k x with A = D^-1/2 (A + I) D^-1/2 built densely, by hand: every edge counts
    (parallel edges add up) and every node has exactly one self loop."""
    a = torch.zeros(n, n, dtype=x.dtype)
    for s, d in edge_index.t().tolist():
        a[d, s] += 1.0
    a.fill_diagonal_(1.0)
    deg = a.sum(1)
    a = a / deg.sqrt().unsqueeze(1) / deg.sqrt().unsqueeze(0)
    for _ in range(hops):
        x = a @ x
    return x


@pytest.mark.parametrize("hops", [1, 2])
def test_feature_hops_smooth_the_features_over_the_graph_given(hops):
    """feature_hops=k: the feature currents read A^k x (GCN's normalisation), against a
    dense matrix by hand and PyG's SGConv; the graph is the one passed, so the edge a
    training batch removes does not carry its ends' features."""
    from torch_geometric.nn import SGConv
    data = _graph()
    data.x = torch.rand(16, 5, generator=torch.Generator().manual_seed(4),
                        dtype=torch.float64)
    model = _model(hidden_dim=4, time_steps=6, node_features=5, feature_pair=True,
                   feature_hops=hops)
    smooth = GRSNN.smoothed_features(data, data.x, hops)
    torch.testing.assert_close(smooth, _dense_smoothing(data.edge_index, 16, data.x, hops),
                               rtol=1e-12, atol=1e-12)
    sg = SGConv(5, 5, K=hops, bias=False).double()
    with torch.no_grad():
        sg.lin.weight.copy_(torch.eye(5, dtype=torch.float64))
    torch.testing.assert_close(smooth, sg(data.x, data.edge_index), rtol=1e-12, atol=1e-12)
    w = model.feature_encoder.weight.detach()
    unit = smooth / smooth.norm(dim=-1, keepdim=True)
    with torch.no_grad():
        got = model.feature_currents(data, torch.float64)
    torch.testing.assert_close(got, unit @ w.t() * model.v_threshold / 2, rtol=1e-12,
                               atol=1e-12)
    # isolated nodes keep their own features (their only neighbour is themselves)
    torch.testing.assert_close(smooth[12:], data.x[12:], rtol=1e-12, atol=0)
    # remove the edges between the first edge's two ends: their currents change
    u, v = data.edge_index
    a, b = data.edge_index[:, (u != v).nonzero()[0, 0]].tolist()
    keep = ~(((u == a) & (v == b)) | ((u == b) & (v == a)))
    cut = Data(edge_index=data.edge_index[:, keep], edge_type=data.edge_type[keep],
               num_nodes=16, x=data.x)
    with torch.no_grad():
        after = model.feature_currents(cut, torch.float64)
    assert not torch.allclose(after[a], got[a]) and not torch.allclose(after[b], got[b])
    unit = _dense_smoothing(cut.edge_index, 16, data.x, hops)
    unit = unit / unit.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(after, unit @ w.t() * model.v_threshold / 2, rtol=1e-12,
                               atol=1e-12)
    # without hops the currents read the features as given
    plain = _model(hidden_dim=4, time_steps=6, node_features=5, feature_pair=True)
    unit = data.x / data.x.norm(dim=-1, keepdim=True)
    with torch.no_grad():
        torch.testing.assert_close(plain.feature_currents(data, torch.float64),
                                   unit @ w.t() * plain.v_threshold / 2, rtol=1e-12,
                                   atol=1e-12)


def test_feature_hops_need_node_features():
    with pytest.raises(ValueError, match="feature_hops > 0 needs node_features > 0"):
        GRSNN(2, background=True, feature_hops=1)
    with pytest.raises(ValueError, match="feature_hops must be >= 0"):
        GRSNN(2, background=True, node_features=3, feature_hops=-1)
    from grsnn.training.config import ConfigError, merge_config
    with pytest.raises(ConfigError, match="model.feature_hops: needs model.node_features=true"):
        merge_config({"model": {"feature_hops": 1, "background": True},
                      "task": {"name": "link_prediction"}})
    cfg = merge_config({"model": {"feature_hops": 2, "node_features": True, "background": True},
                        "task": {"name": "link_prediction"}})
    assert cfg["model"]["feature_hops"] == 2
    with pytest.raises(ConfigError, match="model.feature_hops"):
        merge_config({"model": {"feature_hops": -1, "node_features": True, "background": True},
                      "task": {"name": "link_prediction"}})


@pytest.mark.parametrize("hops", [0, 1])
def test_feature_cosine_is_the_cosine_of_the_two_ends_features(hops):
    """feature_cosine: the MLP's last input is cos(x_h, x_v) of the (smoothed) features,
    by hand for every candidate; it learns, and needs node features."""
    data = _graph()
    data.x = torch.rand(16, 5, generator=torch.Generator().manual_seed(4),
                        dtype=torch.float64)
    model = _model(hidden_dim=4, time_steps=6, node_features=5, feature_cosine=True,
                   feature_hops=hops)
    batch = torch.tensor([[[13, 0, 0], [13, 5, 0], [13, 14, 0]],
                          [[2, 7, 1], [2, 12, 1], [2, 3, 1]]])
    h = batch[:, 0, 0]
    x = _dense_smoothing(data.edge_index, 16, data.x, hops)
    with torch.no_grad():
        feat = model.node_features(data, h, batch[:, 0, 2])                  # [B, N, F]
    assert feat.size(-1) == 3 * model.hidden_dim + 1        # readout, query, background
    for b in range(2):
        for v in range(16):
            cos = float(x[h[b]] @ x[v] / x[h[b]].norm() / x[v].norm())
            assert feat[b, v, -1].item() == pytest.approx(cos, rel=1e-12)
    cand = batch[..., 1]
    torch.testing.assert_close(GRSNN.pair_cosines(model.unit_features(data, torch.float64),
                                                  h, cand), feat[:, :, -1].gather(1, cand))
    logits = model(data, batch)
    logits.sum().backward()
    assert model.mlp[0].weight.grad[:, -1].ne(0).any()
    with pytest.raises(ValueError, match="feature_cosine=True needs node_features > 0"):
        GRSNN(2, background=True, feature_cosine=True)
    from grsnn.training.config import ConfigError, merge_config
    with pytest.raises(ConfigError, match="model.feature_cosine: needs model.node_features"):
        merge_config({"model": {"feature_cosine": True, "background": True},
                      "task": {"name": "link_prediction"}})


def test_feature_cosine_hops_gives_one_cosine_per_smoothing_depth():
    """feature_cosine_hops=2: the MLP's last three inputs are the cosines of the two ends'
    features smoothed over 0, 1 and 2 hops, by hand for every candidate, whatever
    feature_hops smooths the currents with; each one learns, and the key needs
    feature_cosine (the query-sized path: tests/test_query_sized.py)."""
    data = _graph()
    data.x = torch.rand(16, 5, generator=torch.Generator().manual_seed(5),
                        dtype=torch.float64)
    model = _model(hidden_dim=4, time_steps=6, node_features=5, feature_cosine=True,
                   feature_hops=1, feature_cosine_hops=2)
    batch = torch.tensor([[[13, 0, 0], [13, 5, 0], [13, 14, 0]],
                          [[2, 7, 1], [2, 12, 1], [2, 3, 1]]])
    h = batch[:, 0, 0]
    with torch.no_grad():
        feat = model.node_features(data, h, batch[:, 0, 2])                  # [B, N, F]
    assert feat.size(-1) == 3 * model.hidden_dim + 3
    for hops in range(3):
        x = _dense_smoothing(data.edge_index, 16, data.x, hops)
        for b in range(2):
            for v in range(16):
                cos = float(x[h[b]] @ x[v] / x[h[b]].norm() / x[v].norm())
                assert feat[b, v, -3 + hops].item() == pytest.approx(cos, rel=1e-12)
    logits = model(data, batch)
    logits.sum().backward()
    assert model.mlp[0].weight.grad[:, -3:].ne(0).any(dim=0).all()
    with pytest.raises(ValueError, match="feature_cosine_hops > 0 needs feature_cosine=True"):
        GRSNN(2, background=True, node_features=3, feature_cosine_hops=1)
    with pytest.raises(ValueError, match="feature_cosine_hops must be >= 0"):
        GRSNN(2, background=True, node_features=3, feature_cosine=True, feature_cosine_hops=-1)
    from grsnn.training.config import ConfigError, merge_config
    with pytest.raises(ConfigError, match="model.feature_cosine_hops: needs model.feature_cos"):
        merge_config({"model": {"feature_cosine_hops": 2, "node_features": True,
                                "background": True},
                      "task": {"name": "link_prediction"}})


def test_wave_only_rows_zero_the_query_independent_inputs_of_a_share_of_training_rows():
    """wave_only_rows=p: in training, the rows it draws are scored by the MLP from the
    query's spike readout, q~ and the degree prior, their background readout and pair
    inputs set to zero (by hand from node_features); the other rows and every row in
    eval() mode score as without it; about p of the rows are drawn; the key is checked."""
    data = _graph()
    data.x = torch.rand(16, 5, generator=torch.Generator().manual_seed(5),
                        dtype=torch.float64)
    kw = dict(hidden_dim=4, time_steps=6, node_features=5, feature_pair=True,
              background_pair=True, feature_cosine=True, degree_prior=True)
    model = _model(wave_only_rows=0.5, **kw)
    rows = 12
    h = torch.arange(rows) % 12
    cand = torch.stack([(h + k) % 16 for k in range(4)], 1)
    batch = torch.stack([h.unsqueeze(1).expand_as(cand), cand,
                         (h % 4).unsqueeze(1).expand_as(cand)], -1)          # [B, 4, 3]
    with torch.no_grad():
        feat = model.node_features(data, h, batch[:, 0, 2])                   # [B, N, F]
        feat = feat.gather(1, cand.unsqueeze(-1).expand(-1, -1, feat.size(-1)))
        start = model.query_independent_start()
        d = model.hidden_dim
        # the first dropped column is the background readout; everything after it is pairs
        assert start == 3 * d
        assert torch.equal(feat[..., start:start + d], model.background_features(data)[cand])
        assert feat.size(-1) == start + 3 * d + 1
        wave_only = model.score(torch.cat([feat[..., :start],
                                           torch.zeros_like(feat[..., start:])], -1))
        model.wave_only_rows = 0.0
        full = model(data, batch)
        model.wave_only_rows = 0.5
        torch.manual_seed(3)
        got = model(data, batch)
    assert torch.equal(full, model.score(feat))
    dropped = (got != full).any(dim=1)
    assert 0 < int(dropped.sum()) < rows
    assert torch.equal(got[dropped], wave_only[dropped])
    assert torch.equal(got[~dropped], full[~dropped])
    # the dropped rows do not depend on the node features; the kept rows do
    other = data.clone()
    other.x = data.x.flip(0)
    with torch.no_grad():
        torch.manual_seed(3)
        moved = model(other, batch)
    assert torch.equal(moved[dropped], got[dropped])
    assert not torch.equal(moved[~dropped], got[~dropped])
    # about half the rows over many batches, and none in eval() mode
    with torch.no_grad():
        share = torch.stack([(model(data, batch) != full).any(dim=1).double()
                             for _ in range(20)]).mean()
    assert 0.4 < float(share) < 0.6
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(data, batch), full)
    with pytest.raises(ValueError, match=r"wave_only_rows must be in \[0, 1\)"):
        GRSNN(2, background=True, wave_only_rows=1.0)
    with pytest.raises(ValueError, match="wave_only_rows > 0 needs background=True"):
        GRSNN(2, wave_only_rows=0.3)
    from grsnn.training.config import ConfigError, merge_config
    with pytest.raises(ConfigError, match="model.wave_only_rows: must be < 1"):
        merge_config({"model": {"wave_only_rows": 1.0, "background": True}})
    with pytest.raises(ConfigError, match="model.wave_only_rows: needs model.background"):
        merge_config({"model": {"wave_only_rows": 0.3}})
