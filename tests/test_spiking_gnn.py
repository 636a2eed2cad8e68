"""SpikingGNN behaves like a PyG model: shapes, parameters, inputs, loaders, explainers."""
import warnings

import pytest
import torch
from torch_geometric.data import Data

from grsnn.nn import SpikingGNN


def graph(n=30, e=120, f=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, f, generator=g), torch.randint(0, n, (2, e), generator=g)


def test_shapes_reset_repr_and_gradients():
    torch.manual_seed(0)
    x, ei = graph()
    model = SpikingGNN(12, 16, num_layers=2, out_channels=5, time_steps=6, linear_scale=2.0)
    out = model(x, ei)
    assert out.shape == (30, 5)
    assert SpikingGNN(12, 16, num_layers=1)(x, ei).shape == (30, 16)
    out.pow(2).sum().backward()
    assert model.convs[0].delay_logit.grad.abs().sum() > 0      # delays learn
    assert model.encoder.lin.weight.grad.abs().sum() > 0      # the GCNConv encoder learns
    before = model.convs[1].lin.weight.detach().clone()
    model.reset_parameters()
    assert not torch.equal(before, model.convs[1].lin.weight)
    assert repr(model) == "SpikingGNN(12, 5, num_layers=2, time_steps=6)"
    with pytest.raises(ValueError, match="num_layers"):
        SpikingGNN(12, 16, num_layers=0)


def test_sparse_adjacency_and_relational_input_agree_with_edge_index():
    torch.manual_seed(1)
    x, ei = graph()
    model = SpikingGNN(12, 8, num_layers=2, out_channels=3, time_steps=5, linear_scale=2.0).eval()
    adj = torch.sparse_coo_tensor(ei.flip(0), torch.ones(ei.size(1)), (30, 30)).coalesce()
    assert torch.allclose(model(x, ei), model(x, adj), atol=1e-6)
    assert torch.allclose(model(x, ei), model(x, adj.to_sparse_csr()), atol=1e-6)
    dense = adj.to_dense()                     # a dense [N, N] adjacency (target, source)
    assert torch.allclose(model(x, ei), model(x, dense), atol=1e-6)
    uniq = dense.nonzero().t().flip(0)        # a boolean adjacency drops repeated edges
    assert uniq.size(1) < ei.size(1)
    assert torch.allclose(model(x, uniq), model(x, dense.bool()), atol=1e-6)
    weighted = dense * 0.5                     # its values are edge weights
    assert torch.allclose(model(x, ei, edge_weight=torch.full((ei.size(1),), 0.5)),
                          model(x, weighted), atol=1e-6)
    rel = SpikingGNN(12, 8, num_layers=2, out_channels=3, num_relations=3).eval()
    et = torch.randint(0, 3, (ei.size(1),))
    assert rel(x, ei, et).shape == (30, 3)


def test_lazy_input_and_mini_batches():
    """A NeighborLoader-style mini-batch: the seed nodes first, their 2-hop subgraph
    relabelled (NeighborLoader itself needs pyg-lib or torch-sparse, which have no wheels
    for this torch on PyPI; the batch it yields has this form)."""
    from torch_geometric.utils import k_hop_subgraph

    torch.manual_seed(2)
    x, ei = graph(n=60, e=300)
    model = SpikingGNN(-1, 8, num_layers=2, out_channels=3, time_steps=4).eval()
    seeds = torch.arange(16)
    subset, sub_ei, mapping, _ = k_hop_subgraph(seeds, 2, ei, relabel_nodes=True, num_nodes=60)
    out = model(x[subset], sub_ei)[mapping]
    assert out.shape == (16, 3)
    # spikes travel at most one hop per step, so circuits of 2 steps (one hop per layer) in
    # 2 layers see exactly the 2-hop neighbourhood: the mini-batch equals the full graph
    short = SpikingGNN(-1, 8, num_layers=2, out_channels=3, time_steps=2).eval()
    full = short(x, ei)[seeds]
    assert torch.allclose(short(x[subset], sub_ei)[mapping], full, atol=1e-6)


