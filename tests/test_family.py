"""Synthetic family trees (grsnn.data.family), their config, and the rule-length report."""
from pathlib import Path

import networkx as nx
import pytest
import torch

from grsnn.data.family import BASE_RELATIONS, FAMILY_RULES, family_kg, family_tree
from grsnn.tasks import KGCompletionTask, build_task, load_config, merge_config
from grsnn.tasks.path_reasoning import format_report, hop_baseline, rule_length_report

CONFIG = Path(__file__).resolve().parents[1] / "tasks" / "path_reasoning" / "family.yaml"
SMALL = dict(num_families=5, generations=4)


@pytest.fixture
def one_thread():
    """Tiny graphs: one thread (a second one only waits, badly so on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def follow(G, nodes, step):
    """Nodes reached from ``nodes`` along one edge of ``step`` (``name^-1``: backwards)."""
    inverse = step.endswith("^-1")
    rel = step[:-3] if inverse else step
    out = set()
    for u, v, r in G.edges(data="relation"):
        if r == rel:
            a, b = (v, u) if inverse else (u, v)
            if a in nodes:
                out.add(b)
    return out


def rule_closure(G, body):
    """Every (x, y), x != y, joined by the path ``body``, by brute force."""
    pairs = set()
    for x in G.nodes:
        reach = {x}
        for step in body:
            reach = follow(G, reach, step)
        pairs |= {(x, y) for y in reach if y != x}
    return pairs


def named(kg, triples):
    ents = kg.splits["train"].entities
    return {(ents[h], kg.relations[r], ents[t]) for h, t, r in triples.tolist()}


def edge_set(graph):
    return set(zip(graph.edge_index[0].tolist(), graph.edge_index[1].tolist(),
                   graph.edge_type.tolist()))


def test_tree_structure():
    G = family_tree(num_families=3, generations=3, children=(2, 2), seed=1)
    assert isinstance(G, nx.MultiDiGraph)
    assert {r for *_, r in G.edges(data="relation")} == set(BASE_RELATIONS)
    for u, v, r in G.edges(data="relation"):
        if r in ("spouse_of", "sibling_of"):      # symmetric relations: both directions
            assert any(d["relation"] == r for d in G.get_edge_data(v, u).values())
        if r == "parent_of":
            assert G.nodes[v]["generation"] == G.nodes[u]["generation"] + 1
    for node in G.nodes:                          # every child has exactly two parents
        parents = [u for u, _, r in G.in_edges(node, data="relation") if r == "parent_of"]
        assert len(parents) in (0, 2)
        assert (len(parents) == 0) == (G.nodes[node]["generation"] == 0
                                       or G.nodes[node]["family"] == -1)
    with pytest.raises(ValueError):
        family_tree(generations=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_derived_facts_follow_their_rules(seed):
    kg, rule_of = family_kg(seed=seed, **SMALL)
    G = family_tree(seed=seed, **SMALL)
    assert kg.relations[:3] == list(BASE_RELATIONS)
    assert set(rule_of) == set(kg.relations[3:])
    assert {L for L in rule_of.values()} == {1, 2, 3, 4}
    derived = set()
    for s in ("train", "valid", "test"):
        derived |= named(kg, kg.splits[s].triples)
    undirected = nx.Graph(G)
    for name, length in rule_of.items():
        assert length == len(FAMILY_RULES[name])
        facts = {(h, t) for h, r, t in derived if r == name}
        # sound and complete: exactly the pairs the rule joins on the base graph
        assert facts == rule_closure(G, FAMILY_RULES[name]), name
        # no short cut: the shortest base path of every fact has the rule's length
        for h, t in facts:
            assert nx.shortest_path_length(undirected, h, t) == length, (name, h, t)
    # the base facts are exactly the tree's edges, and no target is a base relation
    graph = kg.splits["train"].graph
    R = len(kg.relations)
    ents = kg.splits["train"].entities
    stored = {(ents[u], kg.relations[r], ents[v]) for u, v, r in edge_set(graph) if r < R}
    assert stored == {(u, r, v) for u, v, r in G.edges(data="relation")}
    assert all(r not in BASE_RELATIONS for _, r, _ in derived)


def test_split_and_graph():
    kg, _ = family_kg(seed=3, **SMALL)
    R = len(kg.relations)
    sp = {s: kg.splits[s] for s in ("train", "valid", "test")}
    graph = sp["train"].graph
    assert all(sp[s].graph is graph for s in sp) and not kg.inductive
    edges = edge_set(graph)
    # inverse edges present: (u, r, v) <-> (v, r + R, u), nothing else
    forward = {(u, v, r) for u, v, r in edges if r < R}
    assert {(v, u, r + R) for u, v, r in forward} == edges - forward
    assert graph.edge_index.size(1) == 2 * len(forward)
    # no derived fact (held out or not) is an edge of the default graph
    for s in sp:
        for h, t, r in sp[s].triples.tolist():
            assert (h, t, r) not in edges and (t, h, r + R) not in edges
    # disjoint splits, every relation split; filters: train = base + train, else all
    sets = {s: set(map(tuple, sp[s].triples.tolist())) for s in sp}
    assert not sets["train"] & sets["valid"] and not sets["train"] & sets["test"]
    assert not sets["valid"] & sets["test"]
    for r in range(3, R):
        assert any(t[2] == r for t in sets["train"])
    base = {(u, v, r) for u, v, r in forward}
    assert set(map(tuple, sp["train"].filter_triples.tolist())) == base | sets["train"]
    everything = base | sets["train"] | sets["valid"] | sets["test"]
    for s in ("valid", "test"):
        assert set(map(tuple, sp[s].filter_triples.tolist())) == everything
    # a share of the training facts stored as edges; held-out facts never
    kg2, _ = family_kg(seed=3, stored_fraction=0.5, **SMALL)
    edges2 = edge_set(kg2.splits["train"].graph)
    derived_edges = {e for e in edges2 if 3 <= e[2] < R}
    assert derived_edges and derived_edges <= set(map(tuple, kg2.splits["train"].triples.tolist()))
    for s in ("valid", "test"):
        assert not set(map(tuple, kg2.splits[s].triples.tolist())) & edges2


def test_deterministic_by_seed():
    a, rule_a = family_kg(seed=4, **SMALL)
    b, rule_b = family_kg(seed=4, **SMALL)
    c, _ = family_kg(seed=5, **SMALL)
    assert rule_a == rule_b and a.relations == b.relations
    for s in ("train", "valid", "test"):
        assert torch.equal(a.splits[s].triples, b.splits[s].triples)
        assert torch.equal(a.splits[s].filter_triples, b.splits[s].filter_triples)
    assert torch.equal(a.splits["train"].graph.edge_index, b.splits["train"].graph.edge_index)
    assert a.splits["train"].entities == b.splits["train"].entities
    assert not (a.splits["train"].triples.shape == c.splits["train"].triples.shape
                and torch.equal(a.splits["train"].triples, c.splits["train"].triples))
    G1, G2 = family_tree(seed=7), family_tree(seed=7)
    assert list(G1.edges(data="relation")) == list(G2.edges(data="relation"))


def test_config_loads_family():
    cfg = load_config(CONFIG)
    assert cfg["dataset"]["name"] == "family" and cfg["task"]["name"] == "kg_completion"
    task = build_task(cfg)
    assert isinstance(task, KGCompletionTask)
    assert task.data.name == "family-0" and len(task.data.relations) == 14
    default, _ = family_kg(seed=0)
    assert torch.equal(task.data.splits["test"].triples, default.splits["test"].triples)
    cfg["dataset"]["seed"] = 1
    assert build_task(cfg).data.name == "family-1"


def test_short_training_learns_a_length_two_rule(one_thread):
    torch.manual_seed(0)
    kg, rule_of = family_kg(seed=0, num_families=6, generations=3)
    task = KGCompletionTask(kg, merge_config({"model": {"hidden_dim": 16},
                                              "task": {"num_negative": 16}}))
    model = task.build_model()
    before = rule_length_report(task, model, rule_of)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(60):
        graph, batch = task.make_batch(torch.randint(0, task.num_train, (16,), generator=gen), gen)
        loss = task.loss(model, graph, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    report = rule_length_report(task, model, rule_of)

    # a random scorer ranks the answer first about once in (number of entities) queries
    random_hits1 = 1.0 / len(kg.splits["test"].entities)
    two = report["by_length"][2]
    assert two["num_queries"] == 2 * two["num_triples"] > 0
    best = max(row["hits@1"] for row in report["by_relation"].values() if row["length"] == 2)
    assert best >= 0.8 > 10 * random_hits1, report["by_relation"]
    assert two["hits@1"] >= 0.5 > before["by_length"][2]["hits@1"] + 0.2, (two, before)
    # relation-blind hop counting (knows the rule length) does clearly worse
    assert hop_baseline(task, rule_of)[2]["tiebreak.hits@1"] < two["hits@1"] - 0.2

    # the pooled figures are exactly the whole split's evaluation
    overall = task.evaluate(model, "test", progress=False)
    n = sum(row["num_queries"] for row in report["by_length"].values())
    assert n == overall["num_queries"]
    for key in ("mrr", "hits@1"):
        pooled = sum(row[key] * row["num_queries"] for row in report["by_length"].values()) / n
        assert pooled == pytest.approx(overall[key], abs=1e-9)

    # delays: every query relation, every edge type of the graph, histogram over D neurons
    K = model.conv.delay_bound
    assert report["delay_bound"] == K and set(report["delays"]) == set(rule_of)
    table = report["delays"]["grandparent_of"]
    assert set(table) == {"parent_of", "spouse_of", "sibling_of", "parent_of^-1",
                          "spouse_of^-1", "sibling_of^-1"}
    for entry in table.values():
        assert len(entry["histogram"]) == K + 1 and sum(entry["histogram"]) == 16
        assert entry["histogram"][entry["mode"]] == max(entry["histogram"])
    text = format_report(report, FAMILY_RULES)
    assert "grandparent_of" in text and "parent_of . parent_of" in text
