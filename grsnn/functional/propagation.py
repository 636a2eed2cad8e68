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
from typing import Optional, Sequence

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

__all__ = ["DelayPlan", "build_plan", "history_dtype", "push_history", "delayed_gather",
           "delayed_propagate", "active_pairs", "PROPAGATIONS", "AUTO_CROSSOVER"]


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


class _DelayedFn(torch.autograd.Function):
    """Delayed gather (``aggregate=False``) or gather + sum into destinations."""

    @staticmethod
    def forward(ctx, plan: DelayPlan, aggregate: bool, hist: Tensor, delta: Tensor,  # type: ignore[override]
                delay: Optional[Tensor], weight: Optional[Tensor],
                traces: Optional[Sequence[Tensor]], workspace: Optional[dict],
                compiled: bool, crossover: Optional[float], *frames: Tensor) -> Tensor:
        dtype = frames[0].dtype
        out = None
        if aggregate and crossover is not None:   # event-driven forward (push)
            stats = None if workspace is None else workspace.get("active_pairs")
            out = _push(plan, hist, delta, dtype, weight, compiled, crossover, stats)
        pushed = out is not None
        if out is None:
            workspace = workspace if aggregate else None   # a gathered output must be fresh
            msg = _messages(plan, hist, delta, dtype, workspace, weight, compiled)
            out = _spmm(plan.operators(dtype)[0], msg) if aggregate else msg
        ctx.plan, ctx.aggregate, ctx.num_frames = plan, aggregate, len(frames)
        ctx.event = pushed      # a step run dense forward runs the dense backward too
        # the trace frames are node-level tensors shared by K + 1 steps: keep references
        # (no copy, no gradient); a list is stacked only in backward
        ctx.traces = (None if traces is None else traces.detach() if isinstance(traces, Tensor)
                      else [tr.detach() for tr in traces])
        ctx.save_for_backward(hist, delta, delay, weight)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        plan: DelayPlan = ctx.plan
        hist, delta, delay, weight = ctx.saved_tensors
        traces = ctx.traces
        need_frames = ctx.needs_input_grad[10:]
        need_delay, need_weight = ctx.needs_input_grad[4], ctx.needs_input_grad[5]
        grad_out = grad_out.contiguous()
        dtype, cols, num_nodes = grad_out.dtype, grad_out.size(1), plan.num_nodes
        if ctx.aggregate:   # g = adj^T grad_out, computed chunk by chunk from row slices
            adj_t = plan.operators(dtype)[1]
            crow, col, val = adj_t.crow_indices(), adj_t.col_indices(), adj_t.values()
        grad_weight = (torch.zeros_like(weight) if weight is not None and need_weight
                       else None)
        grad_delay = torch.zeros_like(delay) if need_delay and traces is not None else None
        num_frames = ctx.num_frames
        # frame j of node u is row j * N + u of the stacked frames (newest first), so one
        # index ``delta * N + src`` per (pair, column) serves the scatter of the frame
        # gradients and the gather of the traces
        grad_stack = (grad_out.new_zeros(num_frames * num_nodes, cols) if any(need_frames)
                      else None)
        trace_rows = None
        if grad_delay is not None:
            stacked = traces if isinstance(traces, Tensor) else torch.stack(list(traces))
            trace_rows = stacked[:num_frames].reshape(num_frames * num_nodes, cols)
        late = num_frames <= int(delta.max())   # delays beyond the first step: no message
        # event-driven backward: the delay gradient of a pair is its trace times its
        # gradient, the weight gradient its message times its gradient; both are exactly
        # zero for the pairs whose source has no trace (never fired) / no message, which
        # are skipped (the frame gradients reach every pair: the surrogate is non-zero
        # for silent neurons too)
        traced = messaging = None
        if ctx.event and grad_delay is not None:
            traced = trace_rows.view(num_frames, num_nodes, cols).ne(0).any(2).any(0)
        if ctx.event and grad_weight is not None:
            messaging = active_pairs(plan, hist, delta)
        # pairs in chunks that stay in cache while they are scattered and gathered
        rows = max(1, _CHUNK_ELEMENTS // max(1, cols))
        for start in range(0, plan.num_pairs, rows):
            stop = min(start + rows, plan.num_pairs)
            if ctx.aggregate:
                lo, hi = int(crow[start]), int(crow[stop])
                sub = torch.sparse_csr_tensor(crow[start:stop + 1] - lo, col[lo:hi], val[lo:hi],
                                              (stop - start, num_nodes), check_invariants=False)
                gc = _spmm(sub, grad_out)
            else:
                gc = grad_out[start:stop]
            src, rel = plan.src[start:stop], plan.rel[start:stop]
            dp = delta.index_select(0, rel)
            if weight is not None:
                if grad_weight is not None:
                    _weight_grad(grad_weight, hist, src, rel, dp, gc,
                                 None if messaging is None else messaging[start:stop])
                gc = gc * weight.index_select(0, rel)
            index = dp.long()
            if late:
                gc = torch.where(index < num_frames, gc, 0.0)
                index.clamp_(max=num_frames - 1)
            index.mul_(num_nodes).add_(src.unsqueeze(1))
            if grad_stack is not None:
                grad_stack.scatter_add_(0, index, gc)
            if grad_delay is not None:
                if traced is not None:
                    keep = traced.index_select(0, src).nonzero().squeeze(1)
                    if keep.numel() < src.numel():
                        rel, index, gc = (rel.index_select(0, keep), index.index_select(0, keep),
                                          gc.index_select(0, keep))
                grad_delay.index_add_(0, rel, trace_rows.gather(0, index).mul_(gc))
        grad_frames = [None] * num_frames
        if grad_stack is not None:
            per_frame = grad_stack.view(num_frames, num_nodes, cols).unbind(0)
            grad_frames = [g if need else None for g, need in zip(per_frame, need_frames)]
        return (None, None, None, None, grad_delay, grad_weight, None, None, None, None,
                *grad_frames)


def _check(plan: DelayPlan, frames: Sequence[Tensor], delta: Tensor, delay_bound: int) -> None:
    if not frames:
        raise ValueError("need at least one past spike frame (t >= 1)")
    if len(frames) > delay_bound + 1:
        raise ValueError(f"got {len(frames)} frames but delays are at most {delay_bound}")
    if delta.size(0) != plan.num_relations:
        raise ValueError(f"delays have {delta.size(0)} relations, the graph {plan.num_relations}")


def delayed_gather(plan: DelayPlan, hist: Tensor, frames: Sequence[Tensor], delta: Tensor,
                   delay: Optional[Tensor] = None, weight: Optional[Tensor] = None,
                   traces: Optional[Sequence[Tensor]] = None, compiled: bool = False) -> Tensor:
    """Delayed spikes of every ``(source, relation)`` pair, ``[P, C]``.

    Args:
        plan: graph structure from :func:`build_plan`.
        hist: ``[N, C]`` integer bit history (bit ``j`` = ``s[t - 1 - j]``).
        frames: ``[s[t-1], s[t-2], ...]``, at most ``K + 1`` float frames ``[N, C]``
            (they receive the exact spike gradient; their values must match ``hist``).
        delta: ``[R, C]`` integer delays in ``{0..K}``.
        delay: ``[R, C]`` continuous delays that receive the trace-based gradient
            (``None``: no delay gradient).
        weight: ``[R, C]`` relation weights multiplying the messages (``None``: 1).
        traces: spike traces ``[tr[t-1], tr[t-2], ...]`` (``[N, C]`` each, or stacked
            newest first as ``[F, N, C]``, ``F >= len(frames)``), needed for the delay
            gradient.
        compiled: form the messages with one ``torch.compile`` kernel (same values).

    Example:
        >>> plan = build_plan(torch.tensor([[0], [1]]), 2)
        >>> hist = torch.tensor([[2], [0]], dtype=torch.uint8)   # node 0 fired at t-2
        >>> s1, s2 = torch.zeros(2, 1), torch.tensor([[1.], [0.]])
        >>> delayed_gather(plan, hist, [s1, s2], torch.tensor([[1]], dtype=torch.uint8))
        tensor([[1.]])
    """
    _check(plan, frames, delta, 30)
    return _DelayedFn.apply(plan, False, hist, delta, delay, weight, traces, None,
                            bool(compiled), None, *frames)


def delayed_propagate(plan: DelayPlan, hist: Tensor, frames: Sequence[Tensor], delta: Tensor,
                      delay: Optional[Tensor] = None, weight: Optional[Tensor] = None,
                      traces: Optional[Sequence[Tensor]] = None,
                      workspace: Optional[dict] = None, compiled: bool = False,
                      propagation: str = "dense") -> Tensor:
    """Sum of the delayed (and weighted) messages into every node, ``[N, C]``.

    ``A_v[t] = sum_{e=(u->v, rho)} w_e * omega_rho * s_u[t - 1 - delta_rho]``; same
    arguments as :func:`delayed_gather`, plus ``workspace``: a dict (the same one for all
    steps of a simulation) in which the pair-level temporaries are kept and reused (a
    list under its key ``"active_pairs"`` receives the share of active pairs of every
    event-driven step), ``compiled`` (see :func:`delayed_gather`) and ``propagation``:
    ``"dense"`` (every pair, the default), ``"event"`` (only the pairs with a spike in
    their delay window, :func:`active_pairs`) or ``"auto"`` (event-driven while at most
    :data:`AUTO_CROSSOVER` of the pairs are active, dense above). All three give the same
    values and gradients bit for bit. The backward of ``"event"`` / ``"auto"`` skips the
    pairs whose delay and weight gradients are exactly zero (sources without trace or
    message); the spike-frame gradients stay dense: the surrogate gradient reaches silent
    neurons too, so every pair carries one.
    Backward saves only node- and relation-level tensors.

    Example:
        >>> plan = build_plan(torch.tensor([[0, 0], [1, 2]]), 3)
        >>> hist = torch.tensor([[1], [0], [0]], dtype=torch.uint8)
        >>> s = hist.float()
        >>> delayed_propagate(plan, hist, [s], torch.zeros(1, 1, dtype=torch.uint8)).flatten()
        tensor([0., 1., 1.])
    """
    _check(plan, frames, delta, 30)
    if propagation not in PROPAGATIONS:
        raise ValueError(f"propagation must be one of {PROPAGATIONS}, got {propagation!r}")
    crossover = {"dense": None, "event": 1.0, "auto": AUTO_CROSSOVER}[propagation]
    return _DelayedFn.apply(plan, True, hist, delta, delay, weight, traces, workspace,
                            bool(compiled), crossover, *frames)