def test_gnn_explainer_runs_on_the_model():
    from torch_geometric.explain import Explainer, GNNExplainer

    torch.manual_seed(3)
    x, ei = graph(n=20, e=60, f=6)
    model = SpikingGNN(6, 8, num_layers=2, out_channels=3, time_steps=4, linear_scale=2.0)
    explainer = Explainer(model, algorithm=GNNExplainer(epochs=3), explanation_type="model",
                          node_mask_type="attributes", edge_mask_type="object",
                          model_config=dict(mode="multiclass_classification", task_level="node",
                                            return_type="raw"))
    expl = explainer(x, ei, index=0)
    assert expl.edge_mask.shape == (60,) and expl.node_mask.shape == (20, 6)
    assert not model.convs[0].explain                    # explain mode switched off again


def test_spiking_gnn_stats_count_delivered_spikes_like_a_brute_force_loop():
    from grsnn.reports.firing_stats import spiking_gnn_stats
    torch.manual_seed(3)
    model = SpikingGNN(5, 4, num_layers=2, out_channels=3, time_steps=6, input_scale=2.0,
                       num_relations=2).eval()
    x = torch.randn(7, 5) * 3
    edge_index = torch.randint(0, 7, (2, 15))
    edge_type = torch.randint(0, 2, (15,))
    stats = spiking_gnn_stats(model, x, edge_index, edge_type)
    trains = model.spike_trains(x, edge_index, edge_type)
    sops = spikes = 0
    for conv, train in zip(model.convs, trains):
        delays = conv.integer_delays()
        steps, _, d = train.shape
        for t, u, k in train.nonzero().tolist():
            spikes += 1
            for e in range(edge_index.size(1)):
                if edge_index[0, e] == u and t + 1 + delays[edge_type[e], k] <= steps - 1:
                    sops += d
    assert spikes > 0 and sops > 0
    assert stats["spikes"] == spikes and stats["sops"] == sops
    assert stats["firing_rate"] == pytest.approx(spikes / sum(t.numel() for t in trains))
    # dense multiply-accumulates: the GCNConv encoder (7 x 5 x 4 projection, then 15 edge
    # and 7 self-loop messages of width 4), one 4 x 4 mixer and the 4 x 3 output, per node
    assert stats["dense_macs"] == 7 * (5 * 4 + 4 * 4 + 4 * 3) + (15 + 7) * 4


def test_torch_compile_gives_the_eager_outputs_and_gradients():
    """torch.compile runs the model (graph breaks around the engine's custom autograd
    functions and sparse kernels are expected) with the eager results."""
    import warnings
    torch.manual_seed(0)
    model = SpikingGNN(8, 16, num_layers=2, out_channels=3, time_steps=4)
    x, ei = torch.randn(30, 8), torch.randint(0, 30, (2, 100))
    ref = model(x, ei)
    ref.square().sum().backward()
    want = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = torch.compile(model)(x, ei)
        out.square().sum().backward()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    for p, g in zip(model.parameters(), want):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)


def test_heterogeneous_graph_through_to_homogeneous():
    """A PyG HeteroData graph (authors write papers, papers cite papers) runs as one
    relational circuit: to_homogeneous() gives edge_type, each relation its own delays."""
    from torch_geometric.data import HeteroData
    torch.manual_seed(4)
    data = HeteroData()
    data["author"].x = torch.randn(20, 5)
    data["paper"].x = torch.randn(30, 5)
    data["author", "writes", "paper"].edge_index = torch.stack(
        [torch.randint(0, 20, (50,)), torch.randint(0, 30, (50,))])
    data["paper", "cites", "paper"].edge_index = torch.randint(0, 30, (2, 70))
    homo = data.to_homogeneous()
    model = SpikingGNN(5, 8, num_layers=2, out_channels=2, time_steps=6, input_scale=2.0,
                       num_relations=len(data.edge_types)).eval()
    out = model(homo.x, homo.edge_index, homo.edge_type)
    assert out.shape == (50, 2)
    papers = homo.node_type == data.node_types.index("paper")
    assert papers.sum() == 30
    # relation types matter: giving every edge the same type changes the paper outputs
    same = model(homo.x, homo.edge_index, torch.zeros_like(homo.edge_type))
    assert not torch.allclose(out[papers], same[papers])


