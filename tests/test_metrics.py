"""Ranking metrics against a brute force; hits@10_50; AUROC/AP."""
import math

import pytest
import torch
from scipy.stats import binom

from grsnn.metrics import (auroc_ap, filtered_ranks, hits_at_k_of_n, num_candidates,
                           ranking_metrics)


def brute_force(scores, target, mask):
    out = {"optimistic": [], "pessimistic": [], "realistic": []}
    for q in range(scores.size(0)):
        ts = scores[q, target[q]].item()
        better = ties = 0
        for c in range(scores.size(1)):
            if c == target[q] or mask[q, c]:
                continue
            v = scores[q, c].item()
            better += v > ts
            ties += v == ts
        out["optimistic"].append(1 + better)
        out["pessimistic"].append(1 + better + ties)
        out["realistic"].append(1 + better + ties / 2)
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in out.items()}


def test_filtered_ranks_match_brute_force_with_ties_and_filters():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 6, (50, 30), generator=g).float()   # many ties
    target = torch.randint(0, 30, (50,), generator=g)
    mask = torch.rand(50, 30, generator=g) < 0.3
    mask[0, target[0]] = True                                       # ignored at the target
    got = filtered_ranks(scores, target, mask)
    want = brute_force(scores, target, mask)
    for k in want:
        assert torch.equal(got[k], want[k]), k
    assert torch.equal(num_candidates(mask, target), (~mask).sum(1).double()
                       + mask[torch.arange(50), target].double())


def test_filtering_both_directions_on_a_toy_kg():
    """(0, r, 1) and (0, r, 2) are true: ranking 1 filters 2 and vice versa."""
    scores = torch.tensor([[0.1, 0.5, 0.9, 0.7]])
    mask = torch.tensor([[False, False, True, False]])
    r = filtered_ranks(scores, torch.tensor([1]), mask)
    assert r["realistic"].item() == 2.0          # only node 3 (0.7) is above
    unf = filtered_ranks(scores, torch.tensor([1]), torch.zeros_like(mask))
    assert unf["realistic"].item() == 3.0


def test_ranking_metrics_prefixes_and_ties():
    ranks = {"optimistic": torch.tensor([1.0, 2.0, 5.0]),
             "pessimistic": torch.tensor([1.0, 4.0, 11.0])}
    ranks["realistic"] = (ranks["optimistic"] + ranks["pessimistic"]) / 2
    m = ranking_metrics(ranks, candidates=torch.tensor([100.0, 100.0, 100.0]))
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 8) / 3)
    assert m["pessimistic.hits@10"] == pytest.approx(2 / 3)
    assert m["optimistic.hits@1"] == pytest.approx(1 / 3)
    assert m["hits@3"] == pytest.approx(2 / 3)
    assert m["tied_fraction"] == pytest.approx(2 / 3)
    assert m["mr"] == pytest.approx((1 + 3 + 8) / 3)
    for key in ("hits@10_50", "pessimistic.hits@10_50", "optimistic.hits@10_50"):
        assert 0 <= m[key] <= 1


@pytest.mark.parametrize("rank,cands", [(1, 50), (5, 100), (30, 200), (200, 1000), (999, 1000)])
def test_hits_at_10_of_50_is_binomial_cdf(rank, cands):
    p = (rank - 1) / (cands - 1)
    got = hits_at_k_of_n(torch.tensor([float(rank)]), torch.tensor([float(cands)])).item()
    assert got == pytest.approx(binom.cdf(9, 50, p), abs=1e-12)


def test_auroc_ap():
    out = auroc_ap(torch.tensor([0.9, 0.8, 0.3]), torch.tensor([0.1, 0.85, 0.2]))
    assert out["auroc"] == pytest.approx(7 / 9)
    assert 0 < out["ap"] <= 1
    assert math.isclose(auroc_ap(torch.tensor([1.0]), torch.tensor([0.0]))["auroc"], 1.0)


@pytest.mark.parametrize("seed", range(5))
def test_auroc_ap_pessimistic_and_optimistic_match_brute_force(seed):
    """Every positive-negative pair counted by hand: pessimistic AUROC = P(pos > neg),
    optimistic = P(pos >= neg), realistic their mean; AP = the mean precision at each
    positive, with the negatives tied with it ranked above (scikit-learn's, pessimistic) or
    below it (optimistic)."""
    gen = torch.Generator().manual_seed(seed)
    pos = torch.randint(0, 6, (40,), generator=gen).float() / 5     # many ties
    neg = torch.randint(0, 6, (50,), generator=gen).float() / 5 - 0.2
    out = auroc_ap(pos, neg)
    greater = (pos[:, None] > neg[None, :]).double().mean().item()
    equal = (pos[:, None] == neg[None, :]).double().mean().item()
    assert out["pessimistic.auroc"] == pytest.approx(greater, abs=1e-12)
    assert out["optimistic.auroc"] == pytest.approx(greater + equal, abs=1e-12)
    assert out["auroc"] == pytest.approx(greater + equal / 2, abs=1e-12)

    def ap_by_hand(pessimistic):
        """Mean over positives of the precision at the lowest rank of the positives tied
        with it (they stay tied), negatives tied with them above (or below) them."""
        total = 0.0
        for p in pos:
            tp = (pos >= p).sum().item()
            fp = (neg > p).sum().item() + ((neg == p).sum().item() if pessimistic else 0)
            total += tp / (tp + fp)
        return total / len(pos)

    assert out["ap"] == pytest.approx(ap_by_hand(True), abs=1e-12)   # scikit-learn's
    assert out["optimistic.ap"] == pytest.approx(ap_by_hand(False), abs=1e-12)
    assert out["optimistic.ap"] >= out["ap"]
    tied = torch.isin(pos, neg).double().mean().item()
    assert out["tied_fraction"] == pytest.approx(tied, abs=1e-12)


def test_bad_shapes():
    with pytest.raises(ValueError, match="shapes"):
        filtered_ranks(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long),
                       torch.zeros(2, 3).bool())
