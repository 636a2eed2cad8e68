"""Query-sized training (grsnn.nn.query_sized): the logits and every gradient of a batch
simulated on the reached subgraph equal those of the whole graph, in double precision."""
import copy

import pytest
import torch
from torch_geometric.data import Data

import grsnn.nn.query_sized as qs
from grsnn.functional import Sigmoid, Triangle
from grsnn.nn import GRSNN


@pytest.fixture(autouse=True)
def _no_crossover(monkeypatch):
    """The tiny graphs here are half reached: compare the subgraph path itself (the
    crossover to the whole graph has its own test)."""
    monkeypatch.setattr(qs, "CROSSOVER", 1.0)


def _graph(seed=0, n=40, e=70, rel=3):
    """A sparse random multi-relational graph with inverse edges (two components: nodes
    0..n/2-1 and n/2..n-1, so some candidates are never reached)."""
    g = torch.Generator().manual_seed(seed)
    half = n // 2
    src = torch.randint(0, half, (e,), generator=g)
    dst = torch.randint(0, half, (e,), generator=g)
    src = torch.cat([src, src[: e // 2] + half])
    dst = torch.cat([dst, dst[: e // 2] + half])
    typ = torch.randint(0, rel, (src.numel(),), generator=g)
    edge_index = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
    edge_type = torch.cat([typ, typ + rel])
    return Data(edge_index=edge_index, edge_type=edge_type, num_nodes=n)


def _with_features(data, kw):
    """``data`` with random node features ``x`` when the model reads them."""
    if kw.get("node_features"):
        data.x = torch.rand(int(data.num_nodes), kw["node_features"], dtype=torch.float64,
                            generator=torch.Generator().manual_seed(9))
    return data


def _model(**kw):
    args = dict(num_relations=6, hidden_dim=6, time_steps=7, drive="reached",
                surrogate="triangle", relation_weight=True, delay_bound=2)
    args.update(kw)
    torch.manual_seed(0)
    return GRSNN(**args).double()


def _batch(data, heads, rels, n_cand=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    rows = []
    for h, r in zip(heads, rels):
        tails = torch.randint(0, int(data.num_nodes), (n_cand,), generator=g)
        rows.append(torch.stack([torch.full_like(tails, h), tails,
                                 torch.full_like(tails, r)], 1))
    return torch.stack(rows)


def _run(model, data, batch, rate_weight=0.0):
    model.zero_grad()
    logits = model(data, batch)
    loss = (logits.sin() * torch.linspace(-1, 1, logits.numel(), dtype=logits.dtype)
            .view_as(logits)).sum()
    if rate_weight:
        loss = loss + rate_weight * model.firing_rate
    loss.backward()
    grads = {k: None if p.grad is None else p.grad.clone() for k, p in model.named_parameters()}
    return logits.detach(), grads


def _same(a, b):
    (la, ga), (lb, gb) = a, b
    torch.testing.assert_close(la, lb, rtol=1e-12, atol=1e-12)
    assert ga.keys() == gb.keys()
    nonzero = 0
    for k in ga:
        if ga[k] is None:
            assert gb[k] is None, k
            continue
        torch.testing.assert_close(ga[k], gb[k], rtol=1e-10, atol=1e-12, msg=k)
        nonzero += int(ga[k].ne(0).any())
    return nonzero


@pytest.mark.parametrize("kw", [{}, {"degree_prior": True}, {"dependent": False},
                                {"background": True, "degree_prior": True},
                                {"background": True, "background_pair": True},
                                {"background": True, "node_features": 3},
                                {"background": True, "node_features": 3, "feature_pair": True},
                                {"background": True, "node_features": 3, "feature_pair": True,
                                 "feature_hops": 2},
                                {"background": True, "node_features": 3, "feature_cosine": True,
                                 "feature_hops": 1},
                                {"background": True, "node_features": 3, "feature_cosine": True,
                                 "feature_hops": 1, "feature_cosine_hops": 2},
                                {"delay": False, "relation_weight": False},
                                {"self_connection": True, "track_rate": True}])
def test_same_logits_and_gradients_as_the_whole_graph(kw):
    data = _with_features(_graph(), kw)
    dense = _model(**kw)
    small = copy.deepcopy(dense)
    small.query_sized = True
    batch = _batch(data, [0, 3, 25], [1, 4, 2])
    sets = qs.reached_sets(small, data, batch[:, 0, 0], batch[:, 0, 2])
    # the test means something: every query reaches nodes beyond its source, not all
    assert all(1 < x.numel() < data.num_nodes for x in sets)
    weight = 0.5 if kw.get("track_rate") else 0.0
    out_dense = _run(dense, data, batch, weight)
    out_small = _run(small, data, batch, weight)
    assert _same(out_dense, out_small) >= 3      # delays, weights, MLP, query all learn
    assert small.query_sized_fallbacks == 0
    if weight:
        torch.testing.assert_close(dense.firing_rate, small.firing_rate)


def test_head_corruption_and_symmetric_scoring():
    data = _graph(seed=2)
    dense = _model(symmetric=True)
    small = copy.deepcopy(dense)
    small.query_sized = True
    # every row shares its tail: head corruption, answered as tail queries of the inverse
    g = torch.Generator().manual_seed(3)
    heads = torch.randint(0, 40, (2, 9), generator=g)
    batch = torch.stack([heads, torch.full_like(heads, 5), torch.full_like(heads, 1)], -1)
    batch[1, :, 1] = 30
    _same(_run(dense, data, batch), _run(small, data, batch))
    assert small.query_sized_fallbacks == 0


def test_a_missed_node_falls_back_to_the_whole_graph(monkeypatch):
    """If the reached set misses a node a spike arrives at, the subgraph result would be
    wrong: the leak check must notice and the whole graph must run."""
    data = _graph()
    dense = _model()
    small = copy.deepcopy(dense)
    small.query_sized = True
    batch = _batch(data, [0, 3], [1, 4])
    monkeypatch.setattr(qs, "reached_sets", lambda m, d, h, r, budget: [x.view(1) for x in h])
    _same(_run(dense, data, batch), _run(small, data, batch))
    assert small.query_sized_fallbacks == 1


def test_leak_check_by_hand():
    """One sender (node 0) with an edge leaving its subgraph, T = 3 (steps 0, 1, 2): a
    spike sent at step i with delay d arrives at i + 1 + d and leaks if that is <= 2."""
    src, rel = torch.tensor([0]), torch.tensor([0])
    d0 = torch.zeros(6, 1, dtype=torch.uint8)
    at = [[torch.tensor([[float(t == i)]]) for t in range(3)] for i in range(3)]
    assert qs._leaks(at[0], src, rel, d0)            # arrives at 1
    assert qs._leaks(at[1], src, rel, d0)            # arrives at 2
    assert not qs._leaks(at[1], src, rel, d0 + 1)    # arrives at 3: after the horizon
    assert not qs._leaks(at[2], src, rel, d0)        # the last step's spike never arrives
    assert not qs._leaks([torch.zeros(1, 1)] * 3, src, rel, d0)      # silent


def test_triangle_surrogate_by_hand():
    x = torch.tensor([0.0, 0.25, -0.5, 1.0, -2.0], requires_grad=True)
    Triangle(0.5)(x).sum().backward()
    assert x.grad.tolist() == [2.0, 1.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        Triangle(0.0)


@pytest.mark.parametrize("kw, words", [({"drive": "always"}, "drive='reached'"),
                                       ({"surrogate": Sigmoid()}, "surrogate"),
                                       ({"readout": "state"}, "readout"),
                                       ({"layer_norm": True}, "LayerNorm"),
                                       ({"surrogate": Triangle(3.0)}, "support"),
                                       ({"delay": False}, "without delays"),
                                       ({"fused": False}, "fused")])
def test_circuits_that_cannot_train_query_sized_are_refused(kw, words):
    with pytest.raises(ValueError, match=words):
        _model(query_sized=True, **kw)


@pytest.mark.parametrize("kw", [{}, {"degree_prior": True}, {"background": True},
                                {"background": True, "background_pair": True},
                                {"background": True, "background_pair": True,
                                 "node_features": 3, "feature_pair": True},
                                {"background": True, "node_features": 3, "feature_pair": True,
                                 "feature_hops": 1, "feature_cosine": True},
                                {"background": True, "node_features": 3, "feature_cosine": True,
                                 "feature_cosine_hops": 2}])
def test_score_all_same_scores_and_gradients(kw):
    """Every node scored (evaluation): the unreached nodes share one score per query."""
    data = _with_features(_graph(seed=4), kw)
    dense = _model(**kw)
    small = copy.deepcopy(dense)
    small.query_sized = True
    h, r = torch.tensor([1, 22, 7]), torch.tensor([0, 5, 3])
    out = []
    for m in (dense, small):
        m.zero_grad()
        scores = m.score_all(data, h, r)
        (scores.cos() * torch.arange(scores.numel(), dtype=scores.dtype)
         .view_as(scores)).sum().backward()
        out.append((scores.detach(), {k: p.grad.clone() for k, p in m.named_parameters()
                                      if p.grad is not None}))
    _same(*out)
    assert small.query_sized_fallbacks == 0
    assert small.query_sized_nodes < data.num_nodes
    with torch.no_grad():                      # float32 too, no gradient: same ties
        a = dense.float().score_all(data, h, r)
        b = small.float().score_all(data, h, r)
    assert torch.equal(a, b)


def test_config_names_the_keys_query_sized_needs():
    from grsnn.training.config import ConfigError, merge_config
    with pytest.raises(ConfigError, match="model.drive=always, model.surrogate=sigmoid"):
        merge_config({"model": {"query_sized": True}})
    cfg = merge_config({"model": {"query_sized": True, "drive": "reached",
                                  "surrogate": "triangle"}})
    assert cfg["model"]["query_sized"] is True


def test_training_steps_on_a_task_config():
    """A training batch of the demo task (the shipped fb237_v1 split, as grsnn train runs
    it) trains query-sized: gradients, no fallback, a subgraph smaller than the graph."""
    from grsnn.tasks import build_task, load_config
    from grsnn.training.config import apply_overrides
    from grsnn.training.trainer import accumulate_gradients
    cfg = apply_overrides(load_config("tasks/demo.yaml"),
                          ["model.drive=reached", "model.surrogate=triangle",
                           "model.query_sized=true", "model.compiled=false"])
    task = build_task(cfg)
    torch.manual_seed(0)
    model = task.build_model()
    graph, batch = task.make_batch(torch.arange(4), torch.Generator().manual_seed(0))
    accumulate_gradients(task, model, cfg, graph, batch)
    assert model.query_sized_fallbacks == 0
    assert 0 < model.query_sized_nodes < graph.num_nodes
    assert any(p.grad is not None and p.grad.ne(0).any() for p in model.parameters())


def test_a_batch_that_reaches_too_much_runs_on_the_whole_graph(monkeypatch):
    """Above the crossover the dense pass is cheaper: the search stops early, the whole
    graph runs, results unchanged."""
    data = _graph()
    dense = _model()
    small = copy.deepcopy(dense)
    small.query_sized = True
    batch = _batch(data, [0, 3], [1, 4])
    monkeypatch.setattr(qs, "CROSSOVER", 0.05)        # 2 queries x 40 nodes: budget 4
    _same(_run(dense, data, batch), _run(small, data, batch))
    assert small.query_sized_fallbacks == 1 and small.query_sized_nodes == 0
    assert qs.reached_sets(small, data, batch[:, 0, 0], batch[:, 0, 2], budget=4) is None
    full = qs.reached_sets(small, data, batch[:, 0, 0], batch[:, 0, 2])
    assert sum(x.numel() for x in full) > 4


def test_unfused_circuit_scores_queries_on_the_whole_graph():
    """The reach search needs pairs sorted by source (the grouped plan): an unfused
    query-driven circuit scores one query with score_all's scores."""
    data = _graph()
    model = _model(fused=False)
    with torch.no_grad():
        a = model.score_query(data, 0, 1)
        b = model.score_all(data, torch.tensor([0]), torch.tensor([1]))[0]
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("query_sized", [False, True])
def test_symmetric_forward_computes_the_node_priors_once(query_sized):
    """Both directions of a symmetric forward read one background simulation and one
    degree prior; logits and gradients are those of two separate computations."""
    data = _graph(seed=2)
    model = _model(symmetric=True, background=True, degree_prior=True)
    model.query_sized = query_sized
    ref = copy.deepcopy(model)
    g = torch.Generator().manual_seed(3)
    heads = torch.randint(0, 40, (2, 9), generator=g)
    batch = torch.stack([heads, torch.full_like(heads, 5), torch.full_like(heads, 1)], -1)
    batch[1, :, 1] = 30
    batches = [batch, batch[:, :, [1, 0, 2]]]      # shared tails, then shared heads
    calls = []
    inner = model.background_features
    model.background_features = lambda d: calls.append(1) or inner(d)
    got = [_run(model, data, b) for b in batches]
    assert len(calls) == 2 and model._priors is None          # once per forward

    def two_computations(m, d, b):          # the forward without the memo
        h, t, r = m.to_tail_queries(b)
        feat = m._features_at(d, h[:, 0], r[:, 0], t)
        if (t == t[:, :1]).all():
            inv = m._features_at(d, t[:, 0], r[:, 0], h)
        else:
            inv = m._features_at(d, t.reshape(-1), r.reshape(-1),
                                 h.reshape(-1, 1)).view(*t.shape, -1)
        return m.score((feat + inv) / 2)
    ref.forward = lambda d, b: two_computations(ref, d, b)
    for b, out in zip(batches, got):
        assert _same(out, _run(ref, data, b)) >= 3