def _loader(data, num_neighbors, batch_size, **kw):
    from torch_geometric.loader import NeighborLoader
    from grsnn.data import TorchNeighborSampler
    sampler = TorchNeighborSampler(data, num_neighbors=num_neighbors, **kw)
    return NeighborLoader(data, num_neighbors, batch_size=batch_size, neighbor_sampler=sampler,
                          shuffle=False)


def test_neighbor_loader_batches_are_valid_samples():
    torch.manual_seed(5)
    x, ei = graph(n=60, e=300)
    data = Data(x=x, edge_index=ei, edge_attr=torch.arange(ei.size(1)).float())
    edges = set(map(tuple, ei.t().tolist()))
    for replace in (False, True):
        for batch in _loader(data, [3, 2], 8, replace=replace):
            n_id = batch.n_id
            assert 0 < batch.batch_size <= 8 and n_id.unique().numel() == n_id.numel()
            src, dst = n_id[batch.edge_index[0]], n_id[batch.edge_index[1]]
            for s, d in zip(src.tolist(), dst.tolist()):
                assert (s, d) in edges                        # real edges, original direction
            # edge attributes follow their edges (PyG maps the sampled ids back)
            assert torch.equal(ei[:, batch.e_id], torch.stack([src, dst]))
            assert torch.equal(batch.edge_attr, data.edge_attr[batch.e_id])
            # at most k incoming edges per node of the first hop (without replacement)
            seeds_in = batch.edge_index[1][batch.edge_index[1] < batch.batch_size]
            if not replace:    # exactly min(k, in-degree) distinct edges into every seed
                indeg = torch.bincount(ei[1], minlength=60)[n_id[: batch.batch_size]]
                got = torch.bincount(seeds_in, minlength=batch.batch_size)
                assert torch.equal(got, indeg.clamp(max=3))
                assert batch.e_id.unique().numel() == batch.e_id.numel()


def test_spiking_gnn_on_full_neighbour_loader_batches_equals_the_full_graph():
    """With every neighbour sampled (-1) for as many hops as the circuit reaches, the seeds'
    outputs on the NeighborLoader batch equal those on the full graph."""
    torch.manual_seed(6)
    x, ei = graph(n=60, e=300)
    model = SpikingGNN(-1, 8, num_layers=2, out_channels=3, time_steps=2).eval()
    full = model(x, ei)
    seen = 0
    for batch in _loader(Data(x=x, edge_index=ei), [-1, -1], 16):
        out = model(batch.x, batch.edge_index)[: batch.batch_size]
        torch.testing.assert_close(out, full[batch.n_id[: batch.batch_size]], atol=1e-6, rtol=0)
        seen += batch.batch_size
    assert seen == 60


def test_adjacency_conventions_and_stats_on_adjacency_input():
    from grsnn.nn.conv import as_edge_index
    from grsnn.reports.firing_stats import spiking_gnn_stats
    from torch_geometric.utils import to_dense_adj
    ei = torch.tensor([[0, 1, 2], [1, 2, 0]])
    dense = to_dense_adj(ei, max_num_nodes=3)[0]           # [source, target]
    back, w = as_edge_index(dense.t())                      # grsnn reads adj[target, source]
    assert sorted(map(tuple, back.t().tolist())) == sorted(map(tuple, ei.t().tolist()))
    back, _ = as_edge_index(dense.t().long())               # an integer N x N (N != 2) too
    assert back.size(1) == 3
    assert as_edge_index(ei)[0] is ei and as_edge_index(ei)[1] is None
    torch.manual_seed(0)
    model = SpikingGNN(4, 8, num_layers=1, out_channels=2, time_steps=4, v_threshold=0.3).eval()
    x = torch.randn(3, 4) * 3
    assert spiking_gnn_stats(model, x, dense.t()) == spiking_gnn_stats(model, x, ei)


