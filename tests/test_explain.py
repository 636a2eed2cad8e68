"""Path explanations: beam search against brute force, edge importance, CLI pictures."""
import networkx as nx
import torch
from torch_geometric.data import Data

from grsnn.nn import GRSNN
from grsnn.reports.explain import beam_search_paths, edge_importance


def test_beam_search_finds_the_best_average_paths_like_brute_force():
    g = torch.Generator().manual_seed(0)
    for trial in range(10):
        n = 9
        ei = torch.randint(0, n, (2, 30), generator=g)
        ei = ei[:, ei[0] != ei[1]]
        imp = torch.rand(ei.size(1), generator=g)
        head, tail = 0, 1
        G = nx.MultiDiGraph()
        G.add_nodes_from(range(n))
        for e, (u, v) in enumerate(ei.t().tolist()):
            G.add_edge(u, v, key=e)
        brute = []
        for path in nx.all_simple_edge_paths(G, head, tail, cutoff=4):
            edges = [k for _, _, k in path]
            brute.append(sum(imp[e].item() for e in edges) / len(edges))
        brute.sort(reverse=True)
        got = beam_search_paths(ei, imp, n, head, tail, beam=200, top=5)
        assert [round(p.importance, 9) for p in got] == [round(x, 9) for x in brute[:5]], trial
        for p in got:
            assert p.nodes[0] == head and p.nodes[-1] == tail and len(p.edges) <= 4
            assert [int(ei[1, e]) for e in p.edges] == p.nodes[1:]


def test_edge_importance_is_zero_outside_the_reach_of_the_query():
    torch.manual_seed(0)
    # component {0,1,2} holds the query; {3,4} is disconnected
    ei = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])
    et = torch.tensor([0, 1, 0, 1, 0, 1])
    data = Data(edge_index=ei, edge_type=et, num_nodes=5)
    model = GRSNN(2, hidden_dim=8, linear_scale=3.0)
    model.conv.lin.bias.data.zero_()
    imp, _ = edge_importance(model, data, 0, 0, 2)
    assert imp[4:].abs().sum() == 0
    assert imp[:4].abs().sum() > 0


def test_pyg_explainer_algorithm_returns_an_explanation():
    from torch_geometric.explain import Explanation

    from grsnn.reports.explain import PathExplainer

    torch.manual_seed(1)
    ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    et = torch.tensor([0, 1, 0, 1])
    model = GRSNN(2, hidden_dim=8, linear_scale=3.0)
    expl = PathExplainer(top=2)(model, None, ei, edge_type=et, head=0, relation=0, tail=2)
    assert isinstance(expl, Explanation) and expl.edge_mask.shape == (4,)
    direct, _ = edge_importance(model, Data(edge_index=ei, edge_type=et, num_nodes=3), 0, 0, 2)
    assert torch.equal(expl.edge_mask, direct)
    assert expl.paths and expl.paths[0][0][0] == 0 and expl.paths[0][0][-1] == 2
