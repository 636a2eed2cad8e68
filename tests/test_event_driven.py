"""Event-driven propagation (``propagation="event"`` / ``"auto"``) against the dense engine:
the same spikes, logits and gradients bit for bit, in float64, for every model switch."""
import pytest
import torch
from torch_geometric.data import Data

from grsnn.functional import (AUTO_CROSSOVER, active_pairs, build_plan, delayed_gather,
                              delayed_propagate)
from grsnn.functional import neuron
from grsnn.nn import GRSNN, SpikingDelayConv


def _graph(n, e, rels, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, n, (2, e), generator=g),
            torch.randint(0, rels, (e,), generator=g), g)


def _history(n, cols, bound, active_nodes, g):
    """A bit history in which only ``active_nodes`` nodes (of ``n``) have spikes."""
    hist = torch.randint(0, 1 << (bound + 1), (n, cols), generator=g).to(torch.uint8)
    silent = torch.randperm(n, generator=g)[active_nodes:]
    hist[silent] = 0
    return hist


@pytest.mark.parametrize("active_nodes", [0, 1, 6, 40])
@pytest.mark.parametrize("weighted", [False, True])
def test_propagate_is_bit_identical_forward_and_backward(active_nodes, weighted):
    n, rels, cols, bound = 40, 4, 6, 4
    ei, et, g = _graph(n, 160, rels, 0)
    plan = build_plan(ei, n, et, rels, edge_weight=torch.rand(160, generator=g) + 0.5)
    hist = _history(n, cols, bound, active_nodes, g)
    delta = torch.randint(0, bound + 1, (rels, cols), generator=g).to(torch.uint8)
    frames = [((hist >> j) & 1).double().requires_grad_() for j in range(bound + 1)]
    traces = torch.randn(bound + 1, n, cols, generator=g, dtype=torch.float64)
    traces[:, (hist == 0).all(1)] = 0.0            # a node that never fired has no trace
    delay = (delta.double() + 0.2).requires_grad_()
    weight = (torch.randn(rels, cols, generator=g, dtype=torch.float64).requires_grad_()
              if weighted else None)
    grad_out = torch.randn(n, cols, generator=g, dtype=torch.float64)
    results = {}
    for mode in ("dense", "event", "auto"):
        stats: dict = {"active_pairs": []}
        out = delayed_propagate(plan, hist, frames, delta, delay, weight, traces,
                                workspace=stats, propagation=mode)
        inputs = frames + [delay] + ([weight] if weighted else [])
        results[mode] = (out.detach(), torch.autograd.grad(out, inputs, grad_out), stats)
    for mode in ("event", "auto"):
        assert torch.equal(results[mode][0], results["dense"][0]), mode
        for a, b in zip(results[mode][1], results["dense"][1]):
            assert torch.equal(a, b), mode
    share = results["event"][2]["active_pairs"]
    assert len(share) == 1 and results["dense"][2]["active_pairs"] == []
    if active_nodes == 0:
        assert share == [0.0] and results["dense"][0].abs().sum() == 0
    if active_nodes == n:
        assert share == [1.0]


def test_inactive_pairs_carry_exactly_zero_messages():
    n, rels, cols, bound = 50, 3, 5, 6
    ei, et, g = _graph(n, 200, rels, 1)
    plan = build_plan(ei, n, et, rels)
    for lo in range(bound + 1):     # delays in [lo, bound]: older and newer bits are ignored
        hist = _history(n, cols, bound, 10, g)
        delta = torch.randint(lo, bound + 1, (rels, cols), generator=g).to(torch.uint8)
        frames = [((hist >> j) & 1).double() for j in range(bound + 1)]
        msg = delayed_gather(plan, hist, frames, delta)
        active = active_pairs(plan, hist, delta)
        assert msg[~active].abs().sum() == 0
        # the window is tight at node level: a node with a spike at a delay in use is active
        lo_, hi_ = int(delta.min()), int(delta.max())
        in_window = torch.zeros_like(hist, dtype=torch.bool)
        for j in range(lo_, hi_ + 1):
            in_window |= ((hist >> j) & 1).bool()
        assert torch.equal(active, in_window.any(1)[plan.src])


