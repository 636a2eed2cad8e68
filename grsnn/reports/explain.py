"""Path explanations of a prediction (docs/method.md section 10).

The importance of an edge is the gradient of the score of ``(h, r, t)`` with respect to a
weight on that edge (one weight per edge, shared by all time steps, all 1 in the forward
pass). A beam search (width 10, up to 4 hops) then finds the paths from ``h`` to ``t`` with
the highest average edge importance.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.explain import Explanation
from torch_geometric.explain.algorithm import ExplainerAlgorithm

from ..nn import GRSNN

__all__ = ["edge_importance", "beam_search_paths", "ExplainedPath", "explain_prediction",
           "PathExplainer", "QueryExplanation", "explain_query", "explanation_pictures"]


@dataclass
class ExplainedPath:
    """One path ``h -> ... -> t``: node ids, edge ids and the average edge importance."""

    nodes: List[int]
    edges: List[int]
    importance: float


def edge_importance(model: GRSNN, graph: Data, head: int, relation: int, tail: int
                    ) -> Tuple[Tensor, float]:
    """Gradient of the score of ``(head, relation, tail)`` w.r.t. a weight on every edge.

    Returns ``(importance [E], score)``.

    Example:
        >>> g = Data(edge_index=torch.tensor([[0, 1], [1, 0]]), edge_type=torch.tensor([0, 1]),
        ...          num_nodes=2)
        >>> imp, score = edge_importance(GRSNN(2, hidden_dim=4), g, 0, 0, 1)
        >>> imp.shape
        torch.Size([2])
    """
    model.eval()
    weight = torch.ones(graph.edge_index.size(1), requires_grad=True)
    data = Data(edge_index=graph.edge_index, edge_type=graph.edge_type, edge_weight=weight,
                num_nodes=graph.num_nodes)
    with torch.enable_grad():
        feats = model.node_features(data, torch.tensor([head]), torch.tensor([relation]))
        score = model.score(feats[0, tail])
        (grad,) = torch.autograd.grad(score, weight)
    return grad.detach(), float(score.detach())


def beam_search_paths(edge_index: Tensor, importance: Tensor, num_nodes: int, head: int,
                      tail: int, beam: int = 10, max_hops: int = 4, top: int = 10
                      ) -> List[ExplainedPath]:
    """Paths ``head -> tail`` of at most ``max_hops`` edges with the highest average edge
    importance; at every hop each node keeps its ``beam`` best partial paths. Paths that
    revisit a node, or pass through ``tail`` before the end, are dropped.

    Example:
        >>> ei = torch.tensor([[0, 1, 0], [1, 2, 2]])
        >>> paths = beam_search_paths(ei, torch.tensor([1.0, 1.0, 0.5]), 3, 0, 2)
        >>> [(p.nodes, round(p.importance, 2)) for p in paths]
        [([0, 1, 2], 1.0), ([0, 2], 0.5)]
    """
    src, dst = edge_index
    usable = src != tail                       # a path may not leave the answer again
    src, dst, eid = src[usable], dst[usable], usable.nonzero().flatten()
    imp = importance[usable].double()
    score = torch.full((num_nodes, beam), float("-inf"), dtype=torch.float64)
    score[head, 0] = 0.0
    backs: List[Tuple[Tensor, Tensor]] = []   # per hop: [N, beam] edge id and previous beam
    finals: List[Tuple[float, int, int]] = []  # (average, hop, beam index at tail)
    for hop in range(1, max_hops + 1):
        score, back_e, back_j = _beam_hop(score, src, dst, eid, imp)
        backs.append((back_e, back_j))
        for j in range(beam):
            if score[tail, j] > float("-inf"):
                finals.append((float(score[tail, j]) / hop, hop, j))
    return _trace_back(edge_index, backs, finals, head, tail, top)


def _beam_hop(score: Tensor, src: Tensor, dst: Tensor, eid: Tensor, imp: Tensor
              ) -> Tuple[Tensor, Tensor, Tensor]:
    """One hop of :func:`beam_search_paths`: every node's ``beam`` best scores after one
    more edge, the edge id and the previous beam index of each (``-1``: none)."""
    num_nodes, beam = score.shape
    neg = float("-inf")
    cand = score[src] + imp.unsqueeze(1)                     # [E', beam]
    e_idx = torch.arange(len(src)).unsqueeze(1).expand_as(cand).reshape(-1)
    j_idx = torch.arange(beam).unsqueeze(0).expand_as(cand).reshape(-1)
    val, node = cand.reshape(-1), dst.repeat_interleave(beam)
    ok = val > neg
    val, node, e_idx, j_idx = val[ok], node[ok], e_idx[ok], j_idx[ok]
    order = torch.argsort(val, descending=True, stable=True)
    order = order[torch.argsort(node[order], stable=True)]   # by node, best first
    node, val, e_idx, j_idx = node[order], val[order], e_idx[order], j_idx[order]
    first = torch.searchsorted(node, node)                   # start of each node's run
    rank = torch.arange(len(node)) - first
    keep = rank < beam
    new = torch.full((num_nodes, beam), neg, dtype=torch.float64)
    back_e = torch.full((num_nodes, beam), -1, dtype=torch.long)
    back_j = torch.full((num_nodes, beam), -1, dtype=torch.long)
    new[node[keep], rank[keep]] = val[keep]
    back_e[node[keep], rank[keep]] = eid[e_idx[keep]]
    back_j[node[keep], rank[keep]] = j_idx[keep]
    return new, back_e, back_j


def _trace_back(edge_index: Tensor, backs: List[Tuple[Tensor, Tensor]],
                finals: List[Tuple[float, int, int]], head: int, tail: int, top: int
                ) -> List[ExplainedPath]:
    """The ``top`` best distinct simple paths of a beam search, from its back pointers."""
    paths: List[ExplainedPath] = []
    seen = set()
    for avg, hop, j in sorted(finals, key=lambda x: -x[0]):
        edges, node = [], tail
        for h in range(hop, 0, -1):
            back_e, back_j = backs[h - 1]
            e = int(back_e[node, j])
            edges.append(e)
            node, j = int(edge_index[0, e]), int(back_j[node, j])
        edges.reverse()
        nodes = [head] + [int(edge_index[1, e]) for e in edges]
        if len(set(nodes)) != len(nodes) or tuple(edges) in seen:
            continue
        seen.add(tuple(edges))
        paths.append(ExplainedPath(nodes, edges, avg))
        if len(paths) == top:
            break
    return paths


def explain_prediction(model: GRSNN, graph: Data, head: int, relation: int, tail: int,
                       top: int = 10, beam: int = 10, max_hops: int = 4
                       ) -> Tuple[List[ExplainedPath], Tensor, float]:
    """Edge importance, then the ``top`` paths: ``(paths, importance, score)``."""
    importance, score = edge_importance(model, graph, head, relation, tail)
    paths = beam_search_paths(graph.edge_index, importance, int(graph.num_nodes), head, tail,
                              beam=beam, max_hops=max_hops, top=top)
    return paths, importance, score


class PathExplainer(ExplainerAlgorithm):
    """PyG ``ExplainerAlgorithm`` for :class:`~grsnn.nn.GRSNN` predictions: the explanation's
    ``edge_mask`` is the edge-gradient importance, and ``explanation.paths`` the top paths
    ``(nodes, edges, importance)`` from the beam search.

    Example:
        >>> ei = torch.tensor([[0, 1], [1, 0]])
        >>> expl = PathExplainer()(GRSNN(2, hidden_dim=4), None, ei, edge_type=torch.tensor([0, 1]),
        ...                        head=0, relation=0, tail=1)
        >>> expl.edge_mask.shape
        torch.Size([2])
    """

    def __init__(self, top: int = 10, beam: int = 10, max_hops: int = 4) -> None:
        super().__init__()
        self.top, self.beam, self.max_hops = top, beam, max_hops

    def forward(self, model: GRSNN, x: Optional[Tensor], edge_index: Tensor, *,
                target: Optional[Tensor] = None, index=None, edge_type: Optional[Tensor] = None,
                head: int = 0, relation: int = 0, tail: int = 0, num_nodes: Optional[int] = None,
                **kwargs) -> Explanation:
        n = num_nodes or (x.size(0) if x is not None else int(edge_index.max()) + 1)
        graph = Data(edge_index=edge_index, edge_type=edge_type, num_nodes=n)
        paths, importance, score = explain_prediction(model, graph, int(head), int(relation),
                                                      int(tail), self.top, self.beam,
                                                      self.max_hops)
        expl = Explanation(edge_mask=importance, edge_index=edge_index)
        if x is not None:
            expl.x = x
        expl.paths = [(p.nodes, p.edges, p.importance) for p in paths]
        expl.score = score
        return expl

    def supports(self) -> bool:
        return True


@dataclass
class QueryExplanation:
    """:func:`explain_query`'s answer: the query by name, its score, the top paths, and
    the names of the ``split`` graph's entities and edges (for printing and pictures)."""

    head: str
    relation: str
    tail: str
    split: str
    ids: Tuple[int, int, int]           # head, relation (edge type), tail
    score: float
    paths: List[ExplainedPath]
    entities: List[str]
    edge_labels: List[str]               # the names of the 2R edge types
    edge_names: List[str]                # the edge type name of every edge of the graph

    def lines(self) -> List[str]:
        """The explanation as ``grsnn explain`` prints it."""
        out = [f"({self.head}, {self.relation}, {self.tail}): score {self.score:.4f}; "
               f"{len(self.paths)} paths by average edge importance (gradient of the score):"]
        for i, p in enumerate(self.paths, 1):
            hops = " ".join(f"--[{self.edge_names[e]}]--> {self.entities[v]}"
                            for e, v in zip(p.edges, p.nodes[1:]))
            out.append(f"{i:3d}. {p.importance:+.4f}  {self.entities[p.nodes[0]]} {hops}")
        return out


