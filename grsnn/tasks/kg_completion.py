"""Knowledge-graph completion (transductive and inductive), NBFNet protocol.

Training (docs/method.md section 7): self-adversarial binary cross-entropy, strict negatives,
half the batch corrupting tails and half heads (a head query ``(?, r, t)`` is answered as
the tail query ``(t, r + R, ?)``), and the easy edges of the batch removed from the graph.
Evaluation (section 8): every target triple ranked in both directions against all
entities of the split's graph, filtered by every other known true answer; the circuit
runs once per unique ``(head, relation)`` query and scores all nodes at once.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data
from tqdm import tqdm

from ..data import DataError, KGData
from ..metrics import filtered_ranks, num_candidates, ranking_metrics
from ..nn import GRSNN
from ..training import distributed as dist
from ..training.memory import queries_per_pass, release_free_memory
from ..training.resumable_eval import EvalProgress, model_fingerprint, tensor_fingerprint
from .base import Task
from .kg_helpers import (TripleIndex, corrupt_heads, drop_facts, firing_rate_penalty,
                         model_arguments, remove_easy_edges, self_adversarial_loss)

__all__ = ["TripleIndex", "KGCompletionTask", "corrupt_heads", "remove_easy_edges",
           "self_adversarial_loss"]     # the shared helpers stay importable from here


@dataclass
class _EvalQueries:
    """The rankings of an evaluation: query source, relation and target of each (both
    directions), and their unique ``(source, relation)`` keys ``uniq``; the rankings of
    key ``i`` are ``order[bounds[i]:bounds[i + 1]]`` (``inverse``: key of each ranking)."""

    qh: Tensor
    qr: Tensor
    target: Tensor
    uniq: Tensor
    inverse: Tensor
    order: Tensor
    bounds: Tensor


@dataclass
class _RankLists:
    """Accumulated rankings of an evaluation, chunk by chunk: ranks by kind, candidates
    and the rankings they belong to (indices into the queries), in chunk order."""

    ranks: Dict[str, List[Tensor]]
    cands: List[Tensor] = field(default_factory=list)
    which: List[Tensor] = field(default_factory=list)

    def saved_state(self, stop: int) -> Dict[str, Any]:
        """What a partial evaluation saves (``stop``: the next query to rank)."""
        for lists in (*self.ranks.values(), self.cands, self.which):   # one tensor each
            lists[:] = [torch.cat(lists)]
        return {**{k: v[0] for k, v in self.ranks.items()}, "candidates": self.cands[0],
                "which": self.which[0], "next": stop}

    def resume(self, state: Optional[Dict[str, Any]]) -> Optional[int]:
        """Take a saved state (if it holds every kind of rank); the next query, or None."""
        if state is None or not all(k in state for k in self.ranks):
            return None
        for k in self.ranks:
            self.ranks[k].append(state[k])
        self.cands.append(state["candidates"])
        self.which.append(state["which"])
        return int(state["next"])


class KGCompletionTask(Task):
    """Training batches, loss, evaluation and prediction for one :class:`KGData`."""

    name = "kg_completion"
    #: :meth:`evaluate` can keep partial results in a file and resume from it
    resumable = True
    supports_prediction = True

    def __init__(self, data: KGData, cfg: Dict[str, Dict]) -> None:
        self.data, self.cfg = data, cfg
        self.R = len(data.relations)
        train = data.splits["train"]
        self.train_triples = train.triples
        self.train_index = TripleIndex(train.filter_triples, train.graph.num_nodes, self.R)
        self._indices: Dict[Tuple[str, bool], TripleIndex] = {}

    # ---------------------------------------------------------------- model
    def build_model(self) -> GRSNN:
        return GRSNN(self.data.num_relations, **model_arguments(self.cfg))

    def vocab(self) -> Dict[str, List[str]]:
        """Names saved in checkpoints (reproducibility record)."""
        return {"relations": list(self.data.relations),
                "entities": list(self.data.splits["train"].entities)}

    def relation_names(self) -> List[str]:
        return list(self.data.relations)

    @property
    def num_train(self) -> int:
        return int(self.train_triples.size(0))

    @property
    def split_names(self) -> Tuple[str, ...]:
        """The data set's splits (GraIL adds ``test_valid``)."""
        return tuple(self.data.splits)

    # --------------------------------------------------------------- training
    def make_batch(self, idx: Tensor, gen: torch.Generator) -> Tuple[Data, Tensor]:
        """Training graph without easy edges and a batch ``[B, 1 + n, 3]`` in tail-query form."""
        task = self.cfg["task"]
        h, t, r = self.train_triples[idx].t()
        head_side = corrupt_heads(len(idx), gen)
        qh = torch.where(head_side, t, h)
        qt = torch.where(head_side, h, t)
        qr = torch.where(head_side, r + self.R, r)
        graph = self.data.splits["train"].graph
        n = graph.num_nodes
        if task.get("edge_dropout", 0.0):   # the batch's graph without a share of its facts
            graph = drop_facts(graph, self.R, task["edge_dropout"], gen)
        if task["strict_negative"]:
            allowed = ~self.train_index.mask(qh, qr)
            allowed[allowed.sum(1) == 0] = True     # no valid negative left: sample any
            neg = torch.multinomial(allowed.float(), task["num_negative"], replacement=True,
                                    generator=gen)
        else:
            neg = torch.randint(0, n, (len(idx), task["num_negative"]), generator=gen)
        tails = torch.cat([qt.unsqueeze(1), neg], dim=1)
        batch = torch.stack([qh.unsqueeze(1).expand_as(tails), tails,
                             qr.unsqueeze(1).expand_as(tails)], dim=-1)
        if task["remove_one_hop"]:   # every edge between the source and each candidate
            g = remove_easy_edges(graph, qh.repeat_interleave(tails.size(1)), tails.reshape(-1),
                                  qr.repeat_interleave(tails.size(1)), self.R, one_hop=True)
        else:                         # the query edge and its inverse
            g = remove_easy_edges(graph, h, t, r, self.R)
        return g, batch

    def loss(self, model: GRSNN, graph: Data, batch: Tensor) -> Tensor:
        task = self.cfg["task"]
        logits = model(graph, batch)
        return firing_rate_penalty(self_adversarial_loss(logits, task["adversarial_temperature"]),
                                   model, task.get("firing_rate_weight", 0.0))

    # -------------------------------------------------------------- evaluation
    def index(self, split: str, peer: bool = False) -> TripleIndex:
        """The filter of ``split`` (``peer``: NBFNet's, where the split has one)."""
        key = (split, peer)
        if key not in self._indices:
            sp = self.data.splits[split]
            triples = sp.peer_filter_triples if peer else sp.filter_triples
            self._indices[key] = TripleIndex(triples, sp.graph.num_nodes, self.R)
        return self._indices[key]

    def eval_queries_per_pass(self, model: GRSNN, graph: Data, circuits: int = 1) -> int:
        """``task.eval_batch_size``, lowered to fit the CPU allocator rule and
        ``task.eval_memory_mb`` (:func:`~grsnn.training.memory.queries_per_pass`)."""
        task = self.cfg["task"]
        pairs = model.plan(graph).num_pairs if task["eval_memory_mb"] else 0
        limit = queries_per_pass(int(graph.num_nodes), model.hidden_dim,
                                 next(model.parameters()).device,
                                 memory_mb=task["eval_memory_mb"], num_pairs=pairs)
        size = task["eval_batch_size"]
        return size if limit is None else max(1, min(size, limit // circuits))

    def evaluate(self, model: GRSNN, split: str, progress: bool = True,
                 partial: Optional[Path] = None) -> Dict[str, float]:
        """Filtered ranking of ``split``'s targets in both directions (all entities).
        With ``partial`` (a file path) the rankings done so far are saved there once a
        minute and an interrupted evaluation of the same model resumes from them."""
        ranks, cands, _, _ = self.rankings(model, split, progress, partial)
        return ranking_metrics(ranks, cands if self.data.inductive else None)

    def breakdown(self, model: GRSNN, split: str, progress: bool = True,
                  partial: Optional[Path] = None) -> List[Dict[str, Any]]:
        """:meth:`evaluate`'s metrics grouped by the hop distance from each ranking's query
        source to its target in the ``split`` graph (:mod:`grsnn.tasks.distance_breakdown`)."""
        from .distance_breakdown import pair_hop_distances, ranking_breakdown
        ranks, cands, src, tgt = self.rankings(model, split, progress, partial)
        g = self.data.splits[split].graph
        hops = pair_hop_distances(g.edge_index, g.num_nodes, src, tgt)
        return ranking_breakdown(ranks, cands if self.data.inductive else None, hops,
                                 model.eval_steps - 1)

    @torch.no_grad()
    def rankings(self, model: GRSNN, split: str, progress: bool = True,
                 partial: Optional[Path] = None
                 ) -> Tuple[Dict[str, Tensor], Tensor, Tensor, Tensor]:
        """Every filtered ranking of ``split`` (both directions): ranks by kind
        (``realistic``, ``pessimistic``, ``optimistic``), the number of candidates, and the
        query source and target of each ranking, all in one order. ``partial``: see
        :meth:`evaluate` (single process only)."""
        sp = self.data.splits[split]
        q = self._eval_queries(split)
        index = self.index(split)
        was_training = model.training
        model.eval()
        ranks: Dict[str, List[Tensor]] = {"optimistic": [], "pessimistic": [], "realistic": []}
        peer = self.index(split, peer=True) if sp.peer_filter_triples is not None else None
        if peer is not None:      # pessimistic ranks under NBFNet's filter, and candidates
            ranks.update(peer=[], peer_candidates=[])
        acc = _RankLists(ranks)
        device = next(model.parameters()).device
        graph = dist.to_device(sp.graph, device)
        size = self.eval_queries_per_pass(model, graph)
        lo, hi = dist.shard(len(q.uniq))          # this process's queries (all of them alone)
        # the saved rankings are reused only for the same queries, graph, weights and
        # model settings (time steps, thresholds, ... are not in the weights)
        partial = partial if dist.world_size() == 1 else None
        keeper = EvalProgress(partial, {} if partial is None else {
            "split": split, "queries": tensor_fingerprint(q.qh, q.qr, q.target),
            "graph": tensor_fingerprint(sp.graph.edge_index, sp.graph.edge_type),
            "model": model_fingerprint(model),
            "settings": repr(sorted(self.cfg["model"].items()))})
        resumed = acc.resume(keeper.load())       # resume after the last saved chunk
        if resumed is not None:
            lo = resumed
            if progress:
                tqdm.write(f"eval {split}: resuming at query {lo} of {hi} ({partial})")
        for start in tqdm(range(lo, hi, size), desc=f"eval {split}", unit="chunk",
                          disable=not (progress and dist.is_main()), leave=False):
            stop = min(start + size, hi)
            self._rank_chunk(model, graph, q, index, peer, start, stop, acc)
            if device.type == "cpu":
                release_free_memory()      # keep resident memory near live memory
            keeper.maybe_save(functools.partial(acc.saved_state, stop))
        keeper.finish()
        model.train(was_training)
        merged = {k: dist.gather_cat(v) for k, v in acc.ranks.items()}
        inst = dist.gather_cat(acc.which).long()
        return merged, dist.gather_cat(acc.cands), q.qh[inst], q.target[inst]

    def _eval_queries(self, split: str) -> _EvalQueries:
        """The rankings of ``split`` (at most ``task.max_eval_queries`` target triples, both
        directions), grouped by unique ``(source, relation)`` query."""
        triples = self.data.splits[split].triples
        cap = self.cfg["task"]["max_eval_queries"]
        if cap is not None:
            triples = triples[:cap]
        h, t, r = triples.t()
        qh, qr, target = torch.cat([h, t]), torch.cat([r, r + self.R]), torch.cat([t, h])
        uniq, inverse = torch.unique(qh * (2 * self.R) + qr, return_inverse=True)
        order = inverse.argsort()
        bounds = torch.searchsorted(inverse[order], torch.arange(len(uniq) + 1))
        return _EvalQueries(qh, qr, target, uniq, inverse, order, bounds)

    def _rank_chunk(self, model: GRSNN, graph: Data, q: _EvalQueries, index: TripleIndex,
                    peer: Optional[TripleIndex], start: int, stop: int, acc: _RankLists
                    ) -> None:
        """Score the unique queries ``start:stop`` once each and rank all their targets."""
        r2 = 2 * self.R
        device = next(model.parameters()).device
        uh, ur = q.uniq[start:stop] // r2, q.uniq[start:stop] % r2
        scores = model.score_all(graph, uh.to(device), ur.to(device)).cpu()
        mask = index.mask(uh, ur)
        inst = q.order[q.bounds[start]:q.bounds[stop]]
        rows = q.inverse[inst] - start
        res = filtered_ranks(scores[rows], q.target[inst], mask[rows])
        for k in res:
            acc.ranks[k].append(res[k])
        acc.cands.append(num_candidates(mask[rows], q.target[inst]))
        if peer is not None:
            pmask = peer.mask(uh, ur)[rows]
            acc.ranks["peer"].append(filtered_ranks(scores[rows], q.target[inst],
                                                    pmask)["pessimistic"])
            acc.ranks["peer_candidates"].append(num_candidates(pmask, q.target[inst]))
        acc.which.append(inst)

    def circuit_queries(self, split: str, count: int) -> Tuple[Data, Tensor, Tensor]:
        sp = self.data.splits[split]
        h, _, r = sp.triples[:count].t()
        return sp.graph, h, r

    # -------------------------------------------------------------- prediction
    def example_queries(self, split: str, count: int) -> List[Tuple[str, str, str]]:
        sp = self.data.splits[split]
        return [(sp.entities[h], self.data.relations[r], sp.entities[t])
                for h, t, r in sp.triples[:count].tolist()]

    def resolve(self, split: str, head: str, relation: str) -> Tuple[int, int]:
        """Ids of an entity name and a relation name (``name^-1`` for the inverse)."""
        sp = self.data.splits[split]
        names = {name: i for i, name in enumerate(sp.entities)}
        if head not in names:
            raise DataError(f"unknown entity {head!r} (the {split} graph has {len(names)} "
                           f"entities, e.g. {sp.entities[:3]})")
        rels = {name: i for i, name in enumerate(self.data.relations)}
        inverse = relation.endswith("^-1") and relation[:-3] in rels
        base = relation[:-3] if inverse else relation
        if base not in rels:
            raise DataError(f"unknown relation {relation!r} (known: {self.data.relations[:3]}...; "
                           f"append ^-1 for the inverse)")
        return names[head], rels[base] + (self.R if inverse else 0)

    @torch.no_grad()
    def predict(self, model: GRSNN, head: str, relation: str, top: int = 10,
                split: str = "test") -> List[Tuple[str, float, bool]]:
        """Top answers ``(name, score, known_true)`` of ``(head, relation, ?)``."""
        h, r = self.resolve(split, head, relation)
        sp = self.data.splits[split]
        model.eval()
        scores = model.score_query(sp.graph, h, r)
        known = self.index(split).mask(torch.tensor([h]), torch.tensor([r]))[0]
        best = scores.topk(min(top, scores.numel()))
        return [(sp.entities[i], float(s), bool(known[i]))
                for s, i in zip(best.values.tolist(), best.indices.tolist())]
