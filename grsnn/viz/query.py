"""The spike page of one knowledge-graph query of a trained :class:`~grsnn.nn.GRSNN`
(``grsnn explain --html``): :func:`query_page`, :func:`explanation_page` and
:func:`write_explanation_html`."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from .figures import _short
from .page import SpikePage
from .subgraph import _flights, _induced, _layout, _select


def query_page(model, graph, head: int, relation: int, tail: int, *,
               entities: Optional[Sequence[str]] = None,
               edge_labels: Optional[Sequence[str]] = None,
               relation_name: Optional[str] = None, paths=None,
               importance: Optional[Tensor] = None,
               answers: Optional[Sequence[Tuple[int, float, str]]] = None,
               max_nodes: int = 150, max_edges: int = 4000, max_flights: int = 600,
               top: int = 10) -> SpikePage:
    """The page of query ``(head, relation, ?)`` of a :class:`~grsnn.nn.GRSNN` explained at
    answer ``tail`` (ids on ``graph``, a PyG ``Data`` with ``edge_type``).

    The subgraph holds the source, the answer, the nodes of the top paths and the top
    answers, then the nodes with the largest edge importance, then the nearest ones by hop,
    up to ``max_nodes``. ``paths`` and ``importance`` (from
    :func:`grsnn.reports.explain.explain_prediction`) and ``answers`` (``(node id, score,
    note)``, best first) are computed when not given.

    Example:
        >>> from torch_geometric.data import Data
        >>> from grsnn.nn import GRSNN
        >>> g = Data(edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]),
        ...          edge_type=torch.tensor([0, 1, 0, 1]), num_nodes=3)
        >>> page = query_page(GRSNN(2, hidden_dim=4), g, 0, 0, 2)
        >>> page.steps, page.ids[:2]
        (10, [0, 2])
    """
    model.eval()
    n_all = int(graph.num_nodes)
    names = list(entities) if entities is not None else [str(i) for i in range(n_all)]
    labels = (list(edge_labels) if edge_labels is not None
              else [f"r{i}" for i in range(model.num_relations)])
    rel_name = relation_name if relation_name is not None else labels[relation]
    paths, importance, scores, answers, spikes, delays = _query_inputs(
        model, graph, head, relation, tail, paths, importance, answers, top)
    ei, et = graph.edge_index, graph.edge_type
    hops, path_nodes, path_set, priority, chosen, eid, src, dst = _query_subgraph(
        ei, n_all, head, tail, paths, importance, answers, max_nodes, max_edges)
    fire, first, flights = _query_firing(spikes, delays, et, chosen, eid, src, priority,
                                         n_all, max_flights)
    return _query_spike_page(head, relation, tail, n_all, int(spikes.shape[2]), names, labels,
                             rel_name, paths, scores, answers, delays, et, hops, path_nodes,
                             path_set, chosen, eid, src, dst, fire, first, flights)


def _query_inputs(model, graph, head: int, relation: int, tail: int, paths,
                  importance: Optional[Tensor],
                  answers: Optional[Sequence[Tuple[int, float, str]]], top: int):
    """The paths and edge importance (computed when not given), the scores of every answer,
    the top answers (when not given), the spike trains ``[T, N, D]`` and the integer delays
    ``[R, D]`` of the query."""
    from ..reports.explain import explain_prediction

    n_all = int(graph.num_nodes)
    if paths is None or importance is None:
        paths, importance, _ = explain_prediction(model, graph, head, relation, tail, top=top)
    h_t, r_t = torch.tensor([head]), torch.tensor([relation])
    with torch.no_grad():
        scores = model.score_all(graph, h_t, r_t)[0]
    if answers is None:
        best = scores.topk(min(top, n_all))
        answers = [(i, s, "") for i, s in zip(best.indices.tolist(), best.values.tolist())]
    spikes = model.spike_trains(graph, h_t, r_t)[:, :, 0]               # [T, N, D]
    delays = model.integer_delays(r_t)[0]                               # [R, D]
    return paths, importance, scores, answers, spikes, delays


def _query_subgraph(ei: Tensor, n_all: int, head: int, tail: int, paths, importance: Tensor,
                    answers, max_nodes: int, max_edges: int):
    """The displayed nodes (source, answer, path nodes and top answers first, then by edge
    importance, then by hops) and edges (the top paths' first, then by importance)."""
    from ..paths import hop_distances

    imp = importance.detach().abs().double()
    node_score = torch.zeros(n_all, dtype=torch.float64).index_add_(0, ei[0], imp) \
        .index_add_(0, ei[1], imp)
    hops = hop_distances(ei, n_all, head)
    far = torch.where(hops >= 0, hops, torch.full_like(hops, n_all + 1)).double()
    order = torch.from_numpy(np.lexsort((np.arange(n_all), far.numpy(),
                                         -node_score.numpy()))).tolist()
    path_nodes = [v for p in paths for v in p.nodes]
    must = [head, tail] + path_nodes + [a[0] for a in answers]
    chosen = _select(order, must, max(max_nodes, 2))
    path_set = {e for p in paths for e in p.edges}
    priority = imp.clone()
    if path_set:
        priority[torch.tensor(sorted(path_set))] = float("inf")
    eid, src, dst = _induced(ei, chosen, n_all, priority, max_edges)
    return hops, path_nodes, path_set, priority, chosen, eid, src, dst


def _query_firing(spikes: Tensor, delays: Tensor, et: Tensor, chosen: List[int], eid: Tensor,
                  src: Tensor, priority: Tensor, n_all: int, max_flights: int):
    """Neurons firing per step and displayed node, the first spike step of every node (-1:
    never) and the spikes in flight per step."""
    steps = spikes.shape[0]
    sub = spikes[:, torch.tensor(chosen)]                                # [T, n, D]
    fire = sub.sum(-1).numpy().astype(np.int64)
    first_any = spikes.any(-1)                                           # [T, N]
    first = torch.where(first_any.any(0), first_any.float().argmax(0),
                        torch.full((n_all,), -1)).numpy().astype(np.int64)
    # spikes sent along every displayed edge, grouped by delay: [T, E', K + 1]
    k = int(delays.max()) + 1 if delays.numel() else 1
    onehot = torch.nn.functional.one_hot(delays[et[eid]], k).float()    # [E', D, K+1]
    sends = torch.einsum("sej,ejk->sek", sub[:, src].float(), onehot).round().long().numpy()
    flights = _flights(sends, np.arange(1, k + 1), steps, priority[eid].numpy(), max_flights)
    return fire, first, flights


def _query_node_texts(chosen: List[int], head: int, tail: int, answers, path_nodes,
                      first: np.ndarray, hops_np: np.ndarray) -> Tuple[List[str], List[str]]:
    """The role and the hover note of every displayed node."""
    roles = []
    answer_ids = {a[0] for a in answers}
    path_node_set = set(path_nodes)
    for v in chosen:
        roles.append("source" if v == head else "target" if v == tail else
                     "path" if v in path_node_set else "candidate" if v in answer_ids else "")
    notes = [f"first spike: {'step ' + str(first[v]) if first[v] >= 0 else 'never'}, "
             f"hops from the source: {hops_np[v] if hops_np[v] >= 0 else 'unreachable'}"
             for v in chosen]
    return roles, notes


def _query_edge_texts(eids: List[int], et: Tensor, delays: Tensor, labels: List[str],
                      names: List[str], paths, path_set):
    """The hover text of every displayed edge, the relations of the delay figure (those on
    a top path first, then the most frequent) and the top paths as text."""
    edge_text = []
    for e in eids:
        d = delays[int(et[e])]
        edge_text.append(f"{labels[int(et[e])]} (delays {int(d.min())}-{int(d.max())}, "
                         f"mean {float(d.float().mean()):.1f})")
    types = [int(et[e]) for e in eids]
    on_path = {int(et[e]) for e in path_set}
    freq: Dict[int, int] = {}
    for x in types:
        freq[x] = freq.get(x, 0) + 1
    rows = sorted(freq, key=lambda x: (x not in on_path, -freq[x], x))[:30]
    path_text = []
    for p in paths:
        hops_txt = " ".join(f"--[{labels[int(et[e])]}]--> {names[v]}"
                            for e, v in zip(p.edges, p.nodes[1:]))
        path_text.append((f"{names[p.nodes[0]]} {hops_txt}", float(p.importance)))
    return edge_text, on_path, rows, path_text


def _query_spike_page(head: int, relation: int, tail: int, n_all: int, dim: int, names, labels,
                      rel_name: str, paths, scores: Tensor, answers, delays: Tensor, et: Tensor,
                      hops: Tensor, path_nodes, path_set, chosen: List[int], eid: Tensor,
                      src: Tensor, dst: Tensor, fire: np.ndarray, first: np.ndarray,
                      flights: List[np.ndarray]) -> SpikePage:
    """The :class:`SpikePage` of a query from the pieces :func:`query_page` computed."""
    eids = eid.tolist()
    hops_np = hops.numpy().astype(np.int64)
    roles, notes = _query_node_texts(chosen, head, tail, answers, path_nodes, first, hops_np)
    edge_text, on_path, rows, path_text = _query_edge_texts(eids, et, delays, labels, names,
                                                            paths, path_set)
    local_e = {e: i for i, e in enumerate(eids)}
    tail_score = float(scores[tail])
    return SpikePage(
        title=f"({names[head]}, {rel_name}, ?) explained at {names[tail]}: score "
              f"{tail_score:.4f}",
        description=(f"The query current enters {names[head]} at step 0. Every node holds "
                     f"{dim} LIF neurons; a spike of neuron j crosses an edge of relation r in "
                     f"1 + d steps, d being neuron j's delay of r for this query. A node lights "
                     f"up once it has fired; its colour counts its neurons firing at step t; red "
                     f"dots are spikes in flight. {len(chosen)} of {n_all} nodes and "
                     f"{len(eids)} edges are shown (the top paths, the top answers, then the "
                     f"nodes with the largest edge importance)."),
        names=[names[v] for v in chosen], ids=chosen, roles=roles, notes=notes,
        pos=_layout(len(chosen), src.numpy(), dst.numpy(), 0, 1 if tail != head else None),
        src=src.numpy(), dst=dst.numpy(), edge_labels=edge_text,
        path_edges=sorted(local_e[e] for e in path_set if e in local_e),
        fire=fire, neurons=dim, flights=flights,
        answers=[(names[i], float(s), "explained answer" if i == tail else note)
                 for i, s, note in answers],
        answers_title=f"top {len(answers)} answers of ({_short(names[head], 24)}, "
                      f"{_short(rel_name, 30)}, ?)",
        paths=path_text,
        paths_title=f"top {len(paths)} paths by average edge importance (gradient of the "
                    f"score)",
        delay_rows=[labels[x] + (" *" if x in on_path else "") for x in rows],
        delays=delays[torch.tensor(rows, dtype=torch.long)].numpy().astype(np.int64)
        if rows else np.zeros((0, dim), dtype=np.int64),
        delays_title="this query's integer delays (steps) per relation and neuron "
                     "(* = on a top path)",
        first=first, hops=hops_np, extra_step=1,
        query={"head": head, "relation": relation, "tail": tail})


def explanation_page(task, model, expl, max_nodes: int = 150, top: int = 10,
                     **kwargs) -> SpikePage:
    """The page of a :class:`~grsnn.reports.explain.QueryExplanation` of a knowledge-graph
    task (``grsnn explain --html``): names from the task, the ranked answers from
    ``task.predict`` (known true answers marked)."""
    from ..reports.explain import edge_importance

    sp = task.data.splits[expl.split]
    h, r, t = expl.ids
    index = {name: i for i, name in enumerate(sp.entities)}
    answers = [(index[name], score, "known true" if known else "")
               for name, score, known in task.predict(model, expl.head, expl.relation,
                                                      top=top, split=expl.split)]
    importance, _ = edge_importance(model, sp.graph, h, r, t)
    return query_page(model, sp.graph, h, r, t, entities=expl.entities,
                      edge_labels=expl.edge_labels, relation_name=expl.relation,
                      paths=expl.paths, importance=importance, answers=answers,
                      max_nodes=max_nodes, top=top, **kwargs)


def write_explanation_html(task, model, expl, out: str | Path, **kwargs) -> Path:
    """:func:`explanation_page` written to ``out``; returns the path."""
    return explanation_page(task, model, expl, **kwargs).write(out)