def test_auto_pushes_below_the_crossover_and_pulls_above():
    n, rels, cols = 200, 2, 4
    ei, et, g = _graph(n, 800, rels, 2)
    plan = build_plan(ei, n, et, rels)
    delta = torch.zeros(rels, cols, dtype=torch.uint8)
    for active_nodes, pushed in ((2, True), (n, False)):
        hist = _history(n, cols, 0, active_nodes, g)
        frames = [hist.double()]
        stats: dict = {"active_pairs": []}
        calls = []
        orig = torch.sparse.mm

        def spy(csr, dense, *args, calls=calls, orig=orig):
            calls.append(csr.size(1))
            return orig(csr, dense, *args)
        torch.sparse.mm = spy
        try:
            out = delayed_propagate(plan, hist, frames, delta, workspace=stats,
                                    propagation="auto")
        finally:
            torch.sparse.mm = orig
        want = delayed_propagate(plan, hist, frames, delta)
        assert torch.equal(out, want)
        share = stats["active_pairs"][0]
        assert (share <= AUTO_CROSSOVER) == pushed
        # push multiplies by the operator restricted to the active pairs
        assert calls == [round(share * plan.num_pairs) if pushed else plan.num_pairs]


def test_bad_propagation_is_rejected():
    with pytest.raises(ValueError, match="propagation must be one of"):
        SpikingDelayConv(4, propagation="sparse")
    plan = build_plan(torch.tensor([[0], [1]]), 2)
    hist = torch.zeros(2, 1, dtype=torch.uint8)
    with pytest.raises(ValueError, match="propagation must be one of"):
        delayed_propagate(plan, hist, [hist.double()], hist[:1], propagation="push")


def test_chain_circuit_pushes_only_the_wave():
    """A chain 0 -> 1 -> ... -> 9 with one neuron per node, no bias and W = 1 scaled by 3
    (one spike makes the target fire, eps(0) * 3 = 2.04 >= V_th): the wave walks one node
    per step and a node, once reached, fires every step, so step t reads exactly the
    pairs of nodes 0 .. t - 1 and none of the others."""
    n = 10
    ei = torch.stack([torch.arange(n - 1), torch.arange(1, n)])
    beta = torch.zeros(n, 1, dtype=torch.float64)
    beta[0] = 2.5
    outs, shares = [], []
    for mode in ("dense", "event"):
        conv = SpikingDelayConv(1, time_steps=8, delay=False, bias=False, linear_scale=3.0,
                                propagation=mode).double()
        with torch.no_grad():
            conv.lin.weight.fill_(1.0)
        stats: list = []
        import grsnn.nn.conv as conv_mod
        orig = conv_mod.propagate_spikes

        def spy(*args, stats=stats, orig=orig, **kw):
            ws = args[3] if len(args) > 3 else kw.get("workspace")
            ws.setdefault("active_pairs", stats)
            return orig(*args, **kw)
        conv_mod.propagate_spikes, saved = spy, conv_mod.propagate_spikes
        try:
            outs.append(conv(beta, ei))
        finally:
            conv_mod.propagate_spikes = saved
        shares.append(stats)
    assert torch.equal(outs[0], outs[1])
    raster = outs[0].view(8, n)
    assert torch.equal(raster, (torch.arange(n) <= torch.arange(8).unsqueeze(1)).double())
    assert shares[0] == [] and shares[1] == [t / (n - 1) for t in range(1, 8)]


def _kg(n=30, e=120, rels=6, seed=0):
    ei, et, g = _graph(n, e, rels, seed)
    data = Data(edge_index=ei, edge_type=et, num_nodes=n)
    rows = []
    for h, r in [(0, 1), (3, 2), (7, 0)]:
        tails = torch.randint(0, n, (6,), generator=g)
        rows.append(torch.stack([torch.full((6,), h), tails, torch.full((6,), r)], -1))
    return data, torch.stack(rows)


def _run(data, batch, mode, kw, rels=6):
    torch.manual_seed(1)
    model = GRSNN(rels, hidden_dim=8, propagation=mode, **kw).double()
    out = model(data, batch)
    out.logsumexp(-1).sum().backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    with torch.no_grad():
        frozen = model(data, batch)
        trains = model.spike_trains(data, batch[:, 0, 0], batch[:, 0, 2])
    return out.detach(), grads, frozen, trains


SWITCHES = [dict(), dict(drive="reached"), dict(drive="reached", readout="state"),
            dict(readout="state", degree_prior=True),
            dict(drive="reached", degree_prior=True, delay_init=-3.0),
            dict(relation_weight=True, self_connection=True, layer_norm=True,
                 linear_scale=0.3),
            dict(drive="reached", relation_weight=True, self_connection=True),
            dict(dependent=False, aggregate="pna", drive="reached"),
            dict(fused=False, drive="reached"),
            dict(surrogate="atan", delay_bound=9, v_threshold=1.0),
            dict(symmetric=True, dependent=False, num_relations_=1)]


