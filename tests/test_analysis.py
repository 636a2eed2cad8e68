"""Results grouped by hop distance (grsnn.tasks.distance_breakdown, `grsnn eval --by-distance`)."""
import networkx as nx
import pytest
import torch

from grsnn.cli import main
from grsnn.data import LinkData, load_triples_folder
from grsnn.metrics import auroc_ap, filtered_ranks, ranking_metrics
from grsnn.tasks import KGCompletionTask, LinkPredictionTask, merge_config
from grsnn.tasks.distance_breakdown import (distance_groups, pair_breakdown, pair_hop_distances,
                                  ranking_breakdown)

from test_tasks import tiny_cfg, write_kg


@pytest.mark.parametrize("seed", range(4))
def test_pair_hop_distances_match_networkx(seed):
    g = torch.Generator().manual_seed(seed)
    n, m = 40, 70
    ei = torch.randint(0, n, (2, m), generator=g)
    src, dst = torch.randint(0, n, (2, 300), generator=g)
    G = nx.DiGraph()
    G.add_nodes_from(range(n))
    G.add_edges_from(ei.t().tolist())
    expect = []
    for s, t in zip(src.tolist(), dst.tolist()):
        try:
            expect.append(nx.shortest_path_length(G, s, t))
        except nx.NetworkXNoPath:
            expect.append(-1)
    # a small pass size so that several passes over the distinct sources are needed
    got = pair_hop_distances(ei, n, src, dst, entries_per_pass=7 * n)     # 7 sources a pass
    assert got.tolist() == expect and (got == -1).any() and (got >= 3).any()


def test_distance_groups_partition():
    hops = torch.tensor([0, 1, 2, 2, 5, 9, -1, -1])
    groups = distance_groups(hops, horizon=4)
    assert list(groups) == ["0", "1", "2", ">4", "unreachable"]
    assert torch.stack(list(groups.values())).sum(0).tolist() == [1] * 8
    assert groups[">4"].tolist() == [False] * 4 + [True, True, False, False]


def test_ranking_breakdown_is_the_metrics_of_each_group():
    g = torch.Generator().manual_seed(0)
    opt = torch.randint(1, 30, (50,), generator=g).double()
    ties = torch.randint(0, 3, (50,), generator=g).double()
    ranks = {"optimistic": opt, "pessimistic": opt + ties, "realistic": opt + ties / 2}
    cands = torch.full((50,), 40.0)
    hops = torch.randint(-1, 7, (50,), generator=g)
    rows = ranking_breakdown(ranks, cands, hops, horizon=3)
    assert rows[0]["group"] == "all" and rows[0] == {"group": "all", "share": 1.0,
                                                     **ranking_metrics(ranks, cands)}
    assert sum(r["share"] for r in rows[1:]) == pytest.approx(1.0)
    far = (hops > 3)
    row = next(r for r in rows if r["group"] == ">3")
    expect = ranking_metrics({k: v[far] for k, v in ranks.items()}, cands[far])
    assert row["share"] == pytest.approx(far.double().mean().item())
    assert all(row[k] == pytest.approx(v) for k, v in expect.items())


def test_pair_breakdown_by_hand():
    pos = torch.tensor([0.9, 0.2, 0.5])        # hops 2, 2, unreachable
    neg = torch.tensor([0.5, 0.1])             # hops 3, unreachable
    rows = pair_breakdown(pos, neg, torch.tensor([2, 2, -1]), torch.tensor([3, -1]), horizon=9)
    by = {r["group"]: r for r in rows}
    assert list(by) == ["all", "2", "3", "unreachable"]
    assert by["all"]["auroc"] == auroc_ap(pos, neg)["auroc"]
    assert by["2"]["positives"] == pytest.approx(2 / 3) and by["2"]["negatives"] == 0
    assert by["2"]["auroc_vs_all_negatives"] == 0.75         # 0.9 beats both, 0.2 only 0.1
    assert by["unreachable"]["tied_with_a_negative"] == 1.0  # 0.5 equals a negative
    assert by["unreachable"]["auroc_vs_all_negatives"] == 0.75
    assert "auroc_vs_all_negatives" not in by["3"]           # no positive in that group


def test_kg_breakdown_groups_the_rankings_of_evaluate(tmp_path):
    folder = write_kg(tmp_path / "kg")
    cfg = tiny_cfg(folder)
    task = KGCompletionTask(load_triples_folder(folder), cfg)
    torch.manual_seed(0)
    model = task.build_model()
    rows = task.breakdown(model, "test", progress=False)
    overall = task.evaluate(model, "test", progress=False)
    assert rows[0]["group"] == "all"
    assert all(rows[0][k] == pytest.approx(v) for k, v in overall.items())
    assert sum(r["num_queries"] for r in rows[1:]) == overall["num_queries"]
    # the rankings' sources and targets are those of the split, in both directions
    ranks, _, src, tgt = task.rankings(model, "test", progress=False)
    h, t, r = task.data.splits["test"].triples.t()
    R = len(task.data.relations)
    qh, qt, qr = torch.cat([h, t]), torch.cat([t, h]), torch.cat([r, r + R])
    assert sorted(zip(src.tolist(), tgt.tolist())) == sorted(zip(qh.tolist(), qt.tolist()))
    # and each rank belongs to its (source, target): rank every query alone, by brute force
    graph, index = task.data.splits["test"].graph, task.index("test")
    alone = {}
    for a, b, c in zip(qh.tolist(), qt.tolist(), qr.tolist()):
        scores = model.score_all(graph, torch.tensor([a]), torch.tensor([c]))
        mask = index.mask(torch.tensor([a]), torch.tensor([c]))
        rank = filtered_ranks(scores, torch.tensor([b]), mask)["realistic"].item()
        alone.setdefault((a, b), set()).add(rank)
    assert len(set(ranks["realistic"].tolist())) > 3          # not all tied: order matters
    for i, (a, b) in enumerate(zip(src.tolist(), tgt.tolist())):
        assert ranks["realistic"][i].item() in alone[(a, b)]


