"""The fused neuron step (one compiled kernel forward, one backward) against the step
functions it replaces: same spikes, states, history, traces and gradients."""
import warnings

import pytest
import torch
from torch_geometric.data import Data

import grsnn.functional.neuron as neuron
from grsnn.functional import (ATan, Sigmoid, lif_step, lif_step_fused, push_history,
                              trace_step)
from grsnn.nn import GRSNN, SpikingGNN

TAU, VTH = 4.0, 2.0


def _inputs(seed, shape=(37, 11), dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    cur, c, u, beta = (torch.randn(*shape, generator=g, dtype=dtype) * 2 for _ in range(4))
    hist = torch.randint(0, 256, shape, generator=g, dtype=torch.int64).to(torch.uint8)
    acc_a, acc_b = (torch.rand(*shape, generator=g, dtype=dtype) for _ in range(2))
    return cur, c, u, beta, hist, acc_a, acc_b


def _reference(cur, c, u, beta, hist, acc_a, acc_b, scale, surrogate):
    s, c2, u2 = lif_step(cur * scale, c, u, beta, TAU, VTH, surrogate)
    tr, a2, b2 = trace_step(s.detach(), acc_a, acc_b, TAU)
    return s, c2, u2, push_history(hist, s), tr, a2, b2


def _grads(outs, leaves, seed):
    """Gradients of a random linear function of (s, c, u)."""
    g = torch.Generator().manual_seed(seed)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in outs[:3])
    return torch.autograd.grad(loss, leaves)


@pytest.mark.parametrize("surrogate", [Sigmoid(4.0), ATan(2.0)])
@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("scale", [1.0, 0.1])
def test_fused_step_matches_the_separate_steps(surrogate, compiled, scale):
    cur, c, u, beta, hist, acc_a, acc_b = _inputs(0)
    leaves = [x.requires_grad_() for x in (cur, c, u, beta)]
    want = _reference(cur, c, u, beta, hist, acc_a, acc_b, scale, surrogate)
    got = lif_step_fused(cur, c, u, beta, hist, TAU, VTH, surrogate, scale, acc_a, acc_b,
                         compiled=compiled)
    assert got[0].sum() > 0 and (got[0] == 0).sum() > 0      # some neurons fire, some not
    assert torch.equal(got[0], want[0]) and torch.equal(got[3], want[3])
    for x, y in zip(got[1:3] + got[4:], want[1:3] + want[4:]):
        assert torch.allclose(x, y, rtol=0, atol=1e-12)
    for x, y in zip(_grads(got, leaves, 1), _grads(want, leaves, 1)):
        assert torch.allclose(x, y, rtol=0, atol=1e-12)
    assert not got[3].requires_grad and not got[4].requires_grad


def test_fused_step_without_trace_and_with_broadcast_beta():
    cur, c, u, _, hist, _, _ = _inputs(2)
    beta = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    out = lif_step_fused(cur, c, u, beta, hist, TAU, VTH, Sigmoid(), compiled=False)
    assert out[4] is None and out[5] is None and out[6] is None
    want = lif_step(cur, c, u, beta, TAU, VTH, Sigmoid())
    (g_fused,) = _grads(out, [beta], 3)
    (g_want,) = _grads(want, [beta], 3)
    assert g_fused.shape == (1,) and torch.allclose(g_fused, g_want, atol=1e-12)


def test_fused_step_rejects_plain_callables_and_half_traces():
    cur, c, u, beta, hist, acc_a, _ = _inputs(3)
    with pytest.raises(TypeError, match="Surrogate"):
        lif_step_fused(cur, c, u, beta, hist, TAU, VTH, lambda x: (x >= 0).double())
    with pytest.raises(ValueError, match="acc_a and acc_b"):
        lif_step_fused(cur, c, u, beta, hist, TAU, VTH, Sigmoid(), acc_a=acc_a)


def _kg(seed=0, num_nodes=25, num_edges=90, num_relations=6):
    g = torch.Generator().manual_seed(seed)
    data = Data(edge_index=torch.randint(0, num_nodes, (2, num_edges), generator=g),
                edge_type=torch.randint(0, num_relations, (num_edges,), generator=g),
                num_nodes=num_nodes)
    rows = []
    for h, r in [(0, 1), (3, 2), (7, 0)]:
        tails = torch.randint(0, num_nodes, (6,), generator=g)
        rows.append(torch.stack([torch.full((6,), h), tails, torch.full((6,), r)], -1))
    return data, torch.stack(rows)


@pytest.mark.parametrize("kw", [dict(), dict(layer_norm=True, relation_weight=True,
                                             linear_scale=0.3, self_connection=True),
                                dict(dependent=False, aggregate="pna"),
                                dict(surrogate="atan", delay_bound=9),
                                dict(drive="reached", readout="state")])