def test_neighbor_sampler_refuses_what_it_does_not_implement():
    from grsnn.data import TorchNeighborSampler
    x, ei = graph(n=20, e=60)
    sampler = TorchNeighborSampler(Data(x=x, edge_index=ei), [2], subgraph_type="induced")
    with pytest.raises(NotImplementedError, match="pyg-lib"):
        sampler._sample(torch.tensor([0, 1]))


# ----------------------------------------------------------- defaults as a drop-in
def _rates(model, x, ei):
    return [float(t.float().mean()) for t in model.spike_trains(x, ei)]


def test_operating_point_ignores_input_scale_and_degree():
    """The default input currents are scaled once, on the first batch: scaling the features
    by 10^-2 .. 10^4 leaves the firing rates (and, once the encoder's bias is negligible,
    every spike) as they are; with mean edge weights and a per-node encoder
    (``input_conv=None``), repeating every edge (every degree doubled) changes no output
    (the default GCN encoder weighs the self-loop against the edges, as GCN does)."""
    x, ei = graph(n=40, e=200, f=12)
    x = x.abs()                                   # non-negative, like bag-of-words features
    trains, rates = [], []
    for scale in (1e-2, 1.0, 1e2, 1e4):
        torch.manual_seed(0)
        model = SpikingGNN(12, 16, num_layers=2, out_channels=3).eval()
        trains.append(model.spike_trains(x * scale, ei))
        rates.append(_rates(model, x * scale, ei))
    for layer in range(2):
        values = [r[layer] for r in rates]
        assert 0.001 < min(values) and max(values) - min(values) < 0.005, rates
    assert all(torch.equal(a, b) for a, b in zip(trains[2], trains[3]))
    torch.manual_seed(0)
    model = SpikingGNN(12, 16, num_layers=2, out_channels=3, input_conv=None).eval()
    twice = torch.cat([ei, ei], dim=1)
    torch.testing.assert_close(model(x, ei), model(x, twice))
    summed = SpikingGNN(12, 16, num_layers=2, out_channels=3, edge_norm=None,
                        input_conv=None).eval()
    summed.load_state_dict(model.state_dict())
    assert not torch.allclose(summed(x, ei), summed(x, twice))


def test_default_operating_point_holds_over_widths_and_depths():
    """With the default arguments every layer fires sparsely at initialisation, at widths
    16 to 256 and depths 1 to 3 (no layer silent, none saturated, the guard quiet); the
    circuits' biases span +-v_threshold/8, or PyTorch's wider default on narrow layers."""
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(300, 50, generator=g) < 0.1).float()        # bag-of-words-like
    ei = torch.randint(0, 300, (2, 1500), generator=g)
    for width in (16, 64, 256):
        for layers in (1, 2, 3):
            torch.manual_seed(0)
            model = SpikingGNN(50, width, layers, 7, dropout=0.5)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model(x, ei)
            assert not [w for w in caught if "SpikingGNN" in str(w.message)], (width, layers)
            rates = _rates(model.eval(), x, ei)
            assert all(1e-4 < r < 0.2 for r in rates), (width, layers, rates)
            for conv in model.convs:
                assert conv.lin.bias.abs().max() <= max(model.v_threshold / 8, width ** -0.5)


