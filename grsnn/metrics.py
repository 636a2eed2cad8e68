"""Ranking and classification metrics (PyKEEN semantics for ties and prefixes).

Ranks are 1-based. With ``g`` candidates scoring strictly higher than the target and
``e`` other candidates tying with it: optimistic ``1 + g``, pessimistic ``1 + g + e``,
realistic the mean of the two. Filtered candidates (other true answers) never count.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, List, Optional

import torch
from torch import Tensor

__all__ = ["filtered_ranks", "num_candidates", "hits_at_k_of_n", "ranking_metrics",
           "auroc_ap", "RANK_KINDS", "METRIC_KEYS", "shown_metrics"]

RANK_KINDS = ("realistic", "pessimistic", "optimistic")

#: The metrics that results tables, training logs and run summaries show, in this order
#: (where the results have them; the tasks compute more, e.g. every ``optimistic.`` figure).
METRIC_KEYS = ("mrr", "hits@1", "hits@3", "hits@10", "hits@10_50", "mr", "pessimistic.mrr",
               "pessimistic.hits@10", "pessimistic.hits@10_50", "nbfnet.hits@10_50", "auroc",
               "ap", "pessimistic.auroc", "tied_fraction")


def shown_metrics(*results: Dict[str, float]) -> List[str]:
    """The keys of :data:`METRIC_KEYS` that every one of ``results`` has, in that order.

    Example:
        >>> shown_metrics({"auroc": 0.9, "ap": 0.8, "optimistic.ap": 0.85}, {"auroc": 0.7})
        ['auroc']
    """
    return [k for k in METRIC_KEYS if all(k in r for r in results)]


def _keep(filter_mask: Tensor, target: Tensor) -> Tensor:
    keep = ~filter_mask.bool()
    return keep.scatter(1, target.view(-1, 1), True)  # the target itself is never filtered


def filtered_ranks(scores: Tensor, target: Tensor, filter_mask: Tensor) -> Dict[str, Tensor]:
    """Filtered ranks of ``target`` among all candidates.

    Args:
        scores: ``[Q, N]`` float scores (higher is better).
        target: ``[Q]`` long index of the true answer of every query.
        filter_mask: ``[Q, N]`` bool, true where a candidate is *another* true answer
            (such candidates are removed; a true value at the target is ignored).

    Returns:
        dict of float tensors ``[Q]`` keyed ``optimistic``, ``pessimistic``,
        ``realistic``.

    Example:
        >>> s = torch.tensor([[0.9, 0.5, 0.5, 0.7]])
        >>> r = filtered_ranks(s, torch.tensor([1]), torch.tensor([[True, False, False, False]]))
        >>> [r[k].item() for k in ("optimistic", "pessimistic", "realistic")]
        [2.0, 3.0, 2.5]
    """
    if scores.dim() != 2 or target.shape != scores.shape[:1] or filter_mask.shape != scores.shape:
        raise ValueError(f"shapes must be scores [Q, N], target [Q], filter_mask [Q, N]; got "
                         f"{list(scores.shape)}, {list(target.shape)}, {list(filter_mask.shape)}")
    keep = _keep(filter_mask, target)
    ts = scores.gather(1, target.view(-1, 1))
    greater = ((scores > ts) & keep).sum(1)
    ties = ((scores == ts) & keep).sum(1) - 1
    optimistic = (1 + greater).to(torch.float64)
    pessimistic = optimistic + ties
    return {"optimistic": optimistic, "pessimistic": pessimistic,
            "realistic": (optimistic + pessimistic) / 2}


def num_candidates(filter_mask: Tensor, target: Tensor) -> Tensor:
    """Number of candidates left after filtering, the target included: ``[Q]``."""
    return _keep(filter_mask, target).sum(1).to(torch.float64)


def hits_at_k_of_n(rank: Tensor, candidates: Tensor, k: int = 10, n: int = 50) -> Tensor:
    r"""Unbiased estimate of Hits@k against ``n`` sampled negatives from a full rank.

    With :math:`p = (rank - 1) / (candidates - 1)`,
    :math:`\sum_{i<k} \binom{n}{i} p^i (1-p)^{n-i}` (the GraIL/NBFNet "Hits@10 (50)").

    Example:
        >>> hits_at_k_of_n(torch.tensor([1.0, 101.0]), torch.tensor([101.0, 101.0])).tolist()
        [1.0, 0.0]
    """
    p = ((rank.double() - 1) / (candidates.double() - 1).clamp(min=1)).clamp(0, 1)
    total = torch.zeros_like(p)
    for i in range(k):
        total += math.comb(n, i) * p.pow(i) * (1 - p).pow(n - i)
    return total


def ranking_metrics(ranks: Dict[str, Tensor], candidates: Optional[Tensor] = None,
                    hits: Iterable[int] = (1, 3, 10)) -> Dict[str, float]:
    """Aggregate ranks into ``mr``, ``mrr``, ``hits@k`` (realistic) plus the same under
    ``pessimistic.`` and ``optimistic.`` prefixes, and ``tied_fraction`` (share of queries
    whose target ties with another candidate). With ``candidates``, also ``hits@10_50``.
    With ranks ``peer`` and ``peer_candidates`` (pessimistic ranks under NBFNet's filter
    and their candidate counts), also ``nbfnet.hits@10_50``: NBFNet's estimate, against 49
    sampled negatives.

    Example:
        >>> r = {k: torch.tensor([1.0, 4.0]) for k in ("optimistic", "pessimistic", "realistic")}
        >>> ranking_metrics(r)["mrr"]
        0.625
    """
    out: Dict[str, float] = {}
    for kind in RANK_KINDS:
        prefix = "" if kind == "realistic" else kind + "."
        rank = ranks[kind].double()
        out[prefix + "mr"] = rank.mean().item()
        out[prefix + "mrr"] = (1.0 / rank).mean().item()
        for k in hits:
            out[prefix + f"hits@{k}"] = (rank <= k).double().mean().item()
        if candidates is not None:
            out[prefix + "hits@10_50"] = hits_at_k_of_n(rank, candidates).mean().item()
    if "peer" in ranks and "peer_candidates" in ranks:   # NBFNet's estimate: 49 negatives
        out["nbfnet.hits@10_50"] = hits_at_k_of_n(ranks["peer"], ranks["peer_candidates"],
                                                  n=49).mean().item()
    out["tied_fraction"] = (ranks["pessimistic"] != ranks["optimistic"]).double().mean().item()
    out["num_queries"] = float(ranks["realistic"].numel())
    return out


def auroc_ap(pos_scores: Tensor, neg_scores: Tensor) -> Dict[str, float]:
    """AUROC and average precision of positives against negatives (scikit-learn), with
    ties between a positive and a negative read three ways, as for ranks.

    ``auroc`` counts a tied positive-negative pair half (realistic);
    ``pessimistic.auroc`` counts it against the positive and ``optimistic.auroc`` for it.
    ``ap`` is scikit-learn's average precision, which takes a group of tied scores as one
    threshold and so already counts every negative tied with a positive against it
    (pessimistic); ``optimistic.ap`` orders those negatives below the positives they tie
    with. ``tied_fraction``: the share of positives whose score equals some negative's.
    A model whose unreached candidates all look alike ties a lot; the pessimistic figures
    show what those ties are worth without half credit.

    Example:
        >>> out = auroc_ap(torch.tensor([0.5, 0.9]), torch.tensor([0.5, 0.1]))
        >>> out["auroc"], out["pessimistic.auroc"], out["optimistic.auroc"], out["tied_fraction"]
        (0.875, 0.75, 1.0, 0.5)
        >>> round(out["ap"], 4), out["optimistic.ap"]
        (0.8333, 1.0)
    """
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = torch.cat([torch.ones_like(pos_scores), torch.zeros_like(neg_scores)]).numpy()
    s = torch.cat([pos_scores, neg_scores]).double().numpy()
    out = {"auroc": float(roc_auc_score(y, s)), "ap": float(average_precision_score(y, s))}
    # each distinct score a step of 2; a negative half a step above (pessimistic) or below
    # (optimistic) the positives it ties with, which stay tied with each other
    level = 2.0 * np.unique(s, return_inverse=True)[1]
    pessimistic, optimistic = level + (1 - y), level + y
    out["pessimistic.auroc"] = float(roc_auc_score(y, pessimistic))
    out["optimistic.auroc"] = float(roc_auc_score(y, optimistic))
    out["optimistic.ap"] = float(average_precision_score(y, optimistic))
    pos = pos_scores.double().numpy()
    out["tied_fraction"] = float(np.isin(pos, neg_scores.double().numpy()).mean())
    return out
