"""Compositional reasoning report: accuracy against rule length, and the learned delays.

For a knowledge graph whose relations follow rules of known length (the synthetic family
trees of :mod:`grsnn.data.family`), :func:`rule_length_report` ranks the targets of one
split relation by relation with :meth:`KGCompletionTask.evaluate` (filtered, both
directions, realistic ranks against all entities) and pools them per rule length, then
reads the trained circuit's integer synaptic delays for every query relation.
:func:`hop_baseline` is the reference a model must beat to show it uses the relations:
a scorer that knows every relation's rule length but not which edges to follow.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Mapping, Optional, Tuple

import networkx as nx
import torch

from ..data import KGData, KGSplit
from ..metrics import filtered_ranks, ranking_metrics
from .kg_completion import KGCompletionTask

__all__ = ["FamilyRulesTask", "rule_length_report", "hop_baseline", "format_report"]

_METRICS = ("mrr", "hits@1", "hits@3", "hits@10", "pessimistic.hits@1", "tied_fraction")


class FamilyRulesTask(KGCompletionTask):
    """Knowledge-graph completion on a data set whose relations follow rules of known
    length (``dataset.name: family`` builds it from :func:`grsnn.data.family.family_kg`).

    It trains and evaluates as :class:`KGCompletionTask` does; :meth:`report` and
    :meth:`baseline` add the accuracy per rule length and the relation-blind reference.

    Args:
        data: the data set.
        cfg: the validated configuration.
        rule_of: ``relation name -> rule length`` of the derived relations.
    """

    def __init__(self, data: KGData, cfg: Dict[str, Dict], rule_of: Mapping[str, int]) -> None:
        super().__init__(data, cfg)
        self.rule_of = dict(rule_of)

    def report(self, model, split: str = "test", progress: bool = False) -> Dict[str, Any]:
        """:func:`rule_length_report` of this task's rules."""
        return rule_length_report(self, model, self.rule_of, split, progress)

    def baseline(self, split: str = "test") -> Dict[int, Dict[str, float]]:
        """:func:`hop_baseline` of this task's rules."""
        return hop_baseline(self, self.rule_of, split)


def _edge_names(relations: List[str]) -> List[str]:
    return list(relations) + [f"{r}^-1" for r in relations]


def _subtask(task: KGCompletionTask, split: str, triples: torch.Tensor) -> KGCompletionTask:
    """The task with ``split``'s targets replaced by ``triples`` (graph, filter and the
    cached filter index shared; no evaluation cap)."""
    sub = copy.copy(task)
    sp = task.data.splits[split]
    sub.data = KGData(task.data.name, task.data.relations,
                      {split: KGSplit(sp.graph, triples, sp.filter_triples, sp.entities)},
                      task.data.inductive)
    sub.cfg = {**task.cfg, "task": {**task.cfg["task"], "max_eval_queries": None}}
    sub._indices = task._indices
    return sub


def _pool(parts: List[Dict[str, float]]) -> Dict[str, float]:
    """Exact pooled means of per-relation metrics (weights: number of rankings)."""
    n = sum(p["num_queries"] for p in parts)
    out = {k: sum(p[k] * p["num_queries"] for p in parts) / n for k in _METRICS}
    out["num_queries"] = n
    return out


@torch.no_grad()
def rule_length_report(task: KGCompletionTask, model, rule_of: Mapping[str, int],
                       split: str = "test", progress: bool = False) -> Dict[str, Any]:
    """Per rule length: number of queries, filtered Hits@1 and MRR; and learned delays.

    Every target triple ``(h, r, t)`` of ``split`` whose relation is in ``rule_of`` is
    ranked in both directions (tail query ``(h, r, ?)`` and head query ``(?, r, t)``,
    the latter answered as ``(t, r^-1, ?)``; the inverse of a length-``L`` rule is a
    length-``L`` rule) against every entity, filtered by every other true answer of the
    split's filter, on the split's graph, exactly as :meth:`KGCompletionTask.evaluate`
    does (it is called once per relation). Ranks are realistic (ties count half);
    ``pessimistic.hits@1`` counts a tie at the top as a miss.

    Args:
        task: a :class:`KGCompletionTask`.
        model: a trained :class:`grsnn.nn.GRSNN`.
        rule_of: ``relation name -> rule length`` (from :func:`grsnn.data.family.family_kg`).
        split: ``"valid"`` or ``"test"``.
        progress: tqdm bars of the evaluations.

    Returns:
        dict with

        * ``"by_length"``: ``{L: {"num_queries", "num_triples", "relations", "mrr",
          "hits@1", "hits@3", "hits@10", "pessimistic.hits@1", "tied_fraction"}}``
          (``num_queries`` = 2 x ``num_triples``, both directions);
        * ``"by_relation"``: ``{name: {"length", "num_triples", metrics...}}``;
        * ``"delays"``: ``{query relation: {edge type: {"mode", "histogram"}}}``: the
          integer delays ``model.integer_delays`` gives the tail query of every relation
          of ``rule_of``, for every edge type that occurs in the split's graph
          (``name`` and ``name^-1``), as the most common delay over the D neurons
          (smallest on a tie) and the neuron count of every delay ``0..K``;
        * ``"split"``, ``"direction"`` (``"both"``), ``"rank"`` (``"realistic"``),
          ``"delay_bound"``.

    Example:
        >>> from grsnn.data.family import family_kg
        >>> from grsnn.tasks import merge_config
        >>> kg, rule_of = family_kg(num_families=2, generations=3)
        >>> task = KGCompletionTask(kg, merge_config({"model": {"hidden_dim": 8}}))
        >>> rep = rule_length_report(task, task.build_model(), rule_of)
        >>> sorted(rep["by_length"]), rep["delays"]["grandparent_of"]["parent_of"]["mode"] <= 4
        ([1, 2, 3], True)
    """
    rel_id = {name: i for i, name in enumerate(task.data.relations)}
    unknown = [name for name in rule_of if name not in rel_id]
    if unknown:
        raise ValueError(f"rule_of names relations the data set does not have: {unknown}")
    by_relation, by_length = _metrics_by_rule(task, model, rule_of, split, progress)
    return {"split": split, "direction": "both", "rank": "realistic",
            "delay_bound": int(model.conv.delay_bound), "by_length": by_length,
            "by_relation": by_relation, "delays": _rule_delays(task, model, rule_of, split)}


