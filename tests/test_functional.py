"""Neuron dynamics, surrogates, delayed propagation and its gradients (hand-computed values)."""
import math

import pytest
import torch

from grsnn.functional import (ATan, Sigmoid, alpha_kernel, alpha_kernel_derivative, build_plan,
                              delayed_gather, delayed_propagate, heaviside, lif_init, lif_step,
                              pna_aggregate, pna_linear, pna_scales, push_history,
                              readout_kernel, resolve_surrogate, trace_step)

TAU = 4.0


def test_alpha_kernel_values():
    expected = [0.680, 1.059, 1.237, 1.284, 1.250]
    got = alpha_kernel(torch.arange(5.0), TAU)
    assert torch.allclose(got, torch.tensor(expected), atol=5e-4)
    assert alpha_kernel(torch.tensor([-1.0]), TAU).item() == 0.0


def test_unit_input_raises_membrane_by_alpha_kernel():
    """A unit current at t0 raises u at t0 + j by eps(j) (no spike: high threshold)."""
    c = u = beta = torch.zeros(1, dtype=torch.float64)
    us = []
    for t in range(8):
        inp = torch.ones(1, dtype=torch.float64) if t == 2 else torch.zeros(1, dtype=torch.float64)
        _, c, u = lif_step(inp, c, u, beta, TAU, 1e9, Sigmoid())
        us.append(u.item())
    assert us[:2] == [0.0, 0.0]
    j = torch.arange(6, dtype=torch.float64)
    assert torch.allclose(torch.tensor(us[2:], dtype=torch.float64), alpha_kernel(j, TAU))


def test_two_node_circuit_membrane_is_sum_of_shifted_kernels():
    """Node 0 fires every step (beta above threshold); node 1 (never firing) integrates
    the delayed spikes: u1[t] = w * sum_{t0 = 1 + delta}^{t} eps(t - t0)."""
    delta, w, T = 2, 0.3, 9
    plan = build_plan(torch.tensor([[0], [1]]), 2)
    beta = torch.tensor([[3.0], [0.0]], dtype=torch.float64)
    thr = torch.tensor([[2.0], [1e9]], dtype=torch.float64)
    s, c, u = lif_init(beta, 0.0, lambda x: heaviside(x - thr))
    frames, hist = [s], push_history(torch.zeros(2, 1, dtype=torch.uint8), s)
    u1 = [u[1].item()]
    for _ in range(1, T):
        a = delayed_propagate(plan, hist, frames[::-1][:5],
                              torch.full((1, 1), delta, dtype=torch.uint8))
        s, c, u = lif_step(w * a, c, u, beta, TAU, 0.0, lambda x: heaviside(x - thr))
        frames.append(s)
        hist = push_history(hist, s)
        u1.append(u[1].item())
    for t in range(T):
        want = sum(w * alpha_kernel(torch.tensor(float(t - t0), dtype=torch.float64), TAU).item()
                   for t0 in range(1 + delta, t + 1))
        assert u1[t] == pytest.approx(want, abs=1e-12)


def test_trace_recursion_matches_definition():
    torch.manual_seed(0)
    s = (torch.rand(10, 7) < 0.4).double()
    acc_a = acc_b = torch.zeros(7, dtype=torch.float64)
    for t in range(10):
        tr, acc_a, acc_b = trace_step(s[t], acc_a, acc_b, TAU)
        ages = torch.arange(t, -1, -1, dtype=torch.float64)
        want = -(s[: t + 1] * alpha_kernel_derivative(ages, TAU).unsqueeze(1)).sum(0)
        assert torch.allclose(tr, want)


def test_readout_kernel():
    k = readout_kernel(10, 0.95, dtype=torch.float64)
    assert k.sum().item() == pytest.approx(1.0)
    assert torch.allclose(k[1:] / k[:-1], torch.full((9,), 0.95, dtype=torch.float64))


def test_lif_threshold_is_inclusive_and_reset_hard():
    s, c, u = lif_init(torch.tensor([2.0, 1.999]), 2.0, Sigmoid())
    assert s.tolist() == [1.0, 0.0]
    assert u.tolist() == [0.0, pytest.approx(1.999)]


@pytest.mark.parametrize("surrogate,reference", [
    (Sigmoid(4.0), lambda x: torch.sigmoid(4.0 * x)),
    (ATan(2.0), lambda x: torch.atan(math.pi / 2 * 2.0 * x) / math.pi + 0.5),
])
def test_surrogate_gradients(surrogate, reference):
    x = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    spikes = surrogate(x)
    assert torch.equal(spikes, (x >= 0).double())
    (g,) = torch.autograd.grad(spikes.sum(), x)
    x2 = x.detach().requires_grad_()
    (want,) = torch.autograd.grad(reference(x2).sum(), x2)
    assert torch.allclose(g, want)


