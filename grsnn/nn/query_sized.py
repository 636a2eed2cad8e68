"""Query-sized training: a batch of queries of a query-driven circuit simulated, with
gradients, on the nodes their waves reached only.

With ``drive="reached"`` a node no message has reached has no input, no bias and zero
state, so it never fires and its readout is zero. Its gradient is zero too when the
surrogate derivative vanishes at rest: a surrogate of compact support ``w <= V_th``
(:class:`~grsnn.functional.Triangle`) passes nothing through a neuron whose membrane stays
at 0, so the gradient of an unreached node's spikes stops at its own surrogate and
reaches nothing else. The spike readout of such a node (``readout="spikes"``) is
therefore a constant, and the whole computation, logits and every gradient, is that of
the circuit restricted to the reached nodes and the edges among them.

:func:`candidate_features` finds the reached nodes of every query without gradient
(:func:`~grsnn.nn.reached.simulate_reached`, memory and work proportional to them), runs
the differentiable simulation on the subgraph they induce, and checks the result: if any
source of the subgraph sends a spike in time along an edge that leaves it (the estimate
missed a node, e.g. by a rounding difference at a threshold), it says so and the caller
runs the whole graph instead, so the result is always the dense one.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from .reached import simulate_reached

__all__ = ["supports_query_sized", "reached_union", "candidate_features", "all_scores"]


def supports_query_sized(model) -> Optional[str]:
    """``None`` if ``model`` (a :class:`~grsnn.nn.GRSNN`) can train query-sized, else the
    reason it cannot."""
    conv = model.conv
    if conv.drive != "reached":
        return "needs the query-driven circuit (drive='reached')"
    if conv.aggregate_fn != "sum" or conv.norm is not None:
        return "needs sum aggregation and no LayerNorm"
    if model.readout != "spikes":
        return "needs the spike readout (readout='spikes')"
    support = getattr(conv.surrogate, "support", math.inf)
    if not support <= conv.v_threshold:
        return (f"needs a surrogate whose gradient vanishes at rest (support <= v_threshold "
                f"= {conv.v_threshold}), e.g. surrogate='triangle'; got {conv.surrogate!r}")
    return None


def reached_union(model, data, h_index: Tensor, r_index: Tensor) -> Tensor:
    """The sorted ids of the nodes reached by any of the queries ``(h, r, ?)`` (their
    sources included), without gradient, one query at a time on the reached nodes."""
    with torch.no_grad():
        plan = model.plan(data)
        q = model.scaled_query(r_index)
        z, w = model.relation_parameters(q)
        found = [h_index]
        for b in range(h_index.numel()):
            ids, _ = simulate_reached(model.conv, h_index[b:b + 1], q[b:b + 1], plan,
                                      None if z is None else z[:, b],
                                      None if w is None else w[:, b])
            found.append(ids)
        return torch.unique(torch.cat(found))


def _leaks(model, frames, sub_src: Tensor, sub_rel: Tensor, delta: Tensor) -> bool:
    """Whether any subgraph node ``sub_src`` (local ids) sends a spike that arrives within
    the horizon along an edge of relation ``sub_rel`` leaving the subgraph (``delta``: the
    integer delays ``[R, C]``). A message sent at step ``i`` with delay ``d`` arrives at
    step ``i + 1 + d``; it counts if that is at most ``T - 1``."""
    if sub_src.numel() == 0:
        return False
    steps = len(frames)
    pairs = torch.unique(torch.stack([sub_src, sub_rel]), dim=1)
    fired = torch.stack([f[pairs[0]] for f in frames]).ne(0)       # [T, P, C]
    fired = fired.to(torch.uint8).cummax(0).values                 # spiked by step i
    last = (steps - 2) - delta.index_select(0, pairs[1]).long()    # [P, C] latest sending step
    ok = last >= 0
    got = fired.gather(0, last.clamp(min=0).unsqueeze(0)).squeeze(0).bool()
    return bool((got & ok).any())


class _Subgraph(NamedTuple):
    nodes: Tensor      # [M] the reached nodes (sorted global ids)
    local: Tensor      # [N] their row in the subgraph, -1 for the others
    enc: Tensor        # [B, M + 1, D] spike readout; row M (unreached) is zero
    rate: Tensor       # firing rate of the whole circuit (differentiable scalar)
    q: Tensor          # [B, D] the scaled queries


def _simulate(model, data, h_index: Tensor, r_index: Tensor) -> Optional[_Subgraph]:
    """The queries' circuit on the subgraph they reach; ``None`` if a spike leaves it."""
    n = int(data.num_nodes)
    nodes = reached_union(model, data, h_index, r_index)
    model.query_sized_nodes = nodes.numel()
    local = torch.full((n,), -1, dtype=torch.long, device=nodes.device)
    local[nodes] = torch.arange(nodes.numel(), device=nodes.device)
    src, dst = data.edge_index
    etype = getattr(data, "edge_type", None)
    weight = getattr(data, "edge_weight", None)
    ls, ld = local[src], local[dst]
    inside = (ls >= 0) & (ld >= 0)
    leaving = (ls >= 0) & (ld < 0)
    sub_index = torch.stack([ls[inside], ld[inside]])
    sub_type = None if etype is None else etype[inside]
    sub_weight = None if weight is None else weight[inside]

    q = model.scaled_query(r_index)
    batch, dim = q.size(0), model.hidden_dim
    beta = q.new_zeros(nodes.numel(), batch, dim)
    beta[local[h_index], torch.arange(batch, device=q.device)] = q
    z, w = model.relation_parameters(q)
    conv = model.conv
    frames = conv.simulate(beta, sub_index, sub_type, edge_weight=sub_weight,
                           delay_logits=z, relation_weights=w)
    with torch.no_grad():
        delta = conv._synapses(z, w, batch, q.device).delta
        rel = (torch.zeros_like(src) if etype is None else etype)[leaving]
        if _leaks(model, frames, ls[leaving], rel, delta):
            return None
    rate = torch.stack([s.sum() for s in frames]).mean() / (n * batch * dim)
    enc = model.readout_parts(frames)[0].view(nodes.numel(), batch, dim).transpose(0, 1)
    enc = torch.cat([enc, enc.new_zeros(batch, 1, dim)], 1)
    return _Subgraph(nodes, local, enc, rate, q)