def _metrics_by_rule(task: KGCompletionTask, model, rule_of: Mapping[str, int], split: str,
                     progress: bool) -> Tuple[Dict[str, Dict[str, Any]],
                                              Dict[int, Dict[str, Any]]]:
    """The metrics of :func:`rule_length_report` per relation and pooled per rule length."""
    sp = task.data.splits[split]
    rel_id = {name: i for i, name in enumerate(task.data.relations)}
    by_relation: Dict[str, Dict[str, Any]] = {}
    per_length: Dict[int, List[Dict[str, float]]] = {}
    for name, length in rule_of.items():
        triples = sp.triples[sp.triples[:, 2] == rel_id[name]]
        if len(triples) == 0:
            continue
        metrics = _subtask(task, split, triples).evaluate(model, split, progress=progress)
        row: Dict[str, Any] = {"length": int(length), "num_triples": len(triples)}
        row.update({k: metrics[k] for k in _METRICS + ("num_queries",)})
        by_relation[name] = row
        per_length.setdefault(int(length), []).append(metrics)
    by_length: Dict[int, Dict[str, Any]] = {}
    for length in sorted(per_length):
        pooled = _pool(per_length[length])
        names = [n for n, row in by_relation.items() if row["length"] == length]
        by_length[length] = {"num_triples": sum(by_relation[n]["num_triples"] for n in names),
                             "relations": names, **pooled}
        by_length[length]["num_queries"] = int(pooled["num_queries"])
    return by_relation, by_length


def _rule_delays(task: KGCompletionTask, model, rule_of: Mapping[str, int], split: str
                 ) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """The ``"delays"`` of :func:`rule_length_report`: mode and histogram of the integer
    delays of every rule relation's tail query, per edge type of the split's graph."""
    rel_id = {name: i for i, name in enumerate(task.data.relations)}
    edge_names = _edge_names(task.data.relations)
    present = torch.unique(task.data.splits[split].graph.edge_type).tolist()
    queries = [name for name in rule_of if name in rel_id]
    delays: Dict[str, Dict[str, Dict[str, Any]]] = {}
    bound = int(model.conv.delay_bound)
    if not queries:
        return delays
    was_training = model.training
    model.eval()
    d = model.integer_delays(torch.tensor([rel_id[q] for q in queries]))   # [Q, 2R, D]
    model.train(was_training)
    for qi, q in enumerate(queries):
        delays[q] = {}
        for e in present:
            hist = torch.bincount(d[qi, e], minlength=bound + 1).tolist()
            mode = max(range(bound + 1), key=lambda k: (hist[k], -k))
            delays[q][edge_names[e]] = {"mode": mode, "histogram": hist}
    return delays


