"""Query-sized training: a batch of queries of a query-driven circuit simulated, with
gradients, on the nodes each query's wave reached only.

With ``drive="reached"`` a node no message has reached has no input, no bias and zero
state, so it never fires and its readout is zero. Its gradient is zero too when the
surrogate derivative vanishes at rest: a surrogate of compact support ``w <= V_th``
(:class:`~grsnn.functional.Triangle`) passes nothing through a neuron whose membrane stays
at 0, so the gradient of an unreached node's spikes stops at its own surrogate and
reaches nothing else. The spike readout of such a node (``readout="spikes"``) is
therefore a constant, and the whole computation, logits and every gradient, is that of
each query's circuit restricted to the nodes it reaches and the edges among them.

:func:`candidate_features` finds the reached nodes of every query without gradient
(:func:`~grsnn.nn.reached.simulate_reached`, memory and work proportional to them), and
runs the differentiable simulation on the disjoint union of the subgraphs they induce:
query ``b``'s copy of a node only carries query ``b``'s neurons, and its edges carry the
relation types ``b * R + r``, so that every copy has its own query's delays and relation
weights. The work is the sum of the queries' reaches, not the batch size times the union
of them. It then checks the result: if any node of a copy sends a spike in time along an
edge that leaves the copy (the estimate missed a node, e.g. by a rounding difference at
a threshold), it says so and the caller runs the whole graph instead. The result is the
dense one: exactly in double precision (tested); in float32 the sums of the backward run
in another order, so gradients agree up to rounding, as between batch sizes. Building the
copies reads every edge once per query: fixed work of ``B x E`` index operations per
batch besides the simulation.
"""
from __future__ import annotations

import math
from typing import List, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from ..functional import build_plan
from .reached import simulate_reached

__all__ = ["CROSSOVER", "supports_query_sized", "reached_sets", "candidate_features",
           "all_scores"]


def supports_query_sized(model) -> Optional[str]:
    """``None`` if ``model`` (a :class:`~grsnn.nn.GRSNN`) can train query-sized, else the
    reason it cannot."""
    conv = model.conv
    if conv.drive != "reached":
        return "needs the query-driven circuit (drive='reached')"
    if conv.aggregate_fn != "sum" or conv.norm is not None:
        return "needs sum aggregation and no LayerNorm"
    if not conv.fused:
        return "needs the grouped plan (fused=True)"
    if model.readout != "spikes":
        return "needs the spike readout (readout='spikes')"
    if not conv.use_delay and model.weight_generator is not None:
        return "does not support query-dependent relation weights without delays"
    support = getattr(conv.surrogate, "support", math.inf)
    if not support <= conv.v_threshold:
        return (f"needs a surrogate whose gradient vanishes at rest (support <= v_threshold "
                f"= {conv.v_threshold}), e.g. surrogate='triangle'; got {conv.surrogate!r}")
    return None


#: the whole graph is simulated instead when the queries of a batch reach more than this
#: share of its node-columns (batch size x nodes) together: measured
#: (``benchmarks/firing_rate.py --query-sized``, docs/benchmarks.md), query-sized training
#: is 1.4x faster than the whole graph at half the node-columns and 0.6x at all of them
CROSSOVER = 0.5


