"""NBFNet's Hits@10 (50) estimate beside ours: 49 negatives and the ``_ind`` train and test
triples as the filter (no ``_ind`` valid triples), checked against a brute force."""
import math

import pytest
import torch

from grsnn.data import load_kg
from grsnn.metrics import hits_at_k_of_n, ranking_metrics
from grsnn.tasks import KGCompletionTask, merge_config


def test_ranking_metrics_adds_the_49_negative_estimate():
    ranks = {k: torch.tensor([1.0, 3.0]) for k in ("optimistic", "pessimistic", "realistic")}
    peer = {"peer": torch.tensor([2.0, 5.0]), "peer_candidates": torch.tensor([101.0, 101.0])}
    out = ranking_metrics({**ranks, **peer}, torch.tensor([101.0, 101.0]))
    # p = 1/100 and 4/100: sum_{i<10} C(49, i) p^i (1 - p)^(49 - i)
    want = [sum(math.comb(49, i) * p ** i * (1 - p) ** (49 - i) for i in range(10))
            for p in (0.01, 0.04)]
    assert out["nbfnet.hits@10_50"] == pytest.approx(sum(want) / 2)
    assert out["hits@10_50"] == pytest.approx(
        hits_at_k_of_n(torch.tensor([1.0, 3.0]), torch.tensor([101.0, 101.0])).mean().item())
    assert "nbfnet.hits@10_50" not in ranking_metrics(ranks)


def test_grail_test_split_reports_nbfnets_figure_by_brute_force():
    data = load_kg("WN18RR_v1")
    sp = data.splits["test"]
    assert sp.peer_filter_triples is not None and data.splits["valid"].peer_filter_triples is None
    # the peer filter is the _ind train + test triples: ours minus the _ind valid ones
    ours = {tuple(x) for x in sp.filter_triples.tolist()}
    peer_set = {tuple(x) for x in sp.peer_filter_triples.tolist()}
    assert peer_set < ours and {tuple(x) for x in sp.triples.tolist()} <= peer_set
    cfg = merge_config({"dataset": {"name": "WN18RR_v1"},
                        "model": {"hidden_dim": 4, "time_steps": 4, "compiled": False},
                        "task": {"max_eval_queries": 12, "eval_batch_size": 5}})
    task = KGCompletionTask(data, cfg)
    torch.manual_seed(0)
    model = task.build_model()
    got = task.evaluate(model, "test", progress=False)
    n, R = sp.graph.num_nodes, task.R
    peer_ranks, peer_cands = [], []
    with torch.no_grad():
        for h, t, r in sp.triples[:12].tolist():
            for qh, qr, target in ((h, r, t), (t, r + R, h)):
                scores = model.score_all(sp.graph, torch.tensor([qh]), torch.tensor([qr]))[0]
                keep = [c for c in range(n) if c == target or
                        ((qh, c, qr) if qr < R else (c, qh, qr - R)) not in peer_set]
                s = scores[keep]
                ts = scores[target]
                peer_ranks.append(float((s >= ts).sum()))        # ties count against
                peer_cands.append(float(len(keep)))
    want = hits_at_k_of_n(torch.tensor(peer_ranks), torch.tensor(peer_cands), n=49).mean()
    assert got["nbfnet.hits@10_50"] == pytest.approx(want.item())
    assert got["num_queries"] == 24