def test_resolve_surrogate():
    assert isinstance(resolve_surrogate(None), Sigmoid)
    assert isinstance(resolve_surrogate("atan"), ATan)
    f = lambda x: x  # noqa: E731
    assert resolve_surrogate(f) is f
    with pytest.raises(ValueError, match="unknown surrogate"):
        resolve_surrogate("relu")


# ---------------------------------------------------------------- delayed propagation
def random_history(num_nodes, cols, t, seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = [(torch.rand(num_nodes, cols, generator=g) < 0.5).double() for _ in range(t)]
    hist = torch.zeros(num_nodes, cols, dtype=torch.uint8)
    for f in frames:
        hist = push_history(hist, f)
    return frames, hist  # frames[i] = s[i]


def random_graph(num_nodes, num_edges, num_rel, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    et = torch.randint(0, num_rel, (num_edges,), generator=g)
    return ei, et


@pytest.mark.parametrize("group", [True, False])
@pytest.mark.parametrize("t", [1, 3, 6])
def test_delayed_message_is_shifted_spike_with_zero_fill(t, group):
    n, cols, rels, K = 9, 6, 3, 4
    ei, et = random_graph(n, 40, rels, seed=t)
    frames, hist = random_history(n, cols, t, seed=t)
    delta = torch.randint(0, K + 1, (rels, cols), generator=torch.Generator().manual_seed(1),
                          dtype=torch.uint8)
    plan = build_plan(ei, n, et, rels, group=group, dtype=torch.float64)
    window = frames[::-1][: K + 1]
    msg = delayed_gather(plan, hist, window, delta)
    msg_e = msg.index_select(0, plan.edge_pair)
    for e in range(ei.size(1)):
        for k in range(cols):
            d = int(delta[et[e], k])
            want = frames[t - 1 - d][ei[0, e], k].item() if d < t else 0.0
            assert msg_e[e, k].item() == want
    agg = delayed_propagate(plan, hist, window, delta)
    want = torch.zeros(n, cols, dtype=torch.float64).index_add_(0, ei[1], msg_e)
    assert torch.equal(agg, want)


def reference_aggregate(frames, t, ei, et, delta, weight, n):
    """Differentiable brute force: stack the full history and index it per edge."""
    hist = torch.stack(frames)                                   # [t, N, C]
    cols = hist.size(-1)
    d = delta.long()[et]                                         # [E, C]
    idx = (t - 1 - d).clamp(min=0)
    msg = hist[idx, ei[0].unsqueeze(1), torch.arange(cols)] * (d < t)
    msg = msg * weight[et]
    return torch.zeros(n, cols, dtype=msg.dtype).index_add(0, ei[1], msg)


@pytest.mark.parametrize("chunk", [1 << 19, 7])  # one chunk, and many uneven chunks
def test_spike_and_weight_gradients_are_exact(chunk, monkeypatch):
    monkeypatch.setattr("grsnn.functional.propagation._CHUNK_ELEMENTS", chunk)
    n, cols, rels, t, K = 8, 5, 3, 6, 4
    ei, et = random_graph(n, 30, rels, seed=3)
    frames, hist = random_history(n, cols, t, seed=4)
    frames = [f.requires_grad_() for f in frames]
    delta = torch.randint(0, K + 1, (rels, cols), generator=torch.Generator().manual_seed(5),
                          dtype=torch.uint8)
    weight = torch.randn(rels, cols, dtype=torch.float64, requires_grad=True)
    gout = torch.randn(n, cols, dtype=torch.float64)
    plan = build_plan(ei, n, et, rels, edge_weight=None, dtype=torch.float64)
    window = frames[::-1][: K + 1]
    out = delayed_propagate(plan, hist, window, delta, weight=weight)
    grads = torch.autograd.grad((out * gout).sum(), [*window, weight])
    ref = reference_aggregate(frames, t, ei, et, delta, weight, n)
    assert torch.allclose(out, ref)
    want = torch.autograd.grad((ref * gout).sum(), [*window, weight])
    for g, w in zip(grads, want):
        assert torch.allclose(g, w)


@pytest.mark.parametrize("chunk,stacked", [(1 << 19, True), (9, True), (9, False)])
def test_delay_gradient_matches_finite_differences_of_psp_smoothed_objective(chunk, stacked,
                                                                             monkeypatch):
    monkeypatch.setattr("grsnn.functional.propagation._CHUNK_ELEMENTS", chunk)
    """F(d) = sum_t sum_e g_v[t] * sum_j s_u[j] eps(t - 1 - d - j) is the message stream
    filtered by the PSP kernel with a continuous delay; at an integer delay its derivative
    (approached from below, the side where no new spike enters) is the trace formula."""
    torch.set_default_dtype(torch.float64)
    try:
        n, cols, rels, T, K = 7, 4, 2, 10, 4
        ei, et = random_graph(n, 25, rels, seed=7)
        spikes, _ = random_history(n, cols, T, seed=8)
        delta = torch.randint(0, K + 1, (rels, cols), generator=torch.Generator().manual_seed(9))
        g = torch.randn(T, n, cols, generator=torch.Generator().manual_seed(10))
        plan = build_plan(ei, n, et, rels, dtype=torch.float64)
        delay = delta.double().requires_grad_()
        hist = torch.zeros(n, cols, dtype=torch.uint8)
        traces, acc_a, acc_b = [], torch.zeros(n, cols), torch.zeros(n, cols)
        loss = 0.0
        for t in range(T):
            if t >= 1:
                window = spikes[:t][::-1][: K + 1]
                tr = traces[::-1][: K + 1]                 # a list, or stacked newest first
                tr = torch.stack(tr) if stacked else tr
                out = delayed_propagate(plan, hist, window, delta.to(torch.uint8), delay=delay,
                                        traces=tr)
                loss = loss + (g[t] * out).sum()
            tr, acc_a, acc_b = trace_step(spikes[t], acc_a, acc_b, TAU)
            traces.append(tr)
            hist = push_history(hist, spikes[t])
        (grad,) = torch.autograd.grad(loss, delay)

        s = torch.stack(spikes)                                    # [T, N, C]

        def smoothed(d):                                           # d: [R, C] float
            total = 0.0
            de = d[et]                                             # [E, C]
            for t in range(1, T):
                j = torch.arange(T).view(-1, 1, 1).double()
                arg = t - 1 - de.unsqueeze(0) - j                   # [T, E, C]
                psp = alpha_kernel(arg, TAU) * s[:, ei[0]]
                total = total + (g[t][ei[1]] * psp.sum(0)).sum()
            return total

        h = 1e-7
        base = delta.double()
        fd = torch.zeros(rels, cols)
        for r in range(rels):
            for k in range(cols):
                lower = base.clone()
                lower[r, k] -= h
                fd[r, k] = (smoothed(base) - smoothed(lower)) / h
        assert torch.allclose(grad, fd, atol=1e-5, rtol=1e-5)
        assert grad.abs().sum() > 0
    finally:
        torch.set_default_dtype(torch.float32)


def test_build_plan_groups_source_relation_pairs():
    ei = torch.tensor([[0, 0, 0, 1], [1, 2, 2, 2]])
    et = torch.tensor([0, 0, 1, 0])
    plan = build_plan(ei, 3, et, 2)
    assert plan.num_pairs == 3
    assert plan.in_degree.tolist() == [0.0, 1.0, 3.0]
    assert torch.equal(plan.src[plan.edge_pair], ei[0])
    assert torch.equal(plan.rel[plan.edge_pair], et)
    with pytest.raises(ValueError, match="edge_type"):
        build_plan(ei, 3, torch.tensor([0, 0, 2, 0]), 2)
    with pytest.raises(ValueError, match="nodes"):
        build_plan(ei, 2, et, 2)


def test_pna_aggregate_against_loop():
    torch.manual_seed(0)
    n, b, d = 4, 2, 3
    dst = torch.tensor([0, 0, 1, 1, 1, 3])
    msg = torch.randn(6, b * d)
    deg = torch.zeros(n).index_add_(0, dst, torch.ones(6))
    scales = pna_scales(deg)
    out = pna_aggregate(msg, dst, n, scales, d).view(n, b, 3, 4, d)
    for v in range(n):
        m = msg[dst == v].view(-1, b, d)
        if m.numel() == 0:
            assert torch.allclose(out[v, :, :, :3], torch.zeros(b, 3, 3, d))
            continue
        stats = torch.stack([m.mean(0), m.max(0).values, m.min(0).values,
                             m.var(0, unbiased=False).clamp(min=1e-6).sqrt()], dim=1)
        for i in range(3):
            assert torch.allclose(out[v, :, i], stats * scales[v, i], atol=1e-6)
    s = torch.log(deg + 1)
    assert torch.allclose(scales[:, 1], s / s.mean())


def test_pna_linear_equals_the_linear_layer_on_the_features():
    """Folding the degree scalers into the product gives the linear layer's output on
    the 12 D features, values and gradients (the features are never built)."""
    torch.manual_seed(1)
    n, b, d, d_out = 5, 3, 4, 6
    dst = torch.tensor([0, 0, 1, 1, 1, 3, 4, 4])
    msg = torch.randn(dst.numel(), b * d, requires_grad=True)
    deg = torch.bincount(dst, minlength=n).float()
    scales = pna_scales(deg)
    weight = torch.randn(d_out, 12 * d, requires_grad=True)
    bias = torch.randn(d_out, requires_grad=True)
    feats = pna_aggregate(msg, dst, n, scales, d)
    expected = torch.nn.functional.linear(feats.view(n, b, 12 * d), weight, bias)
    stats = pna_aggregate(msg, dst, n, None, d, scaled=False)
    assert stats.shape == (n, b * d * 4)
    out = pna_linear(stats, scales, weight, bias)
    assert out.shape == (n, b, d_out)
    assert torch.allclose(out, expected, atol=1e-5)
    up = torch.randn(n, b, d_out)
    grads = torch.autograd.grad((out * up).sum(), (msg, weight, bias))
    want = torch.autograd.grad((expected * up).sum(), (msg, weight, bias))
    for g, w in zip(grads, want):
        assert torch.allclose(g, w, atol=1e-4)
    # general scalers (the first one is not assumed to be 1)
    scales2 = torch.rand(n, 3) + 0.5
    feats2 = pna_aggregate(msg, dst, n, scales2, d)
    assert torch.allclose(pna_linear(stats, scales2, weight),
                          torch.nn.functional.linear(feats2.view(n, b, -1), weight), atol=1e-5)


def test_pna_max_tie_sends_the_gradient_to_the_smallest_key():
    """As torch_scatter's scatter_max in the reference code: one edge gets the gradient of
    a tied max (min), the one with the smallest ``order`` key."""
    msg = torch.tensor([[1.0], [1.0], [0.0]], requires_grad=True)
    dst = torch.tensor([0, 0, 0])
    for order, winner in ((None, 0), (torch.tensor([5, 2, 7]), 1)):
        out = pna_aggregate(msg, dst, 1, torch.ones(1, 3), 1, order=order).view(3, 4)
        grad, = torch.autograd.grad(out[0, 1], msg, retain_graph=True)   # the max
        expected = torch.zeros(3, 1)
        expected[winner] = 1.0
        assert torch.equal(grad, expected)
        grad, = torch.autograd.grad(out[0, 2], msg)       # the min: edge 2 alone
        assert grad.flatten().tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("reduce", ["amax", "amin"])
@pytest.mark.parametrize("weighted", [False, True])
def test_extreme_without_the_cpu_kernel_matches_it_ties_included(reduce, weighted):
    """The device-independent max / min (used off the CPU) gives the CPU sparse kernel's
    values and sends each gradient to the same entry: the first of the row that attains
    the extreme, also when many tie (binary spikes), and nothing from an empty row."""
    from grsnn.functional.aggregation import _extreme_dense, pna_extreme
    g = torch.Generator().manual_seed(7)
    rows, cols, nnz, width = 9, 30, 60, 5
    idx = torch.stack([torch.randint(0, rows - 2, (nnz,), generator=g),   # 2 empty rows
                       torch.randint(0, cols, (nnz,), generator=g)])
    val = (torch.rand(nnz, generator=g, dtype=torch.float64) + 0.5 if weighted
           else torch.ones(nnz, dtype=torch.float64))
    csr = torch.sparse_coo_tensor(idx, val, (rows, cols)).coalesce().to_sparse_csr()
    x = torch.randint(0, 2, (cols, width), generator=g).double() * torch.tensor(
        [1.0, -2.0, 3.0, 0.5, -1.0], dtype=torch.float64)          # binary spikes x weights
    grad = torch.randn(rows, width, generator=g, dtype=torch.float64)
    outs = []
    for fn in (pna_extreme, _extreme_dense):
        leaf = x.clone().requires_grad_()
        out = fn(csr, leaf, reduce)
        (gx,) = torch.autograd.grad((out * grad).sum(), leaf)
        outs.append((out.detach(), gx))
    (o0, g0), (o1, g1) = outs
    assert torch.equal(o0, o1) and torch.equal(g0, g1)
    assert o0[-2:].abs().sum() == 0                      # empty rows: 0
    dense = csr.to_dense()
    prod = dense.unsqueeze(-1) * x.unsqueeze(0)                        # [rows, cols, width]
    ties = ((prod == o0.unsqueeze(1)) & (dense != 0).unsqueeze(-1)).sum(1)
    assert (ties[:-2] > 1).any() and (ties[:-2] >= 1).all()  # ties exercised; extreme attained