def test_compiled_grsnn_gives_the_eager_logits_and_gradients(kw):
    data, batch = _kg()
    results = []
    for compiled in (False, True):
        torch.manual_seed(1)
        model = GRSNN(6, hidden_dim=8, compiled=compiled, **kw).double()
        out = model(data, batch)
        out.logsumexp(-1).sum().backward()
        results.append((out.detach(), {n: p.grad for n, p in model.named_parameters()
                                       if p.grad is not None}))
    (out0, g0), (out1, g1) = results
    assert torch.allclose(out0, out1, rtol=0, atol=1e-12)
    assert g0.keys() == g1.keys() and "query.weight" in g0
    for name in g0:
        assert torch.allclose(g0[name], g1[name], rtol=1e-9, atol=1e-12), name


def test_compiled_spiking_gnn_matches_eager():
    g = torch.Generator().manual_seed(0)
    x, ei = torch.randn(20, 5, generator=g), torch.randint(0, 20, (2, 70), generator=g)
    outs = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = SpikingGNN(5, 16, num_layers=2, out_channels=3, compiled=compiled)
        out = model(x, ei)
        out.square().sum().backward()
        outs.append((out.detach(), model.convs[0].lin.weight.grad))
    assert torch.allclose(outs[0][0], outs[1][0], atol=1e-5)
    assert torch.allclose(outs[0][1], outs[1][1], atol=1e-5)


def test_compile_failure_warns_once_and_runs_eagerly(monkeypatch):
    kernels = neuron._Kernels()
    monkeypatch.setattr(neuron, "_KERNELS", kernels)

    def broken(fn, **kwargs):
        def run(*args):
            raise RuntimeError("no C++ compiler found")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    cur, c, u, beta, hist, acc_a, acc_b = _inputs(4)
    want = lif_step_fused(cur, c, u, beta, hist, TAU, VTH, Sigmoid(), compiled=False)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler found.*eagerly"):
        got = lif_step_fused(cur, c, u, beta, hist, TAU, VTH, Sigmoid(), compiled=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no second warning
        again = lif_step_fused(cur, c, u, beta, hist, TAU, VTH, Sigmoid(), compiled=True)
    for x, y, z in zip(got[:4], want[:4], again[:4]):
        assert torch.equal(x, y) and torch.equal(x, z)


@pytest.mark.parametrize("hist_dtype,bound", [(torch.uint8, 4), (torch.int16, 9)])
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_pair_messages_are_bit_identical(hist_dtype, bound, weighted, monkeypatch):
    """The compiled pair-message kernel (history bits, delays, relation weights in one
    pass) gives exactly the eager messages, sums and gradients, and really runs."""
    from grsnn.functional import build_plan, delayed_gather, delayed_propagate
    kernels, used = neuron._Kernels(), []

    def counting(fn, *args):
        used.append(fn.__name__)
        return kernels(fn, *args)
    monkeypatch.setattr(neuron, "_KERNELS", counting)
    g = torch.Generator().manual_seed(4)
    n, rels, cols = 25, 3, 6
    ei, et = torch.randint(0, n, (2, 90), generator=g), torch.randint(0, rels, (90,), generator=g)
    plan = build_plan(ei, n, et, rels)
    hist = torch.randint(0, 1 << (bound + 1), (n, cols), generator=g).to(hist_dtype)
    delta = torch.randint(0, bound + 1, (rels, cols), generator=g).to(hist_dtype)
    frames = [((hist >> j) & 1).double().requires_grad_() for j in range(bound + 1)]
    outs = []
    for compiled in (False, True):
        weight = (torch.randn(rels, cols, generator=torch.Generator().manual_seed(1),
                              dtype=torch.float64).requires_grad_() if weighted else None)
        agg = delayed_propagate(plan, hist, frames, delta, weight=weight, workspace={},
                                compiled=compiled)
        msg = delayed_gather(plan, hist, frames, delta, weight=weight, compiled=compiled)
        inputs = frames + ([weight] if weighted else [])
        grads = torch.autograd.grad((agg.square().sum() + msg.sum()), inputs, allow_unused=True)
        outs.append((agg.detach(), msg.detach(), grads))
    (a0, m0, g0), (a1, m1, g1) = outs
    assert torch.equal(a0, a1) and torch.equal(m0, m1) and m0.abs().sum() > 0
    for x, y in zip(g0, g1):
        assert (x is None and y is None) or torch.equal(x, y)
    assert used == ["_weighted_kernel" if weighted else "_raw_kernel"] * 2
