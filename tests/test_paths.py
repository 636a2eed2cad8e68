"""Spiking shortest paths against networkx on many random graphs."""
import random

import networkx as nx
import pytest

import grsnn


def random_graph(seed, directed, n=40, p=0.08, wmax=6, zero=True):
    rng = random.Random(seed)
    G = nx.gnp_random_graph(n, p, seed=seed, directed=directed)
    for u, v in G.edges:
        G[u][v]["weight"] = rng.randint(0 if zero else 1, wmax)
    return G


@pytest.mark.parametrize("directed", [False, True])
def test_lengths_and_paths_match_networkx_on_random_graphs(directed):
    for seed in range(60):
        G = random_graph(seed, directed)
        src = seed % 40
        want = nx.single_source_dijkstra_path_length(G, src)
        got = grsnn.shortest_path_lengths(G, src)
        assert got == want, seed
        paths = grsnn.shortest_paths(G, src)
        assert set(paths) == set(want)
        for v, path in paths.items():
            assert path[0] == src and path[-1] == v
            assert nx.path_weight(G, path, "weight") == want[v]


def test_missing_weight_counts_one_and_multigraph_takes_shortest():
    G = nx.MultiDiGraph()
    G.add_edge("a", "b")
    G.add_edge("b", "c", weight=5)
    G.add_edge("b", "c", weight=2)
    assert grsnn.shortest_path_lengths(G, "a") == {"a": 0, "b": 1, "c": 3}
    assert grsnn.shortest_paths(G, "a")["c"] == ["a", "b", "c"]


def test_float_weights_with_resolution():
    G = nx.Graph()
    G.add_weighted_edges_from([(0, 1, 0.25), (1, 2, 0.5), (0, 2, 1.0)])
    got = grsnn.shortest_path_lengths(G, 0, resolution=0.25)
    assert got == nx.single_source_dijkstra_path_length(G, 0)


def test_unreachable_nodes_are_absent_and_bad_input():
    G = nx.DiGraph([(0, 1), (2, 0)])
    assert grsnn.shortest_path_lengths(G, 0) == {0: 0, 1: 1}
    G[0][1]["weight"] = -1
    with pytest.raises(ValueError, match="negative|>= 0"):
        grsnn.shortest_path_lengths(G, 0)
    with pytest.raises(nx.NodeNotFound):
        grsnn.shortest_path_lengths(nx.path_graph(3), 7)
    with pytest.raises(TypeError, match="networkx graph"):
        grsnn.shortest_path_lengths([(0, 1)], 0)
    with pytest.raises(ValueError, match="resolution"):
        grsnn.shortest_path_lengths(nx.path_graph(3), 0, resolution=0)
