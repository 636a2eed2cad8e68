"""SpikingDelayConv: golden vectors, path timing, reachability, fused == per-edge, memory."""
import json
import math
from pathlib import Path

import networkx as nx
import pytest
import torch

from grsnn.functional import build_plan, readout_kernel
from grsnn.nn import SpikingDelayConv

# golden vectors computed independently in float64; provenance in tests/data/README.md
VECTORS = Path(__file__).resolve().parent / "data" / "circuit_forward.json"


def logits_for(delays, bound):
    p = (delays.double() / bound).clamp(1e-3, 1 - 1e-3)
    return torch.log(p / (1 - p))


def make_conv(channels, rels, delays, weight, bias=None, bound=4, **kw):
    conv = SpikingDelayConv(channels, rels, delay_bound=bound, bias=bias is not None, **kw).double()
    with torch.no_grad():
        conv.lin.weight.copy_(weight)
        if bias is not None:
            conv.lin.bias.copy_(bias)
        conv.delay_logit.copy_(logits_for(delays, bound))
    return conv


@pytest.mark.parametrize("fused", [True, False])
def test_golden_vectors(fused):
    cases = json.loads(VECTORS.read_text())["cases"]
    assert len(cases) == 3
    for case in cases:
        edges = torch.tensor(case["edges_src_dst_type"])
        delays = torch.tensor(case["delays_type_by_neuron"])
        conv = make_conv(case["neurons"], delays.size(0), delays,
                         torch.tensor(case["W_out_by_in"], dtype=torch.float64),
                         torch.tensor(case["b"], dtype=torch.float64),
                         time_steps=case["time_steps"], tau=case["tau"],
                         v_threshold=case["v_threshold"], linear_scale=case["linear_scale"],
                         fused=fused)
        beta = torch.tensor(case["beta_node_by_neuron"], dtype=torch.float64)
        spikes = conv(beta, edges[:, :2].t(), edges[:, 2])
        want = torch.tensor(case["expected_spikes_time_node_neuron"], dtype=torch.float64)
        assert torch.equal(spikes, want), case["name"]
        kappa = readout_kernel(case["time_steps"], case["readout_decay"], dtype=torch.float64)
        readout = torch.einsum("t,tnd->nd", kappa, spikes)
        assert torch.allclose(readout, torch.tensor(case["expected_readout_node_neuron"],
                                                    dtype=torch.float64))


def first_spike_times(spikes):
    fired = spikes.bool()
    t = torch.arange(spikes.size(0)).view(-1, *([1] * (spikes.dim() - 1))).expand_as(fired)
    return torch.where(fired, t, torch.full_like(t, 10**6)).min(0).values


def test_spike_arrival_along_chain_of_known_delays():
    """A strong synapse makes a neuron fire on the step a spike arrives, so the first spike
    of node k is the delay-weighted distance sum_{i<k} (1 + delta_i), as networkx says."""
    delays = torch.tensor([[0], [2], [1], [3]])  # relation -> delay (one neuron)
    edges = [(0, 1, 1), (1, 2, 0), (2, 3, 3), (3, 4, 2), (4, 5, 1)]
    ei = torch.tensor([[a, b] for a, b, _ in edges]).t()
    et = torch.tensor([r for _, _, r in edges])
    conv = make_conv(1, 4, delays, torch.tensor([[3.1]], dtype=torch.float64), time_steps=20)
    beta = torch.zeros(6, 1, dtype=torch.float64)
    beta[0] = 2.5
    first = first_spike_times(conv(beta, ei, et))[:, 0]
    g = nx.DiGraph()
    g.add_weighted_edges_from((a, b, 1 + int(delays[r])) for a, b, r in edges)
    dist = nx.single_source_dijkstra_path_length(g, 0)
    assert first.tolist() == [dist[v] for v in range(6)]


def test_first_spike_time_is_delayed_shortest_path_on_random_graphs():
    """One neuron per node, strong synapses: the spike wave computes Dijkstra distances
    with edge lengths 1 + delta (compared with networkx on random relational graphs)."""
    gen = torch.Generator().manual_seed(0)
    for trial in range(5):
        n, e, rels = 30, 60, 3
        ei = torch.randint(0, n, (2, e), generator=gen)
        et = torch.randint(0, rels, (e,), generator=gen)
        delays = torch.randint(0, 5, (rels, 1), generator=gen)
        conv = make_conv(1, rels, delays, torch.tensor([[3.1]], dtype=torch.float64),
                         time_steps=40)
        beta = torch.zeros(n, 1, dtype=torch.float64)
        beta[0] = 2.5
        first = first_spike_times(conv(beta, ei, et))[:, 0]
        g = nx.DiGraph()
        g.add_nodes_from(range(n))
        for (a, b), r in zip(ei.t().tolist(), et.tolist()):
            w = 1 + int(delays[r])
            if not g.has_edge(a, b) or g[a][b]["weight"] > w:
                g.add_edge(a, b, weight=w)
        dist = nx.single_source_dijkstra_path_length(g, 0)
        for v in range(n):
            assert first[v].item() == (dist[v] if v in dist and dist[v] < 40 else 10**6), trial


