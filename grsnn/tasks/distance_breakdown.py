"""Where a model wins and where it loses: evaluation metrics grouped by the hop distance
from a query's source to its answer in the graph the circuit runs on.

A spike needs at least one step per hop, so with ``T`` time steps an answer more than
``T - 1`` hops away (or unreachable) can never fire: it scores like every other silent
node and ties with them. ``grsnn eval --by-distance`` prints these tables.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np
import torch
from torch import Tensor

from ..metrics import auroc_ap, ranking_metrics

__all__ = ["pair_hop_distances", "distance_groups", "ranking_breakdown", "pair_breakdown",
           "format_breakdown", "GROUP_COLUMNS", "GROUP_ONLY"]

# the columns of a breakdown table, in order (those a breakdown has are shown)
GROUP_COLUMNS = ("share", "mrr", "hits@1", "hits@10", "hits@10_50", "tied_fraction",
                 "positives", "negatives", "auroc_vs_all_negatives", "tied_with_a_negative")
# the columns that exist only in breakdowns, not in a plain evaluation
GROUP_ONLY = ("share", "positives", "negatives", "auroc_vs_all_negatives",
              "tied_with_a_negative")


def pair_hop_distances(edge_index: Tensor, num_nodes: int, src: Tensor, dst: Tensor,
                       entries_per_pass: int = 1 << 24) -> Tensor:
    """Hop distance from ``src[i]`` to ``dst[i]`` along the directed ``edge_index``
    (``-1``: unreachable): scipy's unweighted shortest paths from every distinct source,
    as many sources per pass as keep the ``[sources, num_nodes]`` distance block within
    ``entries_per_pass`` entries.

    Example:
        >>> pair_hop_distances(torch.tensor([[0, 1], [1, 2]]), 4, torch.tensor([0, 0, 2]),
        ...                    torch.tensor([2, 3, 0])).tolist()
        [2, -1, -1]
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path

    e = edge_index.cpu().numpy()
    adj = csr_matrix((np.ones(e.shape[1], dtype=np.float32), (e[0], e[1])),
                     shape=(num_nodes, num_nodes))
    uniq, inverse = torch.unique(src.cpu(), return_inverse=True)
    out = torch.full((len(src),), -1, dtype=torch.long)
    dst = dst.cpu()
    step = max(1, entries_per_pass // max(num_nodes, 1))
    for lo in range(0, len(uniq), step):
        rows = uniq[lo:lo + step]
        block = shortest_path(adj, unweighted=True, indices=rows.numpy())     # [S, N] float
        sel = (inverse >= lo) & (inverse < lo + len(rows))
        d = block[(inverse[sel] - lo).numpy(), dst[sel].numpy()]
        out[sel] = torch.from_numpy(np.where(np.isinf(d), -1, d).astype(np.int64))
    return out


def distance_groups(hops: Tensor, horizon: int) -> Dict[str, Tensor]:
    """Boolean masks of the groups ``"1"``, ``"2"``, ... ``str(horizon)``, ``">horizon"``
    and ``"unreachable"`` (``"0"`` too where a source is its own answer); empty groups
    are left out.

    Example:
        >>> {k: v.tolist() for k, v in distance_groups(torch.tensor([1, 3, -1]), 2).items()}
        {'1': [True, False, False], '>2': [False, True, False], 'unreachable': [False, False, True]}
    """
    groups = {str(d): hops == d for d in range(0, horizon + 1)}
    groups[f">{horizon}"] = hops > horizon
    groups["unreachable"] = hops < 0
    return {k: m for k, m in groups.items() if bool(m.any())}


def ranking_breakdown(ranks: Dict[str, Tensor], candidates: Tensor | None, hops: Tensor,
                      horizon: int) -> List[Dict[str, Any]]:
    """Ranking metrics (:func:`~grsnn.metrics.ranking_metrics`) of every distance group:
    a first row ``all``, then one row per group with ``group``, ``share`` (of all
    rankings) and the metrics."""
    rows: List[Dict[str, Any]] = [{"group": "all", "share": 1.0,
                                      **ranking_metrics(ranks, candidates)}]
    for name, mask in distance_groups(hops, horizon).items():
        sub = {k: v[mask] for k, v in ranks.items()}
        cands = None if candidates is None else candidates[mask]
        rows.append({"group": name, "share": float(mask.double().mean()),
                     **ranking_metrics(sub, cands)})
    return rows


def pair_breakdown(pos: Tensor, neg: Tensor, pos_hops: Tensor, neg_hops: Tensor,
                   horizon: int) -> List[Dict[str, Any]]:
    """Link prediction by distance group: the share of positives and of negatives in the
    group, the AUROC of the group's positives against *all* negatives, and the share of
    the group's positives whose score equals some negative's (a tie). The first row,
    ``all``, also holds the overall ``auroc`` and ``ap``."""
    neg_set = torch.unique(neg)

    def summary(pm: Tensor, nm: Tensor) -> Dict[str, float]:
        out = {"positives": float(pm.double().mean()), "negatives": float(nm.double().mean())}
        if bool(pm.any()):
            out["auroc_vs_all_negatives"] = auroc_ap(pos[pm], neg)["auroc"]
            out["tied_with_a_negative"] = float(torch.isin(pos[pm], neg_set).double().mean())
        return out

    every = torch.ones(len(pos) + len(neg), dtype=torch.bool)
    groups = {"all": every, **distance_groups(torch.cat([pos_hops, neg_hops]), horizon)}
    rows = [{"group": name, **summary(m[:len(pos)], m[len(pos):])} for name, m in groups.items()]
    overall = auroc_ap(pos, neg)
    rows[0].update(auroc=overall["auroc"], ap=overall["ap"])
    return rows


def format_breakdown(rows: Sequence[Dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table of ``rows`` (missing values shown as ``-``)."""
    head = ["group", *columns]
    table = [head] + [[str(r["group"])] + [f"{r[c]:.4f}" if c in r else "-" for c in columns]
                      for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(head))]
    return "\n".join("  ".join(x.rjust(w) for x, w in zip(line, widths)) for line in table)
