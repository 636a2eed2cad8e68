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

import warnings
from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence, Union

import torch
from torch import Tensor

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


@dataclass
class DelayPlan:
    """Precomputed graph structure for delayed propagation (built once per graph).

    Attributes:
        num_nodes: ``N``.
        num_relations: ``R`` (edge types, inverses included).
        src: ``[P]`` source node of every ``(source, relation)`` pair (sorted).
        rel: ``[P]`` relation of every pair.
        edge_pair: ``[E]`` pair of every edge.
        dst: ``[E]`` destination of every edge.
        adj: sparse CSR ``[N, P]``: ``adj[v, p]`` = summed weight of the edges of pair
            ``p`` into ``v``.
        adj_t: sparse CSR ``[P, N]``, the transpose of ``adj``.
        in_degree: ``[N]`` number of incoming edges (float).
    """

    num_nodes: int
    num_relations: int
    src: Tensor
    rel: Tensor
    edge_pair: Tensor
    dst: Tensor
    adj: Tensor
    adj_t: Tensor
    in_degree: Tensor
    weighted: bool = False

    @property
    def num_pairs(self) -> int:
        return int(self.src.numel())

    def operators(self, dtype: torch.dtype) -> tuple:
        """``(adj, adj_t)`` in ``dtype`` (converted once, then kept)."""
        if self.adj.dtype != dtype:
            self.adj, self.adj_t = self.adj.to(dtype), self.adj_t.to(dtype)
        return self.adj, self.adj_t

    def extreme_operators(self, dtype: torch.dtype) -> Optional[tuple]:
        """``(adj_sq, adj_ext)``: the pair-level operators that make edge-level statistics
        exact from pair messages (every edge of a pair carries the same message ``m``).

        ``adj_sq[v, p]`` sums the squared edge weights (``sum_e (w_e m)^2 = adj_sq m^2``);
        ``adj_ext[v, p]`` is the weight of *one* edge, so that a max / min reduction of
        ``adj_ext[v, p] * m_p`` over the pairs is the max / min over the edges. Without
        edge weights ``adj_ext`` is the pattern of ``adj`` with ones; with edge weights it
        is ``adj`` itself when no two edges share ``(source, relation, destination)``, and
        ``None`` otherwise (the caller falls back to edge-level messages).
        """
        key = ("extreme", dtype)
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            adj = self.operators(dtype)[0]
            crow, col, val = adj.crow_indices(), adj.col_indices(), adj.values()

            if not self.weighted:
                cache[key] = (adj, csr_tensor(crow, col, torch.ones_like(val), adj.shape))
            elif val.numel() == self.dst.numel():   # no duplicate edges: one weight each
                cache[key] = (csr_tensor(crow, col, val * val, adj.shape), adj)
            else:
                cache[key] = None
        return cache[key]