def explain_query(task, model: GRSNN, head: str, relation: str, tail: str,
                  split: str = "test", top: int = 10) -> QueryExplanation:
    """The ``top`` paths that explain the score of ``(head, relation, tail)`` (names) on
    the ``split`` graph of a knowledge-graph task (``task.supports_prediction``)."""
    sp = task.data.splits[split]
    h, r = task.resolve(split, head, relation)
    t, _ = task.resolve(split, tail, relation)
    paths, _, score = explain_prediction(model, sp.graph, h, r, t, top=top)
    labels = task.data.edge_type_names()
    return QueryExplanation(head, relation, tail, split, (h, r, t), score, paths,
                            list(sp.entities), labels,
                            [labels[x] for x in sp.graph.edge_type.tolist()])


def explanation_pictures(task, model: GRSNN, expl: QueryExplanation, out: str | Path
                         ) -> List[Path]:
    """PNG files of an explanation in folder ``out``: the spike raster along the best path,
    the query's delay heatmap (edge types on the paths marked), first spike time against
    hop distance, and the explained subgraph."""
    from ..paths import hop_distances
    from .plots import delay_heatmap, first_spike_vs_hops, path_subgraph, spike_raster

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    graph = task.data.splits[expl.split].graph
    h, r, t = expl.ids
    spikes = model.spike_trains(graph, torch.tensor([h]), torch.tensor([r]))[:, :, 0]
    best = expl.paths[0].nodes if expl.paths else [h, t]
    files = [spike_raster(spikes, best, [expl.entities[v] for v in best], out / "raster.png")]
    on_path = sorted({int(graph.edge_type[e]) for p in expl.paths for e in p.edges})
    delays = model.integer_delays(torch.tensor([r]))[0]
    files.append(delay_heatmap(delays, expl.edge_labels, on_path, out / "delays_heatmap.png"))
    hops = hop_distances(graph.edge_index, graph.num_nodes, h)
    files.append(first_spike_vs_hops(spikes, hops, out / "first_spike_vs_hops.png"))
    files.append(path_subgraph(expl.paths, graph.edge_index, expl.entities, expl.edge_names,
                               out / "explained_subgraph.png"))
    return files