def test_link_prediction_breakdown(tmp_path):
    train = torch.tensor([[0, 1, 2, 5], [1, 2, 3, 6]])
    pos = {"train": train, "valid": torch.tensor([[0], [2]]),
           "test": torch.tensor([[0, 4], [3, 5]])}
    neg = {"valid": torch.tensor([[1], [6]]), "test": torch.tensor([[1, 0], [6, 5]])}
    data = LinkData("toy", 7, train, pos, neg)
    cfg = merge_config({"dataset": {"name": "toy"},
                        "task": {"name": "link_prediction", "num_negative": 1},
                        "model": {"hidden_dim": 4, "time_steps": 3}})
    task = LinkPredictionTask(data, cfg)
    model = task.build_model()
    rows = task.breakdown(model, "test")
    by = {r["group"]: r for r in rows}
    # positives: 0-3 is 3 hops (beyond the horizon of 2), 4-5 unreachable;
    # negatives: 1-6 and 0-5 unreachable
    assert list(by) == ["all", ">2", "unreachable"]
    assert by[">2"]["positives"] == 0.5 and by["unreachable"]["negatives"] == 1.0
    assert by["all"]["auroc"] == pytest.approx(task.evaluate(model, "test")["auroc"])


def test_eval_by_distance_command(tmp_path, capsys):
    folder = write_kg(tmp_path / "kg")
    out = tmp_path / "run"
    assert main(["train", "--data", str(folder), "--out", str(out), "--quiet", "--set",
                 "model.hidden_dim=8", "--set", "model.time_steps=3", "--set",
                 "train.num_epoch=1", "--set", "task.num_negative=4"]) == 0
    capsys.readouterr()
    args = ["eval", "--checkpoint", str(out / "best.pt"), "--split", "test", "--quiet"]
    assert main(args) == 0
    plain = capsys.readouterr().out
    assert main(args + ["--by-distance"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(plain)                  # the same metrics first, then the table
    table = text[len(plain):].strip().splitlines()
    assert "horizon 2 hops" in table[0] and table[1].split()[:3] == ["group", "share", "mrr"]
    groups = [line.split()[0] for line in table[2:]]
    assert groups[0] == "all" and "1" in groups
    assert sum(float(line.split()[1]) for line in table[3:]) == pytest.approx(1.0, abs=1e-3)


def test_source_reach_on_a_chain_by_hand():
    """A chain 0 -> 1 -> ... -> 8 plus an isolated node 9; one step per hop (zero delays,
    a spike alone drives the next neuron over threshold, no bias): with T = 5 the nodes
    0..4 fire at steps 0..4 and are informed, the rest never fire and are not."""
    from torch_geometric.data import Data
    from grsnn.nn import GRSNN
    from grsnn.reports.firing_stats import source_reach

    data = Data(edge_index=torch.tensor([list(range(8)), list(range(1, 9))]),
                edge_type=torch.zeros(8, dtype=torch.long), num_nodes=10)
    model = GRSNN(1, hidden_dim=4, time_steps=5, dependent=False)
    with torch.no_grad():
        model.query.weight.fill_(2.0)              # q~ = 3 >= V_th: the source fires at t = 0
        model.conv.lin.weight.fill_(1.0)
        model.conv.lin.bias.zero_()
        model.conv.delay_logit.fill_(-20.0)        # delay 0
    rows = source_reach(model, data, torch.tensor([0]), torch.tensor([0]))
    by = {r["group"]: r for r in rows}
    assert list(by) == ["0", "1", "2", "3", "4", ">4", "unreachable"]
    for d in range(5):
        assert (by[str(d)]["fired"], by[str(d)]["first_spike"], by[str(d)]["informed"]) == (1, d, 1)
    assert by[">4"]["nodes"] == 4 and by[">4"]["fired"] == 0 and by[">4"]["informed"] == 0
    # a bias that makes every neuron fire on its own: far nodes fire but stay uninformed
    with torch.no_grad():
        model.conv.lin.bias.fill_(1.0)
    by = {r["group"]: r for r in source_reach(model, data, torch.tensor([0]), torch.tensor([0]))}
    assert by["unreachable"]["fired"] == 1 and by["unreachable"]["informed"] == 0
    assert by[">4"]["fired"] == 1 and by[">4"]["informed"] == 0
    assert by["1"]["informed"] == 1