def test_unreachable_nodes_never_spike():
    torch.manual_seed(0)
    # two components: 0..9 and 10..19; the source is node 0
    ei = torch.cat([torch.randint(0, 10, (2, 40)), torch.randint(10, 20, (2, 40))], dim=1)
    et = torch.randint(0, 3, (80,))
    conv = SpikingDelayConv(8, 3, bias=False)
    with torch.no_grad():
        conv.lin.weight.abs_().mul_(3.0)
    beta = torch.zeros(20, 2, 8)
    beta[0] = 3.0
    spikes = conv(beta, ei, et)
    reach = set(nx.descendants(nx.DiGraph(ei.t().tolist()), 0)) | {0}
    fired = spikes.sum(dim=(0, 2, 3)) > 0
    assert fired[0] and fired[sorted(reach - {0})].any()
    assert not fired[[v for v in range(20) if v not in reach]].any()


def test_homogeneous_graph_and_sparse_adjacency():
    torch.manual_seed(1)
    ei = torch.randint(0, 15, (2, 50))
    conv = SpikingDelayConv(4)  # one relation, no edge_type
    beta = torch.zeros(15, 4)
    beta[3] = 3.0
    out = conv(beta, ei)
    assert out.shape == (10, 15, 4)
    adj = torch.sparse_coo_tensor(ei.flip(0), torch.ones(50), (15, 15),
                                  check_invariants=True).coalesce()  # PyG: adj_t (row = target)
    assert torch.equal(conv(beta, adj), out)


def assert_fused_matches_per_edge(fused, edge, n, ei, et, ew):
    """Same parameters, same spikes and gradients (to 1e-10) on both paths."""
    edge.load_state_dict(fused.state_dict())
    beta = torch.zeros(n, 3, 6, dtype=torch.float64)
    beta[torch.tensor([0, 5, 9]), torch.arange(3)] = 2.6
    outs, grads = [], []
    for conv in (fused, edge):
        out = conv(beta, ei, et, edge_weight=ew)
        loss = (out * torch.linspace(0, 1, out.numel(), dtype=torch.float64).view_as(out)).sum()
        grads.append(torch.autograd.grad(loss, list(conv.parameters())))
        outs.append(out)
    assert outs[0].sum() > 0
    assert torch.equal(outs[0], outs[1])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-10)
    assert any(g.abs().sum() > 0 for g in grads[0])


SWITCHES = [
    dict(),
    dict(relation_weight=True),
    dict(self_connection=True),
    dict(layer_norm=True),
    dict(aggregate="pna"),
    dict(relation_weight=True, self_connection=True, layer_norm=True, aggregate="pna"),
    dict(delay=False),
    dict(drive="reached"),
    dict(drive="reached", aggregate="pna", self_connection=True),
]


@pytest.mark.parametrize("kw", SWITCHES, ids=lambda k: "-".join(k) or "plain")
def test_fused_and_per_edge_paths_agree(kw):
    torch.manual_seed(2)
    n, rels = 25, 4
    ei = torch.randint(0, n, (2, 120))
    et = torch.randint(0, rels, (120,))
    ew = torch.rand(120, dtype=torch.float64) + 0.5
    fused = SpikingDelayConv(6, rels, linear_scale=2.0, fused=True, **kw).double()
    edge = SpikingDelayConv(6, rels, linear_scale=2.0, fused=False, **kw).double()
    assert_fused_matches_per_edge(fused, edge, n, ei, et, ew)


def test_saved_memory_grows_with_nodes_not_edges():
    """Everything saved for backward is node-level ([N, B*D]) or relation-level: no tensor
    with E * B * D elements, whatever the number of time steps."""
    torch.manual_seed(3)
    n, e, rels, b, d, steps = 40, 4000, 3, 2, 8, 6
    ei = torch.randint(0, n, (2, e))
    et = torch.randint(0, rels, (e,))
    conv = SpikingDelayConv(d, rels, time_steps=steps, linear_scale=0.05)
    beta = torch.zeros(n, b, d)
    beta[0] = 3.0
    plan = conv.build_plan(ei, n, et)
    sizes = []

    def pack(x):
        sizes.append(x.numel())
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        out = conv(beta, ei, et, plan=plan)
    out.sum().backward()
    assert conv.delay_logit.grad.abs().sum() > 0
    assert max(sizes) <= n * b * d * steps          # the largest is the stacked spike train
    assert sum(sizes) < 30 * steps * n * b * d      # a few node-level tensors per step
    assert sum(sizes) < e * b * d                   # far below one edge-level tensor