def _features(model, data, sub: _Subgraph, cand: Tensor) -> Tensor:
    """``[B, n, F]`` readout features of the candidates ``cand`` ``[B, n]``."""
    dim = model.hidden_dim
    pos = sub.local[cand]
    pos = torch.where(pos >= 0, pos, sub.nodes.numel())
    parts = [sub.enc.gather(1, pos.unsqueeze(-1).expand(-1, -1, dim)),
             sub.q.unsqueeze(1).expand(-1, cand.size(1), -1)]
    if model.prior is not None:
        prior = model.degree_features(model.relation_degrees(data).to(sub.q.dtype))
        parts.append(prior[cand])
    return torch.cat(parts, dim=-1)


def candidate_features(model, data, h_index: Tensor, r_index: Tensor, cand: Tensor
                       ) -> Optional[Tuple[Tensor, Tensor]]:
    """Readout features ``[B, n, F]`` of the candidates ``cand`` (``[B, n]``) of the
    queries ``(h, r, ?)``, those of :meth:`GRSNN.node_features` gathered at ``cand``,
    computed on the subgraph the queries reach; and the firing rate of the whole circuit
    (a differentiable scalar, the mean over steps, all nodes, queries and neurons).
    ``None`` if a spike leaves the estimated subgraph in time (then only the whole graph
    gives the exact result)."""
    sub = _simulate(model, data, h_index, r_index)
    if sub is None:
        return None
    return _features(model, data, sub, cand), sub.rate


def all_scores(model, data, h_index: Tensor, r_index: Tensor
               ) -> Optional[Tuple[Tensor, Tensor]]:
    """Scores ``[B, N]`` of every node as the tail of ``(h, r, ?)`` (those of
    :meth:`GRSNN.score_all`) and the firing rate, from the reached subgraph: without the
    degree prior every unreached node of a query has the same features, so the MLP runs
    on the reached nodes and one row per query. ``None`` as :func:`candidate_features`."""
    sub = _simulate(model, data, h_index, r_index)
    if sub is None:
        return None
    n, batch = int(data.num_nodes), h_index.numel()
    if model.prior is not None:
        cand = torch.arange(n, device=h_index.device).expand(batch, n)
        return model.score(_features(model, data, sub, cand)), sub.rate
    own = model.score(torch.cat([sub.enc, sub.q.unsqueeze(1).expand(-1, sub.enc.size(1), -1)],
                                dim=-1))                     # [B, M + 1]
    scores = own[:, -1:].expand(batch, n).clone()
    scores[:, sub.nodes] = own[:, :-1]
    return scores, sub.rate