def hop_baseline(task: KGCompletionTask, rule_of: Mapping[str, int], split: str = "test"
                 ) -> Dict[int, Dict[str, float]]:
    """Filtered ranking metrics per rule length of a relation-blind scorer.

    A query ``(h, r, ?)`` of a relation with rule length ``L`` scores 1 for every node
    exactly ``L`` hops from ``h`` in the split's graph (edges of any type, either
    direction) and 0 for every other node; same queries, filter and realistic ranks as
    :func:`rule_length_report` (both directions), plus ``tiebreak.hits@1`` and
    ``tiebreak.mrr``, their expectations when ties are broken at random (the fair
    figures for a scorer that ties this much). On the family trees every answer is
    exactly ``L`` hops away, so this is what hop counting alone achieves: Hits@1 well
    below 1 means a model must tell the relations apart to answer.

    Example:
        >>> from grsnn.data.family import family_kg
        >>> from grsnn.tasks import merge_config
        >>> kg, rule_of = family_kg(num_families=2, generations=3)
        >>> base = hop_baseline(KGCompletionTask(kg, merge_config({})), rule_of)
        >>> base[1]["hits@1"] < base[1]["hits@10"] == 1.0
        True
    """
    sp = task.data.splits[split]
    n, R = sp.graph.num_nodes, task.R
    G = nx.Graph()
    G.add_nodes_from(range(n))
    G.add_edges_from(sp.graph.edge_index.t().tolist())
    rel_id = {name: i for i, name in enumerate(task.data.relations)}
    index = task.index(split)
    ranks: Dict[int, Dict[str, List[torch.Tensor]]] = {}
    for name, length in rule_of.items():
        h, t, r = sp.triples[sp.triples[:, 2] == rel_id[name]].t()
        if len(h) == 0:
            continue
        qh, qr, target = torch.cat([h, t]), torch.cat([r, r + R]), torch.cat([t, h])
        scores = torch.zeros(len(qh), n)
        for i, src in enumerate(qh.tolist()):
            dist = nx.single_source_shortest_path_length(G, src, cutoff=length)
            ring = [v for v, d in dist.items() if d == length]
            scores[i, ring] = 1.0
        res = filtered_ranks(scores, target, index.mask(qh, qr))
        slot = ranks.setdefault(int(length), {})
        for kind, value in res.items():
            slot.setdefault(kind, []).append(value)
    out = {}
    for L in sorted(ranks):
        merged = {k: torch.cat(v) for k, v in ranks[L].items()}
        out[L] = ranking_metrics(merged)
        out[L].update(_tiebreak(merged["optimistic"], merged["pessimistic"]))
    return out


def _tiebreak(opt: torch.Tensor, pess: torch.Tensor) -> Dict[str, float]:
    """Expected Hits@1 and MRR when ties are broken uniformly at random."""
    lo, hi = opt.long(), pess.long()
    width = (hi - lo + 1).double()
    harmonic = torch.cumsum(1.0 / torch.arange(1, int(hi.max()) + 1, dtype=torch.float64), 0)
    harmonic = torch.cat([torch.zeros(1, dtype=torch.float64), harmonic])
    rr = (harmonic[hi] - harmonic[lo - 1]) / width
    hit = torch.where(lo == 1, 1.0 / width, torch.zeros_like(width))
    return {"tiebreak.hits@1": hit.mean().item(), "tiebreak.mrr": rr.mean().item()}


def format_report(report: Dict[str, Any], rules: Optional[Mapping[str, Any]] = None) -> str:
    """Plain-text tables of :func:`rule_length_report` (per rule length, per relation,
    and the modal delay of every edge type per query relation; with ``rules``
    (``name -> body``, e.g. :data:`grsnn.data.family.FAMILY_RULES``) the body is shown
    and the edge types it uses are marked ``*``)."""
    lines = [f"{report['split']} split, filtered ranks against all entities, both directions "
             f"({report['rank']} ranks; a query = one direction of one triple)", "",
             f"{'rule length':>11} {'triples':>8} {'queries':>8} {'Hits@1':>7} {'MRR':>7} "
             f"{'Hits@10':>8}  relations"]
    for length, row in report["by_length"].items():
        lines.append(f"{length:>11} {row['num_triples']:>8} {row['num_queries']:>8} "
                     f"{row['hits@1']:>7.3f} {row['mrr']:>7.3f} {row['hits@10']:>8.3f}  "
                     + ", ".join(row["relations"]))
    lines += ["", f"{'relation':<30} {'L':>2} {'triples':>8} {'Hits@1':>7} {'MRR':>7}  rule"]
    for name, row in report["by_relation"].items():
        body = " . ".join(rules[name]) if rules and name in rules else ""
        lines.append(f"{name:<30} {row['length']:>2} {row['num_triples']:>8} "
                     f"{row['hits@1']:>7.3f} {row['mrr']:>7.3f}  {body}")
    delays = report["delays"]
    if delays:
        edges = list(next(iter(delays.values())))
        bound = report["delay_bound"]
        lines += ["", f"learned integer delays (0..{bound}) for the tail query of each relation: "
                  "modal delay over the neurons of every edge type in the graph "
                  "(* = edge type of the rule body)",
                  f"{'query relation':<30} " + " ".join(f"{e:>13}" for e in edges)]
        for q, table in delays.items():
            in_rule = set(rules[q]) if rules and q in rules else set()
            cells = [f"{table[e]['mode']}{'*' if e in in_rule else ' '}" for e in edges]
            lines.append(f"{q:<30} " + " ".join(f"{c:>13}" for c in cells))
        lines += ["", "delay histograms (neurons with delay 0..K) per query relation, edge types "
                  "of the rule body:"]
        for q, table in delays.items():
            used = [e for e in (rules[q] if rules and q in rules else table) if e in table]
            lines.append(f"  {q}: " + "; ".join(f"{e} {table[e]['histogram']}"
                                                for e in dict.fromkeys(used)))
    return "\n".join(lines)