def test_reset_parameters_and_repr():
    conv = SpikingDelayConv(4, 3, relation_weight=True)
    before = conv.delay_logit.detach().clone()
    torch.manual_seed(123)
    conv.reset_parameters()
    assert not torch.equal(before, conv.delay_logit)
    assert repr(conv).startswith("SpikingDelayConv(4, num_relations=3")
    assert conv.integer_delays().max() <= 4 and conv.integer_delays().min() >= 0
    with pytest.raises(ValueError, match="aggregate"):
        SpikingDelayConv(4, aggregate="max")


def test_any_callable_surrogate():
    conv = SpikingDelayConv(3, surrogate=lambda x: (x >= 0).float() + 0 * x, time_steps=4)
    beta = torch.zeros(3, 3)
    beta[0] = 3.0
    out = conv(beta, torch.tensor([[0, 1], [1, 2]]))
    assert out[0, 0].sum() == 3 and math.isclose(out[0, 1:].sum().item(), 0.0)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("kw", [dict(aggregate="pna"),
                                dict(relation_weight=True, self_connection=True,
                                     layer_norm=True, aggregate="pna")],
                         ids=["pna", "grsnn+"])
def test_pair_level_pna_matches_edge_level(kw, weighted):
    """The fused PNA computes the edge statistics from (source, relation) pair messages
    with sparse products; without duplicate edges (or without edge weights) it must give
    the per-edge aggregation's spikes and gradients, max / min ties included."""
    torch.manual_seed(5)
    n, rels = 30, 3
    ei = torch.randint(0, n, (2, 200))
    et = torch.randint(0, rels, (200,))
    key = (ei[0] * rels + et) * n + ei[1]
    keep = torch.unique(key, return_inverse=True)[1]
    first = torch.full((int(keep.max()) + 1,), 200).scatter_reduce(
        0, keep, torch.arange(200), "amin")
    ei, et = ei[:, first], et[first]             # no duplicate (source, relation, target)
    ew = torch.rand(ei.size(1), dtype=torch.float64) + 0.5 if weighted else None
    fused = SpikingDelayConv(6, rels, linear_scale=2.0, fused=True, **kw).double()
    plan = fused.build_plan(ei, n, et, ew)
    assert plan.num_pairs < ei.size(1)           # pairs really merge edges
    assert plan.extreme_operators(torch.float64) is not None
    edge = SpikingDelayConv(6, rels, linear_scale=2.0, fused=False, **kw).double()
    assert_fused_matches_per_edge(fused, edge, n, ei, et, ew)


def test_weighted_duplicate_edges_fall_back_to_edge_messages():
    ei = torch.tensor([[0, 0, 1], [2, 2, 2]])        # edge 0 -> 2 twice, same relation
    plan = build_plan(ei, 3, torch.tensor([0, 0, 0]), 1, torch.tensor([1.0, 2.0, 1.0]))
    assert plan.extreme_operators(torch.float32) is None
    plan = build_plan(ei, 3, torch.tensor([0, 0, 0]), 1)   # unweighted: max is exact
    adj_sq, adj_ext = plan.extreme_operators(torch.float32)
    assert adj_ext.to_dense().tolist() == [[0, 0], [0, 0], [1, 1]]
    assert adj_sq.to_dense().tolist() == [[0, 0], [0, 0], [2, 1]]


@pytest.mark.parametrize("self_connection", [False, True])
def test_pna_linear_layer_reads_the_scaled_features(self_connection):
    """The layer folds PNA's degree scalers into its linear product; its input current must
    equal the linear layer on the concatenated (previous spikes, 12 D features) input,
    which is what the layer's parameters mean (checkpoints depend on that layout)."""
    from grsnn.functional import pna_aggregate, pna_scales
    torch.manual_seed(3)
    n, b, d = 6, 2, 4
    conv = SpikingDelayConv(d, 2, aggregate="pna", self_connection=self_connection).double()
    dst = torch.tensor([0, 0, 1, 2, 2, 2, 5])
    msg = torch.randn(dst.numel(), b * d, dtype=torch.float64)
    scales = pna_scales(torch.bincount(dst, minlength=n).double())
    prev = (torch.rand(n, b * d) > 0.5).double()
    x = pna_aggregate(msg, dst, n, scales, d).view(n, b, -1)
    if self_connection:
        x = torch.cat([prev.view(n, b, d), x], dim=-1)
    stats = pna_aggregate(msg, dst, n, None, d, scaled=False)
    got = conv._linear(stats, prev, scales, n, b)
    assert torch.allclose(got, conv.lin(x), atol=1e-12)
