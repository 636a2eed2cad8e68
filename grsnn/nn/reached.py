"""Query-sized inference: the query-driven circuit (``drive="reached"``) of one query, run
on the nodes its wave has reached only.

With ``drive="reached"`` a node the input has not reached has no input current, no bias,
no spike and exactly zero state (docs/method.md section 11), so it needs no memory and no
work. :func:`simulate_reached` keeps the neuron state, the bit history and the spike
frames of the reached nodes only, in the order they were reached (the rows of frame ``t``
are the first rows of the final ``ids``), and grows them with the wave; per step it reads
the pairs of the sources with a spike in the delay window (``plan.src`` is sorted, so a
node's pairs are one range found by binary search) and the edges of those pairs (rows of
``plan.adj_t``). Nothing of size ``N`` is allocated besides the graph itself.

Spikes are those of :meth:`~grsnn.nn.SpikingDelayConv.simulate` (the sums into a node are
taken in edge order rather than in the sparse product's order, so potentials agree to the
last bits in double precision, tested).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from ..functional import DelayPlan, LIFState, NeuronState, history_dtype, neuron_init, neuron_step
from ..functional.messages import active_sources
from .conv import SpikingDelayConv

__all__ = ["simulate_reached", "reached_scores", "supports_reached"]


def _ranges(start: Tensor, count: Tensor) -> Tensor:
    """``cat([arange(s, s + c) for s, c in zip(start, count)])``."""
    offsets = torch.cumsum(count, 0) - count
    total = int(count.sum())
    return (torch.repeat_interleave(start - offsets, count)
            + torch.arange(total, device=start.device))


def supports_reached(conv: SpikingDelayConv) -> bool:
    """Whether unreached nodes of ``conv``'s circuit carry no state, so that
    :func:`simulate_reached` applies: ``drive="reached"``, sum aggregation, no LayerNorm,
    the grouped plan (``fused``; and no explanation hooks)."""
    return _at_rest_unreached(conv) and not conv.explain


def _at_rest_unreached(conv: SpikingDelayConv) -> bool:
    # the search for a node's pairs needs the grouped plan (pairs sorted by source)
    return (conv.drive == "reached" and conv.aggregate_fn == "sum" and conv.norm is None
            and conv.fused)


def _check(conv: SpikingDelayConv) -> None:
    if not _at_rest_unreached(conv):
        raise ValueError("simulate_reached needs drive='reached', sum aggregation, no "
                         "LayerNorm (otherwise unreached nodes carry state) and fused=True")
    if torch.is_grad_enabled():
        raise RuntimeError("simulate_reached is for inference: run it under torch.no_grad()")


def _arrivals(plan: DelayPlan, ids: Tensor, hist: Tensor, delta: Tensor,
              weight: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """The nodes a message arrives at this step (global ids) and their summed input."""
    dtype = plan.adj_t.dtype
    rows = active_sources(hist, delta).nonzero().squeeze(1)
    first = torch.searchsorted(plan.src, ids[rows])
    count = torch.searchsorted(plan.src, ids[rows], right=True) - first
    pairs = _ranges(first, count)
    rel = plan.rel[pairs]
    msg = ((hist[torch.repeat_interleave(rows, count)] >> delta[rel]) & 1).to(dtype)
    if weight is not None:
        msg = msg * weight[rel]
    crow, col, val = plan.adj_t.crow_indices(), plan.adj_t.col_indices(), plan.adj_t.values()
    estart = crow[pairs]
    ecount = crow[pairs + 1] - estart
    edges = _ranges(estart, ecount)
    dst, inv = torch.unique(col[edges], return_inverse=True)
    pair_of_edge = torch.repeat_interleave(torch.arange(pairs.numel(), device=pairs.device),
                                           ecount)
    agg = msg.new_zeros(dst.numel(), msg.size(1)).index_add_(
        0, inv, msg[pair_of_edge] * val[edges].unsqueeze(1))
    arrived = agg.ne(0).any(1)
    return dst[arrived], agg[arrived]


def _grow(ids: Tensor, dst: Tensor, agg: Tensor, state: NeuronState, beta: Tensor
          ) -> Tuple[Tensor, Tensor, NeuronState, Tensor]:
    """Append the newly reached nodes (zero state) and place ``agg`` on the rows."""
    if ids.numel():
        order = ids.argsort()
        pos = torch.searchsorted(ids[order], dst).clamp_(max=ids.numel() - 1)
        known = ids[order][pos].eq(dst)
    else:
        order = pos = torch.zeros_like(dst)
        known = torch.zeros_like(dst, dtype=torch.bool)
    new = dst[~known]
    if new.numel():
        pad = beta.new_zeros(new.numel(), beta.size(1))
        c, u = state.lif
        state = NeuronState(LIFState(torch.cat([c, pad]), torch.cat([u, pad])),
                            torch.cat([state.hist, state.hist.new_zeros(pad.shape)]), None)
        beta = torch.cat([beta, pad])
        ids = torch.cat([ids, new])
    rows = torch.empty_like(dst)
    rows[known] = order[pos[known]]
    rows[~known] = torch.arange(ids.numel() - new.numel(), ids.numel(), device=ids.device)
    full = beta.new_zeros(ids.numel(), beta.size(1)).index_copy_(0, rows, agg)
    return ids, full, state, beta


def simulate_reached(conv: SpikingDelayConv, ids: Tensor, beta: Tensor, plan: DelayPlan,
                     delay_logits: Optional[Tensor] = None,
                     relation_weights: Optional[Tensor] = None, return_state: bool = False,
                     max_nodes: Optional[int] = None):
    """One query's circuit on the reached nodes only.

    Args:
        conv: a layer with ``drive="reached"``, sum aggregation, no LayerNorm.
        ids: ``[M]`` the nodes with input current (distinct).
        beta: ``[M, D]`` their input current (other nodes: zero).
        plan: the graph (:meth:`SpikingDelayConv.build_plan`, grouped).
        delay_logits, relation_weights: ``[R, D]`` for this query, as in
            :meth:`SpikingDelayConv.forward`.
        return_state: also return the final :class:`LIFState` of the reached nodes.
        max_nodes: stop and return ``None`` as soon as more nodes than this are reached.

    Returns:
        ``(ids, frames)``: the reached nodes in the order reached, and ``T`` spike frames;
        frame ``t`` has one row per node reached by step ``t`` (the first rows of ``ids``).
        ``(ids, frames, lif)`` with ``return_state``.
    """
    _check(conv)
    syn = conv._synapses(delay_logits, relation_weights, 1, beta.device)
    plan.operators(beta.dtype)
    keep = beta.ne(0).any(1)
    ids, beta = ids[keep], beta[keep]
    params = conv.lif_parameters
    s, state = neuron_init(beta, params, history_dtype(conv.delay_bound))
    frames = [s]
    weight, bias = conv.lin.weight, conv.lin.bias
    for _ in range(1, conv.time_steps):
        dst, agg = _arrivals(plan, ids, state.hist, syn.delta, syn.weight)
        ids, agg, state, beta = _grow(ids, dst, agg, state, beta)
        if max_nodes is not None and ids.numel() > max_nodes:
            return None
        x = agg
        if conv.self_connection:
            prev = torch.cat([frames[-1], agg.new_zeros(ids.numel() - frames[-1].size(0),
                                                        agg.size(1))])
            x = torch.cat([prev, agg], dim=-1)
        out = torch.nn.functional.linear(x, weight)
        if bias is not None:
            out = out + bias
        s, state = neuron_step(conv.linear_scale * out, state, beta, params)
        frames.append(s)
    return (ids, frames, state.lif) if return_state else (ids, frames)


def reached_scores(model, data, head: int, relation: int, chunk: int = 1 << 16) -> Tensor:
    """Scores ``[N]`` of every node as the tail of one query ``(head, relation, ?)`` of a
    :class:`~grsnn.nn.GRSNN` with a query-driven circuit, simulating the reached nodes only.

    A node the wave never reached has zero readout, zero first-spike code and zero
    membrane, so its features are the query's (and its degree prior's): without the
    degree prior one score serves every unreached node; with it their scores are computed
    ``chunk`` nodes at a time (the per-relation in-degree counts of the graph, ``[N, R]``,
    are computed once per call). The features are those of :meth:`GRSNN.score_all` and
    go through the same MLP; the membrane sums run in edge order rather than in the
    sparse product's order, so with non-integer messages (relation or edge weights) and
    the state readout, or in float64, scores may differ from ``score_all``'s in the last
    bits. The simulation holds memory proportional to the reached nodes.
    """
    conv = model.conv
    if not supports_reached(conv) or model.symmetric:
        raise ValueError("reached_scores needs a GRSNN with drive='reached', sum "
                         "aggregation, no LayerNorm and symmetric=False")
    device = model.kappa.device
    n = int(data.num_nodes)
    q = model.scaled_query(torch.tensor([relation], device=device))        # [1, D]
    z, w = model.relation_parameters(q)
    ids, frames, (_, u) = simulate_reached(
        conv, torch.tensor([head], device=device), q, model.plan(data), z, w,
        return_state=True)
    m = ids.numel()
    frames = [torch.cat([f, f.new_zeros(m - f.size(0), f.size(1))]) for f in frames]
    parts = model.readout_parts(frames, u)
    del frames
    width = sum(x.size(1) for x in parts)
    degrees = (model.relation_degrees(data).to(q.dtype) if model.prior is not None
               else None)

    def features(rows: Optional[Tensor], count: int, reached: Optional[List[Tensor]]):
        own = (torch.cat(reached, 1) if reached is not None
               else q.new_zeros(count, width))
        out = [own, q.expand(count, -1)]
        if degrees is not None:
            out.append(model.degree_features(degrees[rows]))
        return torch.cat(out, 1)

    scores = q.new_empty(n)
    if degrees is None:
        scores.fill_(model.score(features(None, 1, None))[0])
    else:
        for start in range(0, n, chunk):
            rows = torch.arange(start, min(n, start + chunk), device=device)
            scores[rows] = model.score(features(rows, rows.numel(), None))
    if m:
        scores[ids] = model.score(features(ids, m, parts))
    return scores