def test_output_reads_the_mean_of_every_layers_readout():
    """``jk="mean"`` (default): the output layer reads the mean over the layers of the
    temporal readouts :math:`\\sum_t \\kappa_t s[t]`; ``jk="last"`` only the last layer's;
    with one layer the two are the same model."""
    x, ei = graph()
    torch.manual_seed(0)
    model = SpikingGNN(12, 16, num_layers=3, out_channels=4).eval()
    out = model(x, ei)
    readouts = [torch.einsum("t,tnd->nd", model.kappa, t.float())
                for t in model.spike_trains(x, ei)]
    assert all(r.abs().sum() > 0 for r in readouts)
    torch.testing.assert_close(out, model.lin(torch.stack(readouts).mean(0)))
    last = SpikingGNN(12, 16, num_layers=3, out_channels=4, jk="last").eval()
    last.load_state_dict(model.state_dict())
    torch.testing.assert_close(last(x, ei), model.lin(readouts[-1]))
    for jk in ("last", None):
        one = SpikingGNN(12, 16, num_layers=1, out_channels=4, jk=jk).eval()
        torch.manual_seed(0)
        ref = SpikingGNN(12, 16, num_layers=1, out_channels=4).eval()
        one.load_state_dict(ref.state_dict())
        torch.testing.assert_close(one(x, ei), ref(x, ei))
    with pytest.raises(ValueError, match="jk"):
        SpikingGNN(12, 16, num_layers=2, jk="cat")


def test_dropout_spares_the_last_layers_readout():
    """As in PyG's models, dropout acts between layers, not on what the output layer reads
    from the last one: a one-layer model in training mode is deterministic, a two-layer
    one is not."""
    x, ei = graph()
    torch.manual_seed(0)
    one = SpikingGNN(12, 16, num_layers=1, out_channels=3, dropout=0.5, input_scale=2.0)
    torch.testing.assert_close(one(x, ei), one(x, ei))
    two = SpikingGNN(12, 16, num_layers=2, out_channels=3, dropout=0.5, input_scale=2.0)
    assert not torch.allclose(two(x, ei), two(x, ei))


def test_calibration_is_saved_and_loaded_and_reset():
    x, ei = graph()
    torch.manual_seed(0)
    model = SpikingGNN(12, 16, num_layers=2, out_channels=3).eval()
    out = model(x, ei)
    assert not torch.isnan(model.input_gain).any()
    copy = SpikingGNN(12, 16, num_layers=2, out_channels=3).eval()
    copy.load_state_dict(model.state_dict())
    # the loaded gains are used, not recalibrated on other data
    torch.testing.assert_close(copy(x * 5, ei), model(x * 5, ei))
    torch.testing.assert_close(copy(x, ei), out)
    model.reset_parameters()
    assert torch.isnan(model.input_gain).all()


def test_guard_warns_once_about_a_silent_or_saturated_model():
    x, ei = graph()
    cases = [(dict(input_norm=False, v_threshold=20.0), "silent", "v_threshold"),
             (dict(input_scale=1e-4), None, None),      # the synaptic bias still drives it
             (dict(input_scale=50.0), "every step", "input_scale"),
             (dict(), None, None)]
    for kwargs, problem, argument in cases:
        torch.manual_seed(0)
        model = SpikingGNN(12, 16, num_layers=2, out_channels=3, **kwargs)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model(x, ei)
            model(x, ei)
        messages = [str(w.message) for w in caught if "SpikingGNN" in str(w.message)]
        if problem is None:
            assert messages == [], kwargs
        else:
            assert len(messages) == 1 and problem in messages[0] and argument in messages[0]