def reached_sets(model, data, h_index: Tensor, r_index: Tensor,
                 budget: Optional[int] = None) -> Optional[List[Tensor]]:
    """The sorted ids of the nodes each query ``(h, r, ?)`` reaches (its source included),
    without gradient, one query at a time on the reached nodes; ``None`` as soon as they
    reach more than ``budget`` nodes together, or one of them more than ``2 * budget / B``
    (so that a batch of far-reaching queries gives up after its first search)."""
    with torch.no_grad():
        plan = model.plan(data)
        q = model.scaled_query(r_index)
        z, w = model.relation_parameters(q)
        out: List[Tensor] = []
        used = 0
        batch = h_index.numel()
        for b in range(batch):
            left = None if budget is None else min(budget - used, 2 * budget // batch)
            got = simulate_reached(model.conv, h_index[b:b + 1], q[b:b + 1], plan,
                                   None if z is None else z[:, b],
                                   None if w is None else w[:, b], max_nodes=left)
            if got is None:
                return None
            ids = torch.unique(torch.cat([h_index[b:b + 1], got[0]]))
            used += ids.numel()
            if budget is not None and (used > budget or ids.numel() > 2 * budget // batch):
                return None
            out.append(ids)
        return out


def _leaks(frames, sub_src: Tensor, sub_rel: Tensor, delta: Tensor) -> bool:
    """Whether any subgraph node ``sub_src`` (local ids) sends a spike that arrives within
    the horizon along an edge of relation ``sub_rel`` leaving the subgraph (``delta``: the
    integer delays ``[R, C]``). A message sent at step ``i`` with delay ``d`` arrives at
    step ``i + 1 + d``; it counts if that is at most ``T - 1``."""
    if sub_src.numel() == 0:
        return False
    steps = len(frames)
    num_types = delta.size(0)
    key = torch.unique(sub_src * num_types + sub_rel)     # distinct (source, relation) pairs
    pairs = torch.stack([key // num_types, key % num_types])
    senders = torch.unique(pairs[0])
    # the first spike step of every sending neuron (steps: none)
    first = torch.full((senders.numel(), frames[0].size(1)), steps, dtype=torch.long,
                       device=sub_src.device)
    for t in range(steps - 2, -1, -1):          # a spike at T - 1 arrives too late
        first.masked_fill_(frames[t].index_select(0, senders).ne(0), t)
    row = torch.searchsorted(senders, pairs[0].contiguous())
    arrive = first.index_select(0, row) + 1 + delta.index_select(0, pairs[1]).long()
    return bool((arrive <= steps - 1).any())


class _Subgraph(NamedTuple):
    nodes: List[Tensor]  # per query, the reached nodes (sorted global ids)
    offset: Tensor       # [B + 1] where each query's copy starts in the block graph
    enc: Tensor          # [M + 1, D] spike readout of the copies; row M (unreached): zero
    rate: Tensor         # firing rate of the whole circuit (differentiable scalar)
    q: Tensor            # [B, D] the scaled queries


def _per_query(z: Optional[Tensor], own: Optional[Tensor], batch: int) -> Optional[Tensor]:
    """``[B * R, D]``: query ``b``'s ``[R, D]`` parameters at rows ``b * R + r`` (from the
    generated ``z`` ``[R, B, D]``, else the layer's own ``own`` ``[R, D]``)."""
    if z is not None:
        return z.transpose(0, 1).reshape(-1, z.size(-1))
    return None if own is None else own.repeat(batch, 1)


def _simulate(model, data, h_index: Tensor, r_index: Tensor) -> Optional[_Subgraph]:
    """The queries' circuits on the subgraphs they reach; ``None`` if they reach more than
    :data:`CROSSOVER` of the node-columns or a spike leaves a subgraph."""
    n, batch = int(data.num_nodes), h_index.numel()
    conv = model.conv
    sets = reached_sets(model, data, h_index, r_index, int(CROSSOVER * batch * n))
    if sets is None:
        model.query_sized_nodes = 0
        return None
    sizes = torch.tensor([x.numel() for x in sets], device=h_index.device)
    offset = torch.cat([sizes.new_zeros(1), torch.cumsum(sizes, 0)])
    total = int(offset[-1])
    model.query_sized_nodes = total
    src, dst = data.edge_index
    etype = getattr(data, "edge_type", None)
    etype = torch.zeros_like(src) if etype is None else etype
    weight = getattr(data, "edge_weight", None)
    rels = conv.num_relations
    keep_src, keep_dst, keep_type, keep_w = [], [], [], []
    out_src, out_type = [], []
    for b, ids in enumerate(sets):
        local = torch.full((n,), -1, dtype=torch.long, device=ids.device)
        local[ids] = torch.arange(ids.numel(), device=ids.device) + offset[b]
        ls, ld = local[src], local[dst]
        inside = (ls >= 0) & (ld >= 0)
        leaving = (ls >= 0) & (ld < 0)
        keep_src.append(ls[inside])
        keep_dst.append(ld[inside])
        keep_type.append(etype[inside] + b * rels)
        if weight is not None:
            keep_w.append(weight[inside])
        out_src.append(ls[leaving])
        out_type.append(etype[leaving] + b * rels)
    sub_index = torch.stack([torch.cat(keep_src), torch.cat(keep_dst)])
    sub_type = torch.cat(keep_type)
    sub_weight = torch.cat(keep_w) if weight is not None else None

    q = model.scaled_query(r_index)
    dim = model.hidden_dim
    beta = q.new_zeros(total, dim)
    source = torch.stack([torch.searchsorted(ids, h_index[b:b + 1])[0]
                          for b, ids in enumerate(sets)]) + offset[:-1]
    beta[source] = q
    z, w = model.relation_parameters(q)
    if z is None and w is None:          # every query has the layer's own synapses
        sub_type = sub_type % rels
        num_types = rels
    else:
        z = _per_query(z, conv.delay_logit, batch)
        w = _per_query(w, conv.relation_weight, batch)
        num_types = batch * rels
    plan = build_plan(sub_index, total, sub_type, num_types, sub_weight,
                      group=conv.fused, dtype=conv.lin.weight.dtype)
    frames = conv.simulate(beta, sub_index, sub_type, edge_weight=sub_weight,
                           delay_logits=z, relation_weights=w, plan=plan)
    with torch.no_grad():
        delta = conv._synapses(z, w, 1, q.device).delta
        if _leaks(frames, torch.cat(out_src), torch.cat(out_type) % num_types, delta):
            model.query_sized_nodes = 0
            return None
    rate = torch.stack([s.sum() for s in frames]).mean() / (n * batch * dim)
    enc = model.readout_parts(frames)[0]
    enc = torch.cat([enc, enc.new_zeros(1, dim)])
    return _Subgraph(sets, offset, enc, rate, q)


def _positions(sub: _Subgraph, cand: Tensor) -> Tensor:
    """``[B, n]`` rows of ``sub.enc`` of the candidates (the zero row where unreached)."""
    pos = torch.full_like(cand, int(sub.offset[-1]))
    for b, ids in enumerate(sub.nodes):
        at = torch.searchsorted(ids, cand[b]).clamp_(max=ids.numel() - 1)
        hit = ids[at] == cand[b]
        pos[b] = torch.where(hit, at + sub.offset[b], pos[b])
    return pos


def _features(model, data, sub: _Subgraph, cand: Tensor, h_index: Tensor) -> Tensor:
    """``[B, n, F]`` readout features of the candidates ``cand`` ``[B, n]`` of the
    queries from ``h_index`` ``[B]``."""
    parts = [sub.enc[_positions(sub, cand)],
             sub.q.unsqueeze(1).expand(-1, cand.size(1), -1)]
    priors = model.node_priors(data, sub.q.dtype)
    parts += [extra[cand] for extra in priors]
    parts += model.pair_parts(data, priors, h_index, cand)
    return torch.cat(parts, dim=-1)


def _dense_readout(sub: _Subgraph, num_nodes: int) -> Tensor:
    """``[B, N, D]``: every node's spike readout in each query's circuit, zero where the
    query's wave did not reach (differentiable in the reached rows)."""
    batch, dim = len(sub.nodes), sub.enc.size(1)
    sizes = sub.offset[1:] - sub.offset[:-1]
    query = torch.repeat_interleave(torch.arange(batch, device=sizes.device), sizes)
    flat = query * num_nodes + torch.cat(sub.nodes)
    dense = sub.enc.new_zeros(batch * num_nodes, dim).index_copy(0, flat, sub.enc[:-1])
    return dense.view(batch, num_nodes, dim)


def candidate_features(model, data, h_index: Tensor, r_index: Tensor, cand: Tensor,
                       waves: Optional[List[Tensor]] = None
                       ) -> Optional[Tuple[Tensor, Tensor]]:
    """Readout features ``[B, n, F]`` of the candidates ``cand`` (``[B, n]``) of the
    queries ``(h, r, ?)``, those of :meth:`GRSNN.node_features` gathered at ``cand``,
    computed on the subgraph the queries reach; and the firing rate of the whole circuit
    (a differentiable scalar, the mean over steps, all nodes, queries and neurons).
    ``None`` if the queries reach more than :data:`CROSSOVER` of the batch's node-columns
    (the whole graph is cheaper) or a spike leaves the estimated subgraph in time (then
    only the whole graph gives the exact result). With a list ``waves``, also appends
    every node's spike readout ``[B, N, D]`` (:meth:`GRSNN.node_features`' first ``D``
    columns; nothing when ``None`` is returned)."""
    sub = _simulate(model, data, h_index, r_index)
    if sub is None:
        return None
    if waves is not None:
        waves.append(_dense_readout(sub, int(data.num_nodes)))
    return _features(model, data, sub, cand, h_index), sub.rate


def all_scores(model, data, h_index: Tensor, r_index: Tensor
               ) -> Optional[Tuple[Tensor, Tensor]]:
    """Scores ``[B, N]`` of every node as the tail of ``(h, r, ?)`` (those of
    :meth:`GRSNN.score_all`) and the firing rate, from the reached subgraphs: without the
    degree prior and the background every unreached node of a query has the same features,
    so the MLP runs on the reached nodes and one row per query. ``None`` as
    :func:`candidate_features`."""
    sub = _simulate(model, data, h_index, r_index)
    if sub is None:
        return None
    n, batch = int(data.num_nodes), h_index.numel()
    if model.prior is not None or model.background_query is not None:
        cand = torch.arange(n, device=h_index.device).expand(batch, n)
        return model.score(_features(model, data, sub, cand, h_index)), sub.rate
    rows = sub.offset[1:] - sub.offset[:-1]
    query = torch.repeat_interleave(torch.arange(batch, device=h_index.device), rows)
    reached = model.score(torch.cat([sub.enc[:-1], sub.q[query]], dim=-1))
    unreached = model.score(torch.cat([sub.enc[-1:].expand(batch, -1), sub.q], dim=-1))
    scores = unreached.unsqueeze(1).expand(batch, n).clone()
    scores[query, torch.cat(sub.nodes)] = reached
    return scores, sub.rate