@pytest.mark.parametrize("kw", SWITCHES)
@pytest.mark.parametrize("mode", ["event", "auto"])
def test_grsnn_logits_spikes_and_gradients_are_identical(kw, mode):
    kw = dict(kw)
    rels = 1 if kw.pop("num_relations_", None) else 6
    data, batch = _kg(rels=rels)
    if kw.get("symmetric"):
        batch = batch[:, :1].expand(-1, 3, -1).clone()
        batch[:, :, 1] = batch[:, :1, 1]             # rows share their tail too
        batch[:, :, 2] = 0
    dense = _run(data, batch, "dense", kw, rels)
    event = _run(data, batch, mode, kw, rels)
    assert torch.equal(dense[0], event[0]) and torch.equal(dense[2], event[2])
    assert torch.equal(dense[3], event[3]) and dense[3].any()
    assert torch.equal(dense[0], dense[2])
    assert dense[1].keys() == event[1].keys() and "query.weight" in dense[1]
    for name in dense[1]:
        assert torch.equal(dense[1][name], event[1][name]), name


@pytest.mark.parametrize("drive", ["always", "reached"])
def test_mid_size_random_graph_is_identical(drive):
    """2,000 nodes, 12,000 edges, 20 edge types, a batch of 4 queries x 16 candidates, 12
    steps: the wave crosses the crossover, so auto mixes push and pull steps."""
    data, batch = _kg(n=2000, e=12000, rels=20, seed=3)
    batch = torch.cat([batch, batch[:1]])[:4]
    batch = torch.cat([batch, batch[:, :, :]], 1)[:, :16]
    kw = dict(drive=drive, time_steps=12, relation_weight=True)
    dense = _run(data, batch, "dense", kw, rels=20)
    auto = _run(data, batch, "auto", kw, rels=20)
    assert torch.equal(dense[0], auto[0]) and torch.equal(dense[3], auto[3])
    for name in dense[1]:
        assert torch.equal(dense[1][name], auto[1][name]), name


def test_compiled_event_messages_are_identical(monkeypatch):
    """With ``compiled=True`` the active pairs' messages come from the compiled kernel."""
    kernels, used = neuron._Kernels(), []

    def counting(fn, *args):
        used.append(fn.__name__)
        return kernels(fn, *args)
    monkeypatch.setattr(neuron, "_KERNELS", counting)
    data, batch = _kg()
    kw = dict(compiled=True, relation_weight=True, drive="reached")
    dense = _run(data, batch, "dense", kw)
    event = _run(data, batch, "event", kw)
    assert torch.equal(dense[0], event[0]) and torch.equal(dense[3], event[3])
    for name in dense[1]:
        assert torch.allclose(dense[1][name], event[1][name], rtol=0, atol=0), name
    assert "_weighted_kernel" in used


def test_reached_circuit_skips_unreached_nodes_without_gradient(monkeypatch):
    """Without gradient the query-driven circuit runs the linear layer on the reached
    rows only, with the same spikes."""
    data, batch = _kg(n=400, e=500, rels=6, seed=5)
    rows = []
    orig = torch.nn.functional.linear

    def spy(x, *args, **kw):
        rows.append(x.shape[0])
        return orig(x, *args, **kw)
    torch.manual_seed(1)
    model = GRSNN(6, hidden_dim=8, drive="reached", propagation="event").double()
    with torch.no_grad():
        want = model.spike_trains(data, batch[:, 0, 0], batch[:, 0, 2])
        monkeypatch.setattr(torch.nn.functional, "linear", spy)
        got = model.spike_trains(data, batch[:, 0, 0], batch[:, 0, 2])
    assert torch.equal(want, got)
    assert rows and max(rows) < 400 * 3          # never all N x B rows


def test_firing_rate_is_recorded_and_differentiable():
    data, batch = _kg()
    torch.manual_seed(1)
    plain = GRSNN(6, hidden_dim=8).double()
    assert plain(data, batch) is not None and plain.firing_rate is None
    torch.manual_seed(1)
    model = GRSNN(6, hidden_dim=8, track_rate=True).double()
    out = model(data, batch)
    assert torch.equal(out, plain(data, batch))            # recording changes nothing
    trains = model.spike_trains(data, batch[:, 0, 0], batch[:, 0, 2])
    assert model.firing_rate.item() == pytest.approx(trains.double().mean().item())
    model.firing_rate.backward()
    assert model.delay_generator.weight.grad.abs().sum() > 0     # surrogate gradient
    model.score_all(data, batch[:, 0, 0], batch[:, 0, 2])
    assert model.firing_rate.item() == pytest.approx(trains.double().mean().item())
