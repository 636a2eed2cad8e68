r"""Delayed relational spike propagation with bounded integer delays.

A spike emitted by node ``u`` at step ``i`` travels along edge ``e = (u -> v, rho)``
and is seen by ``v`` as the message

.. math::
    m_e[t] = s_u[t - 1 - \delta_{\rho}], \qquad m_e[t] = 0 \text{ if } \delta_{\rho} \ge t,

with integer delays :math:`\delta = \mathrm{round}(d) \in \{0..K\}` per relation, query
and neuron (``delta`` has shape ``[num_relations, C]`` with ``C = B * D`` columns).

How it is made fast and lean (docs/method.md section 5):

* edges are grouped into unique ``(source, relation)`` *pairs*: every edge of a pair
  carries the same delayed spike, so the delay is applied ``P`` times (``P <= E``) and
  the pairs are summed into their destinations by one sparse product;
* the last ``K + 1`` spike frames of every neuron live as bits of one small integer
  (``hist``, bit ``j`` = ``s[t - 1 - j]``), so a delayed message is a shift and a mask:
  ``(hist[u] >> delta) & 1``; no full spike history, no per-edge int64 index tensor;
* delays and weights live at relation level ``[R, C]`` and are gathered once per step;
* the autograd function saves only node-level tensors (``hist``, the traces) and the
  relation-level delays; edge work is recomputed in backward;
* event-driven forward (``propagation="event"`` / ``"auto"``): a step whose spikes are
  few forms the messages of the *active* pairs only (those whose source has a spike in
  the delay window) and sums them with the rows of the pair operator restricted to those
  pairs (push); the other pairs' messages are exactly zero, and the restricted operator
  keeps every row's entries in their order, so the sums are the same bit for bit. Above
  the crossover (``"auto"``) the dense product runs (pull), chosen per step.

Backward: the gradient to each spike frame is exact (a delayed message *is* a spike);
the delay gradient is the trace formula of docs/method.md section 4 (straight through the
rounding):

.. math::
    \frac{\partial L}{\partial d_{\rho,k}} = \sum_t \sum_{e:\rho_e=\rho,\ \delta<t}
        g_e[t]\; tr_{u_e}[t - 1 - \delta_{\rho,k}].
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence, Union

import torch
from torch import Tensor

from .messages import _buffer as _buffer
from .messages import _messages as _messages
from .messages import _push as _push
from .messages import _raw_kernel as _raw_kernel
from .messages import _spmm as _spmm
from .messages import _weighted_kernel as _weighted_kernel
from .messages import active_pairs
from .plan import DelayPlan, build_plan, history_dtype, push_history
from .plan import _csr as _csr
from .plan import csr_tensor as csr_tensor

# pairs x columns handled at once in backward (a few MB: the chunk stays in cache)
_CHUNK_ELEMENTS = 1 << 19

# ``propagation="auto"``: push while at most this share of the pairs is active. Measured
# (benchmarks/firing_rate.py, docs/benchmarks.md, eager messages, one thread): the push
# forward beats the dense one up to ~98% active pairs on FB15k-237; 0.5 leaves a margin
# for the compiled dense messages (not measured against push yet)
AUTO_CROSSOVER = 0.5
PROPAGATIONS = ("dense", "event", "auto")

__all__ = ["DelayPlan", "SpikeWindow", "Synapses", "build_plan", "history_dtype",
           "push_history", "gather_spikes", "propagate_spikes", "delayed_gather",
           "delayed_propagate", "active_pairs", "PROPAGATIONS", "AUTO_CROSSOVER"]


class SpikeWindow(NamedTuple):
    """What propagation reads of the sending population at step ``t``: ``hist``, the
    ``[N, C]`` integer bit history (bit ``j`` = ``s[t - 1 - j]``); ``frames``,
    ``[s[t-1], s[t-2], ...]``, at most ``K + 1`` float frames ``[N, C]`` (they receive the
    exact spike gradient; their values must match ``hist``); ``traces``, the spike traces
    ``[tr[t-1], tr[t-2], ...]`` (``[N, C]`` each, or stacked newest first as
    ``[F, N, C]``, ``F >= len(frames)``), needed for the delay gradient (``None``: no
    delay gradient)."""

    hist: Tensor
    frames: Sequence[Tensor]
    traces: Optional[Union[Tensor, Sequence[Tensor]]] = None


class Synapses(NamedTuple):
    """Relation-level synapse parameters, ``[R, C]`` each: ``delta``, the integer delays
    in ``{0..K}``; ``delay``, the continuous delays that receive the trace-based gradient
    (``None``: no delay gradient); ``weight``, the relation weights multiplying the
    messages (``None``: 1)."""

    delta: Tensor
    delay: Optional[Tensor] = None
    weight: Optional[Tensor] = None


def _weight_grad(grad_weight: Tensor, hist: Tensor, src: Tensor, rel: Tensor, dp: Tensor,
                 gc: Tensor, active: Optional[Tensor]) -> None:
    """``grad_weight[rel] += gc * message`` over a chunk of pairs (with ``active``: only
    the pairs whose message is not all zero; the others add exactly nothing)."""
    if active is not None:
        keep = active.nonzero().squeeze(1)
        if keep.numel() < src.numel():
            src, rel, dp, gc = (src.index_select(0, keep), rel.index_select(0, keep),
                                dp.index_select(0, keep), gc.index_select(0, keep))
    raw = ((hist.index_select(0, src) >> dp) & 1).to(gc.dtype)
    grad_weight.index_add_(0, rel, gc * raw)


@dataclass
class _Call:
    """The non-tensor arguments of one :class:`_DelayedFn` call."""

    plan: DelayPlan
    aggregate: bool                    # sum into the destinations (else: pair messages)
    traces: Optional[Union[Tensor, Sequence[Tensor]]]
    workspace: Optional[dict]
    compiled: bool
    crossover: Optional[float]         # event-driven forward up to this share of pairs


@dataclass
class _Grads:
    """Accumulators of one backward of :class:`_DelayedFn`. Frame ``j`` of node ``u`` is
    row ``j * N + u`` of ``frames`` and ``trace_rows`` (newest first), so one index
    ``delta * N + src`` per (pair, column) serves the scatter of the frame gradients and
    the gather of the traces. ``traced`` (``[N]``) and ``messaging`` (``[P]``) mark, in an
    event-driven backward, the sources with a trace and the pairs with a message: the
    delay / weight gradients of the others are exactly zero and skipped (the frame
    gradients reach every pair: the surrogate is non-zero for silent neurons too)."""

    frames: Optional[Tensor]
    delay: Optional[Tensor]
    weight: Optional[Tensor]
    trace_rows: Optional[Tensor] = None
    traced: Optional[Tensor] = None
    messaging: Optional[Tensor] = None


def _start_grads(ctx, grad_out: Tensor, hist: Tensor, delta: Tensor, delay: Optional[Tensor],
                 weight: Optional[Tensor]) -> _Grads:
    plan: DelayPlan = ctx.call.plan
    num_frames, num_nodes, cols = ctx.num_frames, plan.num_nodes, grad_out.size(1)
    need_delay, need_weight = ctx.needs_input_grad[3], ctx.needs_input_grad[4]
    g = _Grads(grad_out.new_zeros(num_frames * num_nodes, cols)
               if any(ctx.needs_input_grad[5:]) else None,
               torch.zeros_like(delay) if need_delay and ctx.traces is not None else None,
               torch.zeros_like(weight) if weight is not None and need_weight else None)
    if g.delay is not None:
        traces = ctx.traces
        stacked = traces if isinstance(traces, Tensor) else torch.stack(list(traces))
        g.trace_rows = stacked[:num_frames].reshape(num_frames * num_nodes, cols)
        if ctx.event:
            g.traced = g.trace_rows.view(num_frames, num_nodes, cols).ne(0).any(2).any(0)
    if ctx.event and g.weight is not None:
        g.messaging = active_pairs(plan, hist, delta)
    return g


def _pair_grad_out(adj_t: Optional[Tensor], grad_out: Tensor, start: int, stop: int
                   ) -> Tensor:
    """Gradient of the pair messages ``start:stop``: ``adj^T grad_out`` from a row slice
    of ``adj_t`` (aggregated output) or the output rows themselves (gathered output)."""
    if adj_t is None:
        return grad_out[start:stop]
    crow, col, val = adj_t.crow_indices(), adj_t.col_indices(), adj_t.values()
    lo, hi = int(crow[start]), int(crow[stop])
    sub = torch.sparse_csr_tensor(crow[start:stop + 1] - lo, col[lo:hi], val[lo:hi],
                                  (stop - start, adj_t.size(1)), check_invariants=False)
    return _spmm(sub, grad_out)


def _chunk_backward(g: _Grads, plan: DelayPlan, hist: Tensor, delta: Tensor,
                    weight: Optional[Tensor], gc: Tensor, start: int, stop: int,
                    num_frames: int, late: bool) -> None:
    """Accumulate the frame, weight and delay gradients of the pairs ``start:stop``
    (``gc``: the gradient of their messages; ``late``: some delay reaches past the
    frames, whose messages are zero)."""
    src, rel = plan.src[start:stop], plan.rel[start:stop]
    dp = delta.index_select(0, rel)
    if weight is not None:
        if g.weight is not None:
            _weight_grad(g.weight, hist, src, rel, dp, gc,
                         None if g.messaging is None else g.messaging[start:stop])
        gc = gc * weight.index_select(0, rel)
    index = dp.long()
    if late:
        gc = torch.where(index < num_frames, gc, 0.0)
        index.clamp_(max=num_frames - 1)
    index.mul_(plan.num_nodes).add_(src.unsqueeze(1))
    if g.frames is not None:
        g.frames.scatter_add_(0, index, gc)
    if g.delay is not None:
        if g.traced is not None:
            keep = g.traced.index_select(0, src).nonzero().squeeze(1)
            if keep.numel() < src.numel():
                rel, index, gc = (rel.index_select(0, keep), index.index_select(0, keep),
                                  gc.index_select(0, keep))
        g.delay.index_add_(0, rel, g.trace_rows.gather(0, index).mul_(gc))


class _DelayedFn(torch.autograd.Function):
    """Delayed gather (``call.aggregate=False``) or gather + sum into destinations."""

    @staticmethod
    def forward(ctx, call: _Call, hist: Tensor, delta: Tensor,  # type: ignore[override]
                delay: Optional[Tensor], weight: Optional[Tensor], *frames: Tensor) -> Tensor:
        plan, dtype = call.plan, frames[0].dtype
        out = None
        if call.aggregate and call.crossover is not None:   # event-driven forward (push)
            stats = None if call.workspace is None else call.workspace.get("active_pairs")
            out = _push(plan, hist, delta, dtype, weight, call.compiled, call.crossover, stats)
        ctx.event = out is not None   # a step run dense forward runs the dense backward too
        if out is None:
            # a gathered output must be fresh: no workspace buffers
            workspace = call.workspace if call.aggregate else None
            msg = _messages(plan, hist, delta, dtype, workspace, weight, call.compiled)
            out = _spmm(plan.operators(dtype)[0], msg) if call.aggregate else msg
        ctx.call, ctx.num_frames = call, len(frames)
        # the trace frames are node-level tensors shared by K + 1 steps: keep references
        # (no copy, no gradient); a list is stacked only in backward
        traces = call.traces
        ctx.traces = (None if traces is None else traces.detach() if isinstance(traces, Tensor)
                      else [tr.detach() for tr in traces])
        ctx.save_for_backward(hist, delta, delay, weight)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        call: _Call = ctx.call
        plan = call.plan
        hist, delta, delay, weight = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        g = _start_grads(ctx, grad_out, hist, delta, delay, weight)
        adj_t = plan.operators(grad_out.dtype)[1] if call.aggregate else None
        # pairs in chunks that stay in cache while they are scattered and gathered
        cols = grad_out.size(1)
        rows = max(1, _CHUNK_ELEMENTS // max(1, cols))
        late = ctx.num_frames <= int(delta.max())   # delays beyond the first step
        for start in range(0, plan.num_pairs, rows):
            stop = min(start + rows, plan.num_pairs)
            _chunk_backward(g, plan, hist, delta, weight,
                            _pair_grad_out(adj_t, grad_out, start, stop), start, stop,
                            ctx.num_frames, late)
        grad_frames = [None] * ctx.num_frames
        if g.frames is not None:
            per_frame = g.frames.view(ctx.num_frames, plan.num_nodes, cols).unbind(0)
            grad_frames = [gf if need else None
                           for gf, need in zip(per_frame, ctx.needs_input_grad[5:])]
        return (None, None, None, g.delay, g.weight, *grad_frames)


def _check(plan: DelayPlan, frames: Sequence[Tensor], delta: Tensor, delay_bound: int) -> None:
    if not frames:
        raise ValueError("need at least one past spike frame (t >= 1)")
    if len(frames) > delay_bound + 1:
        raise ValueError(f"got {len(frames)} frames but delays are at most {delay_bound}")
    if delta.size(0) != plan.num_relations:
        raise ValueError(f"delays have {delta.size(0)} relations, the graph {plan.num_relations}")


def gather_spikes(plan: DelayPlan, window: SpikeWindow, synapses: Synapses,
                  compiled: bool = False) -> Tensor:
    """Delayed spikes of every ``(source, relation)`` pair, ``[P, C]``, times the relation
    weights if given: ``m_p[t] = omega_rho * s_u[t - 1 - delta_rho]``.

    Args:
        plan: graph structure from :func:`build_plan`.
        window: the sender's bit history, last spike frames and traces.
        synapses: the integer delays, continuous delays and relation weights.
        compiled: form the messages with one ``torch.compile`` kernel (same values).

    Example:
        >>> plan = build_plan(torch.tensor([[0], [1]]), 2)
        >>> hist = torch.tensor([[2], [0]], dtype=torch.uint8)   # node 0 fired at t-2
        >>> window = SpikeWindow(hist, [torch.zeros(2, 1), torch.tensor([[1.], [0.]])])
        >>> gather_spikes(plan, window, Synapses(torch.tensor([[1]], dtype=torch.uint8)))
        tensor([[1.]])
    """
    _check(plan, window.frames, synapses.delta, 30)
    call = _Call(plan, False, window.traces, None, bool(compiled), None)
    return _DelayedFn.apply(call, window.hist, *synapses, *window.frames)


def propagate_spikes(plan: DelayPlan, window: SpikeWindow, synapses: Synapses,
                     workspace: Optional[dict] = None, compiled: bool = False,
                     propagation: str = "dense") -> Tensor:
    """Sum of the delayed (and weighted) messages into every node, ``[N, C]``:
    ``A_v[t] = sum_{e=(u->v, rho)} w_e * omega_rho * s_u[t - 1 - delta_rho]``.

    Args:
        plan, window, synapses, compiled: as in :func:`gather_spikes`.
        workspace: a dict (the same one for all steps of a simulation) in which the
            pair-level temporaries are kept and reused (a list under its key
            ``"active_pairs"`` receives the share of active pairs of every event-driven
            step).
        propagation: ``"dense"`` (every pair, the default), ``"event"`` (only the pairs
            with a spike in their delay window, :func:`active_pairs`) or ``"auto"``
            (event-driven while at most :data:`AUTO_CROSSOVER` of the pairs are active,
            dense above). All three give the same values and gradients bit for bit.

    The backward of ``"event"`` / ``"auto"`` skips the pairs whose delay and weight
    gradients are exactly zero (sources without trace or message); the spike-frame
    gradients stay dense: the surrogate gradient reaches silent neurons too, so every pair
    carries one. Backward saves only node- and relation-level tensors.

    Example:
        >>> plan = build_plan(torch.tensor([[0, 0], [1, 2]]), 3)
        >>> hist = torch.tensor([[1], [0], [0]], dtype=torch.uint8)
        >>> window = SpikeWindow(hist, [hist.float()])
        >>> delta = torch.zeros(1, 1, dtype=torch.uint8)
        >>> propagate_spikes(plan, window, Synapses(delta), propagation="event").flatten()
        tensor([0., 1., 1.])
    """
    _check(plan, window.frames, synapses.delta, 30)
    if propagation not in PROPAGATIONS:
        raise ValueError(f"propagation must be one of {PROPAGATIONS}, got {propagation!r}")
    crossover = {"dense": None, "event": 1.0, "auto": AUTO_CROSSOVER}[propagation]
    call = _Call(plan, True, window.traces, workspace, bool(compiled), crossover)
    return _DelayedFn.apply(call, window.hist, *synapses, *window.frames)


def delayed_gather(plan: DelayPlan, hist: Tensor, frames: Sequence[Tensor], delta: Tensor,
                   delay: Optional[Tensor] = None, weight: Optional[Tensor] = None,
                   traces: Optional[Sequence[Tensor]] = None, compiled: bool = False) -> Tensor:
    """:func:`gather_spikes` with the window and synapses as separate arguments
    (``hist``, ``frames``, ``traces`` as in :class:`SpikeWindow`; ``delta``, ``delay``,
    ``weight`` as in :class:`Synapses`).

    Example:
        >>> plan = build_plan(torch.tensor([[0], [1]]), 2)
        >>> hist = torch.tensor([[2], [0]], dtype=torch.uint8)   # node 0 fired at t-2
        >>> s1, s2 = torch.zeros(2, 1), torch.tensor([[1.], [0.]])
        >>> delayed_gather(plan, hist, [s1, s2], torch.tensor([[1]], dtype=torch.uint8))
        tensor([[1.]])
    """
    return gather_spikes(plan, SpikeWindow(hist, frames, traces), Synapses(delta, delay, weight),
                         compiled)


def delayed_propagate(plan: DelayPlan, hist: Tensor, frames: Sequence[Tensor], delta: Tensor,
                      delay: Optional[Tensor] = None, weight: Optional[Tensor] = None,
                      traces: Optional[Sequence[Tensor]] = None,
                      workspace: Optional[dict] = None, compiled: bool = False,
                      propagation: str = "dense") -> Tensor:
    """:func:`propagate_spikes` with the window and synapses as separate arguments
    (``hist``, ``frames``, ``traces`` as in :class:`SpikeWindow`; ``delta``, ``delay``,
    ``weight`` as in :class:`Synapses`).

    Example:
        >>> plan = build_plan(torch.tensor([[0, 0], [1, 2]]), 3)
        >>> hist = torch.tensor([[1], [0], [0]], dtype=torch.uint8)
        >>> s = hist.float()
        >>> delayed_propagate(plan, hist, [s], torch.zeros(1, 1, dtype=torch.uint8)).flatten()
        tensor([0., 1., 1.])
    """
    return propagate_spikes(plan, SpikeWindow(hist, frames, traces),
                            Synapses(delta, delay, weight), workspace, compiled, propagation)