def csr_tensor(crow: Tensor, col: Tensor, values: Tensor, shape: tuple) -> Tensor:
    """A sparse CSR tensor from its parts, without the "CSR support is in beta" warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


def _csr(row: Tensor, col: Tensor, val: Tensor, shape: tuple) -> Tensor:
    coo = torch.sparse_coo_tensor(torch.stack([row, col]), val, shape,
                                  check_invariants=False).coalesce()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": it is what we use
        warnings.simplefilter("ignore", UserWarning)
        return coo.to_sparse_csr()


def build_plan(edge_index: Tensor, num_nodes: int, edge_type: Optional[Tensor] = None,
               num_relations: int = 1, edge_weight: Optional[Tensor] = None,
               group: bool = True, dtype: torch.dtype = torch.float32) -> DelayPlan:
    """Group the edges into ``(source, relation)`` pairs and build the sparse operators.

    Args:
        edge_index: ``[2, E]`` long, messages flow ``edge_index[0] -> edge_index[1]``.
        num_nodes: number of nodes ``N``.
        edge_type: ``[E]`` long in ``[0, num_relations)``; ``None`` means one relation.
        num_relations: number of edge types ``R``.
        edge_weight: optional ``[E]`` multiplicative edge weights (default 1).
        group: merge the edges that share ``(source, relation)`` (``False``: one pair
            per edge, the plain per-edge formulation).
        dtype: floating dtype of the sparse operators.

    Example:
        >>> ei = torch.tensor([[0, 0, 1], [1, 2, 2]])
        >>> plan = build_plan(ei, 3, torch.tensor([0, 0, 1]), num_relations=2)
        >>> plan.num_pairs  # (0, rel 0) feeds nodes 1 and 2; (1, rel 1) feeds node 2
        2
    """
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {list(edge_index.shape)}")
    device = edge_index.device
    src_e, dst_e = edge_index[0].long(), edge_index[1].long()
    num_edges = src_e.numel()
    if edge_type is None:
        edge_type = torch.zeros(num_edges, dtype=torch.long, device=device)
    edge_type = edge_type.long()
    if num_edges and (int(edge_type.min()) < 0 or int(edge_type.max()) >= num_relations):
        raise ValueError(f"edge_type must lie in [0, {num_relations}), got "
                         f"[{int(edge_type.min())}, {int(edge_type.max())}]")
    if num_edges and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"edge_index refers to node {int(edge_index.max())} but the graph "
                         f"has {num_nodes} nodes")
    if group:
        key = src_e * num_relations + edge_type
        uniq, edge_pair = torch.unique(key, return_inverse=True)
        src, rel = uniq // num_relations, uniq % num_relations
    else:
        edge_pair = torch.arange(num_edges, device=device)
        src, rel = src_e, edge_type
    num_pairs = src.numel()
    weight = (torch.ones(num_edges, dtype=dtype, device=device) if edge_weight is None
              else edge_weight.detach().to(dtype))
    adj = _csr(dst_e, edge_pair, weight, (num_nodes, num_pairs))
    adj_t = _csr(edge_pair, dst_e, weight, (num_pairs, num_nodes))
    in_degree = torch.zeros(num_nodes, dtype=dtype, device=device).index_add_(
        0, dst_e, torch.ones(num_edges, dtype=dtype, device=device))
    return DelayPlan(num_nodes, num_relations, src, rel, edge_pair, dst_e, adj, adj_t,
                     in_degree, weighted=edge_weight is not None)


def history_dtype(delay_bound: int) -> torch.dtype:
    """Smallest integer dtype whose bits hold ``delay_bound + 1`` spike frames.

    Example:
        >>> history_dtype(4)
        torch.uint8
    """
    if delay_bound < 0:
        raise ValueError(f"delay_bound must be >= 0, got {delay_bound}")
    if delay_bound <= 7:
        return torch.uint8
    if delay_bound <= 14:
        return torch.int16
    if delay_bound <= 30:
        return torch.int32
    raise ValueError(f"delay_bound must be <= 30, got {delay_bound}")


def push_history(hist: Tensor, spikes: Tensor) -> Tensor:
    """Shift a new spike frame into the bit history (bit 0 = newest frame).

    Example:
        >>> h = torch.zeros(2, dtype=torch.uint8)
        >>> h = push_history(push_history(h, torch.tensor([1., 0.])), torch.tensor([0., 1.]))
        >>> h  # node 0 fired one step ago, node 1 fired now
        tensor([2, 1], dtype=torch.uint8)
    """
    return (hist << 1) | spikes.detach().to(hist.dtype)


def _spmm(csr: Tensor, dense: Tensor) -> Tensor:
    """CSR times dense; the ``reduce="sum"`` kernel is the parallel one on CPU."""
    if csr.device.type == "cpu":
        return torch.sparse.mm(csr, dense, "sum")
    return torch.sparse.mm(csr, dense)


def _buffer(workspace: dict, name: str, shape: tuple, dtype: torch.dtype,
            device: torch.device) -> Tensor:
    buf = workspace.get(name)
    if buf is None or tuple(buf.shape) != shape or buf.dtype != dtype:
        buf = workspace[name] = torch.empty(shape, dtype=dtype, device=device)
    return buf


def _raw_kernel(hist: Tensor, src: Tensor, delta: Tensor, rel: Tensor, dtype: torch.dtype
                ) -> Tensor:
    return ((hist[src] >> delta[rel]) & 1).to(dtype)


def _weighted_kernel(hist: Tensor, src: Tensor, delta: Tensor, rel: Tensor, weight: Tensor
                     ) -> Tensor:
    return ((hist[src] >> delta[rel]) & 1).to(weight.dtype) * weight[rel]


def _messages(plan: DelayPlan, hist: Tensor, delta: Tensor, dtype: torch.dtype,
              workspace: Optional[dict] = None, weight: Optional[Tensor] = None,
              compiled: bool = False) -> Tensor:
    """Delayed spikes of every pair, times the pair's relation weight if given, ``[P, C]``
    in ``dtype``.

    ``compiled``: one ``torch.compile`` pass reads each pair's history bits, delay and
    weight and writes the message (5-6x faster than the eager gathers, shifts and
    products on FB15k-237 at one thread; bit-identical). Otherwise, with a ``workspace``
    dict the pair-level temporaries live in buffers reused from step to step (no
    allocation churn); the result is then one of those buffers.
    """
    if compiled:
        from .neuron import _KERNELS
        if weight is None:
            return _KERNELS(_raw_kernel, hist, plan.src, delta, plan.rel, dtype)
        return _KERNELS(_weighted_kernel, hist, plan.src, delta, plan.rel, weight.to(dtype))
    if workspace is None:
        dp = delta.index_select(0, plan.rel)
        msg = ((hist.index_select(0, plan.src) >> dp) & 1).to(dtype)
        return msg if weight is None else msg * weight.index_select(0, plan.rel)
    shape, dev = (plan.num_pairs, hist.size(1)), hist.device
    bits = torch.index_select(hist, 0, plan.src,
                              out=_buffer(workspace, "bits", shape, hist.dtype, dev))
    dp = torch.index_select(delta, 0, plan.rel,
                            out=_buffer(workspace, "dp", shape, delta.dtype, dev))
    bits.bitwise_right_shift_(dp).bitwise_and_(1)
    msg = _buffer(workspace, "msg", shape, dtype, dev).copy_(bits)
    if weight is not None:
        msg.mul_(torch.index_select(weight, 0, plan.rel, out=_buffer(
            workspace, "weight", shape, weight.dtype, dev)))
    return msg


def active_pairs(plan: DelayPlan, hist: Tensor, delta: Tensor) -> Tensor:
    """``[P]`` bool: the pairs whose source has a spike in the delay window, i.e. in a
    frame ``s[t - 1 - j]`` with ``delta.min() <= j <= delta.max()``, in any column. Every
    other pair's message is exactly zero in every column (node-level test: ``N x C``
    bytes read, no pair-level work).

    Example:
        >>> plan = build_plan(torch.tensor([[0, 1], [1, 0]]), 2)
        >>> hist = torch.tensor([[1], [0]], dtype=torch.uint8)   # node 0 fired at t - 1
        >>> active_pairs(plan, hist, torch.zeros(1, 1, dtype=torch.uint8)).tolist()
        [True, False]
    """
    lo, hi = int(delta.min()), int(delta.max())
    window = ((1 << (hi + 1)) - 1) ^ ((1 << lo) - 1)
    active_node = (hist & window).ne(0).any(1)
    return active_node.index_select(0, plan.src)


def _push(plan: DelayPlan, hist: Tensor, delta: Tensor, dtype: torch.dtype,
          weight: Optional[Tensor], compiled: bool, crossover: float,
          stats: Optional[list]) -> Optional[Tensor]:
    """Event-driven ``adj @ messages``: only the active pairs' messages are formed, and
    they are summed with the entries of ``adj`` whose pair is active, kept in storage
    order (so every row sums the same non-zero terms in the same order as the dense
    product: identical values). ``None`` when more than ``crossover`` of the pairs are
    active (the caller runs the dense product)."""
    active = active_pairs(plan, hist, delta)
    pairs = active.nonzero().squeeze(1)
    num_active = pairs.numel()
    if stats is not None:
        stats.append(num_active / max(1, plan.num_pairs))
    if num_active > crossover * plan.num_pairs:
        return None
    cols = hist.size(1)
    if num_active == 0:
        return torch.zeros(plan.num_nodes, cols, dtype=dtype, device=hist.device)
    adj = plan.operators(dtype)[0]
    crow, col, val = adj.crow_indices(), adj.col_indices(), adj.values()
    keep = active.index_select(0, col)
    kept = keep.nonzero().squeeze(1)
    count = torch.zeros(col.numel() + 1, dtype=crow.dtype, device=crow.device)
    torch.cumsum(keep, 0, out=count[1:])
    compact = torch.cumsum(active, 0).sub_(1)             # pair -> its index among active
    sub = csr_tensor(count.index_select(0, crow), compact.index_select(0, col.index_select(
        0, kept)), val.index_select(0, kept), (plan.num_nodes, num_active))
    src, rel = plan.src.index_select(0, pairs), plan.rel.index_select(0, pairs)
    if compiled:
        from .neuron import _KERNELS
        msg = (_KERNELS(_raw_kernel, hist, src, delta, rel, dtype) if weight is None else
               _KERNELS(_weighted_kernel, hist, src, delta, rel, weight.to(dtype)))
    else:
        msg = ((hist.index_select(0, src) >> delta.index_select(0, rel)) & 1).to(dtype)
        if weight is not None:
            msg = msg * weight.index_select(0, rel)
    return _spmm(sub, msg)


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