def test_default_model_matches_gcn_in_the_cora_recipe():
    """PyG's Cora recipe (public split, Adam lr 0.01, weight decay 5e-4, dropout 0.5, test
    accuracy at the best validation epoch), the model line the only change, one seed and
    60 epochs for both models: the default SpikingGNN within 0.05 of GCN."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
    import node_classification
    gcn = node_classification.run("Cora", "gcn", 60, seed=0, verbose=False)
    spk = node_classification.run("Cora", "spiking", 60, seed=0, verbose=False)
    assert gcn["test"] > 0.7
    assert spk["test"] >= gcn["test"] - 0.05, (spk["test"], gcn["test"])


def test_input_residual_feeds_the_first_layers_current_to_every_layer():
    """``input_residual=True``: every layer after the first receives what its mixer makes
    of the previous readout plus the first layer's input current (the encoder's output
    times the first gain), dropped out in training like the readouts; without it, only
    the mixer's current."""
    import math
    x, ei = graph()
    torch.manual_seed(0)
    model = SpikingGNN(12, 16, num_layers=3, out_channels=4, dropout=0.5,
                       input_residual=True).eval()
    plain = SpikingGNN(12, 16, num_layers=3, out_channels=4, dropout=0.5,
                       input_residual=False).eval()
    with torch.no_grad():
        for mixer in model.mixers:
            mixer.weight.zero_()
            mixer.bias.fill_(0.5)
    seen = []
    for m in (model, plain):
        for conv in m.convs:
            conv.simulate = (lambda f: lambda beta, *a, **k: seen.append(beta) or f(beta, *a, **k)
                             )(conv.simulate)
    model(x, ei)
    first = model.encoder(x, ei).detach() * model.input_gain[0]
    target = 0.3 * (1 - math.exp(-1 / 4))             # input_scale * v_threshold * (1 - a)
    torch.testing.assert_close(first.pow(2).mean().sqrt(), torch.tensor(target))
    for i in (1, 2):   # the mixers give 0.5 everywhere: current = gain * (0.5 + first)
        gain = target / float((0.5 + first).pow(2).mean().sqrt())
        assert math.isclose(float(model.input_gain[i]), gain, rel_tol=1e-5)
        torch.testing.assert_close(seen[i], gain * (0.5 + first))
    seen.clear()
    plain.load_state_dict(model.state_dict())
    plain(x, ei)                                       # same weights and gains, no residual
    for i in (1, 2):
        torch.testing.assert_close(seen[i], model.input_gain[i] * torch.full_like(first, 0.5))
    seen.clear()
    model.train()(x, ei)                               # dropout 0.5 on the residual
    gain = float(model.input_gain[1])
    residual = seen[1] / gain - 0.5
    dropped = residual.abs() < 1e-6
    kept = torch.isclose(residual, 2 * first, atol=1e-5)
    assert bool((dropped | kept).all()) and 0.3 < float(dropped.float().mean()) < 0.7


def test_gcn_input_conv_feeds_the_neighbourhood_mean_of_the_features():
    """The default encoder (``input_conv="gcn"``): the first layer's input current is
    ``gain * (D^-1/2 (A + I) D^-1/2 X W + b)`` (GCN's weights, self-loops added, ``D`` the
    degree with them), checked against a dense computation by hand; ``input_conv=None``
    gives ``gain * (X W + b)``, each node's own features."""
    x, ei = graph(n=12, e=40, f=5)
    ei = ei[:, ei[0] != ei[1]]                             # no self-loops of its own
    for conv in ("gcn", None):
        torch.manual_seed(0)
        model = SpikingGNN(5, 8, num_layers=1, out_channels=3, input_conv=conv).eval()
        seen = []

        def record(beta, *a, _sim=model.convs[0].simulate, _seen=seen, **k):
            _seen.append(beta)
            return _sim(beta, *a, **k)
        model.convs[0].simulate = record
        model(x, ei)
        if conv == "gcn":
            a = torch.zeros(12, 12).index_put_((ei[1], ei[0]), torch.ones(ei.size(1)),
                                               accumulate=True) + torch.eye(12)
            d = a.sum(1).rsqrt()
            lin = model.encoder.lin.weight
            want = (d[:, None] * a * d[None, :]) @ (x @ lin.T) + model.encoder.bias
        else:
            want = x @ model.encoder.weight.T + model.encoder.bias
        torch.testing.assert_close(seen[0], model.input_gain[0] * want.detach())
    with pytest.raises(ValueError, match="input_conv"):
        SpikingGNN(5, 8, num_layers=1, input_conv="sage")
