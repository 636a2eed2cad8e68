"""The engine's named-state entry points (``neuron_init`` / ``neuron_step`` on a
``NeuronState``, ``propagate_spikes`` / ``gather_spikes`` on a ``SpikeWindow`` and
``Synapses``) against the positional functions they wrap."""
import pytest
import torch

from grsnn.functional import (LIFParameters, LIFState, NeuronState, Sigmoid, SpikeWindow,
                              Synapses, TraceState, build_plan, delayed_gather,
                              delayed_propagate, gather_spikes, lif_init, lif_step,
                              neuron_init, neuron_step, propagate_spikes, push_history,
                              trace_step)

P = LIFParameters(4.0, 1.0, Sigmoid())


@pytest.mark.parametrize("fused", [False, True])
def test_neuron_steps_match_the_separate_functions(fused):
    g = torch.Generator().manual_seed(0)
    beta = (torch.rand(20, 6, generator=g, dtype=torch.float64) * 2).requires_grad_()
    currents = [torch.randn(20, 6, generator=g, dtype=torch.float64) for _ in range(4)]
    s, state = neuron_init(beta, P, trace=True)
    s0, c, u = lif_init(beta, P.v_threshold, P.surrogate)
    zero = torch.zeros_like(beta)
    tr, a, b = trace_step(s0.detach(), zero, zero, P.tau)
    hist = push_history(torch.zeros(20, 6, dtype=torch.uint8), s0)
    assert torch.equal(s, s0) and torch.equal(state.hist, hist)
    assert torch.equal(state.trace.frame, tr)
    for cur in currents:
        s, state = neuron_step(cur, state, beta, P, fused=fused, compiled=False)
        s_ref, c, u = lif_step(cur, c, u, beta, P.tau, P.v_threshold, P.surrogate)
        hist = push_history(hist, s_ref)
        tr, a, b = trace_step(s_ref.detach(), a, b, P.tau)
        assert torch.equal(s, s_ref) and torch.equal(state.hist, hist)
        assert torch.allclose(state.lif.c, c, atol=1e-12)
        assert torch.allclose(state.lif.u, u, atol=1e-12)
        assert torch.allclose(state.trace.frame, tr, atol=1e-12)
        assert not state.trace.frame.requires_grad
    assert s.sum() > 0
    (g_new,) = torch.autograd.grad(state.lif.u.sum() + s.sum(), beta)
    (g_ref,) = torch.autograd.grad(u.sum() + s_ref.sum(), beta)
    assert torch.allclose(g_new, g_ref, atol=1e-12)


def test_neuron_step_without_trace_keeps_none():
    z = torch.zeros(3)
    state = NeuronState(LIFState(z, z), torch.zeros(3, dtype=torch.uint8))
    _, state = neuron_step(torch.ones(3), state, z, P)
    assert state.trace is None and isinstance(state.lif, LIFState)
    assert TraceState(z, z).frame is None


@pytest.mark.parametrize("propagation", ["dense", "event"])
def test_propagate_spikes_is_delayed_propagate(propagation):
    g = torch.Generator().manual_seed(1)
    n, rels, cols = 15, 3, 4
    ei = torch.randint(0, n, (2, 50), generator=g)
    plan = build_plan(ei, n, torch.randint(0, rels, (50,), generator=g), rels,
                      dtype=torch.float64)
    frames = [(torch.rand(n, cols, generator=g, dtype=torch.float64) < 0.3).double()
              .requires_grad_() for _ in range(3)]
    hist = torch.zeros(n, cols, dtype=torch.uint8)
    for f in reversed(frames):
        hist = push_history(hist, f)
    delta = torch.randint(0, 3, (rels, cols), generator=g).to(torch.uint8)
    weight = torch.randn(rels, cols, generator=g, dtype=torch.float64, requires_grad=True)
    window, syn = SpikeWindow(hist, frames), Synapses(delta, weight=weight)
    got = propagate_spikes(plan, window, syn, propagation=propagation)
    want = delayed_propagate(plan, hist, frames, delta, weight=weight)
    assert torch.equal(got, want)
    grads = torch.autograd.grad(got.square().sum(), frames + [weight])
    refs = torch.autograd.grad(want.square().sum(), frames + [weight])
    assert all(torch.equal(a, b) for a, b in zip(grads, refs))
    assert torch.equal(gather_spikes(plan, window, syn), delayed_gather(plan, hist, frames,
                                                                          delta, weight=weight))
