"""Synthetic family trees: a knowledge graph whose held-out facts follow multi-hop rules.

:func:`family_tree` grows families as a networkx ``MultiDiGraph`` of people with three
*base* relations (edge attribute ``relation``):

* ``parent_of``  parent -> child (both parents of every child born in the tree);
* ``spouse_of``  between the two partners of a couple, both directions;
* ``sibling_of`` between two children of the same couple, both directions.

:func:`family_kg` derives further relations from the base graph by the rules of
:data:`FAMILY_RULES` (a rule is a path of base relations from the head to the tail;
``name^-1`` walks an edge backwards; length = number of hops):

* length 1: ``child_of``                  = ``parent_of^-1``
* length 2: ``grandparent_of``            = ``parent_of . parent_of``
* length 2: ``uncle_or_aunt_of``          = ``sibling_of . parent_of``
* length 2: ``parent_in_law_of``          = ``parent_of . spouse_of``
* length 2: ``sibling_in_law_of``         = ``spouse_of . sibling_of``
  (y is a sibling of x's spouse)
* length 3: ``cousin_of``                 = ``parent_of^-1 . sibling_of . parent_of``
* length 3: ``great_grandparent_of``      = ``parent_of . parent_of . parent_of``
* length 3: ``great_uncle_or_aunt_of``    = ``sibling_of . parent_of . parent_of``
* length 3: ``uncle_or_aunt_by_marriage_of`` = ``spouse_of . sibling_of . parent_of``
* length 3: ``co_parent_in_law_of``       = ``parent_of . spouse_of . parent_of^-1``
  (x and y have children married to each other)
* length 4: ``cousin_in_law_of``          = ``spouse_of . parent_of^-1 . sibling_of . parent_of``
  (y is a cousin of x's spouse)

A derived fact is every pair ``(x, y)``, ``x != y``, joined by its rule's path. Partners
from the tree share no ancestor and were more than six hops apart before they married,
so no two people are joined by a short cut: the shortest path between the two ends of
every derived fact, over base edges of any relation in either direction, has exactly
the rule's length (checked by the tests), the number of hops a model must compose.
Relations of length 3 and 4 that go through ``generation + 2`` or a married grandchild
need ``generations >= 4``; relations without any fact are left out.

Split (transductive, one fact graph for every split): derived facts are shuffled per
relation and split into train / valid / test. The fact graph holds every base fact and,
by default, *no* derived fact (``stored_fraction=0``), so every derived fact, in
training as in evaluation, is answered by composing base edges along its rule and never
by a stored edge or a shortcut through another stored derived fact (a stored
``cousin_of(y, x)`` would answer a held-out ``cousin_of(x, y)`` in one hop; a stored
``uncle_or_aunt_of`` would answer ``cousin_of`` in two). With ``stored_fraction > 0``
that share of the *training* derived facts is also stored as edges (as in ordinary KG
completion, where the trainer removes each query's own edge); valid and test facts are
never edges. Filters: train = base + train facts; valid and test = base + all derived
facts (train + valid + test), as for transductive data.
"""
from __future__ import annotations

import itertools
import random
from typing import Dict, Iterable, List, Set, Tuple

import networkx as nx
import torch

from .kg import KGData, KGSplit
from .triples import Vocab, fact_graph

__all__ = ["BASE_RELATIONS", "FAMILY_RULES", "family_tree", "derive", "family_kg"]

_APART = 6  # partners from the tree must be more than this many hops apart

BASE_RELATIONS: Tuple[str, ...] = ("parent_of", "spouse_of", "sibling_of")

FAMILY_RULES: Dict[str, Tuple[str, ...]] = {
    "child_of": ("parent_of^-1",),
    "grandparent_of": ("parent_of", "parent_of"),
    "uncle_or_aunt_of": ("sibling_of", "parent_of"),
    "parent_in_law_of": ("parent_of", "spouse_of"),
    "sibling_in_law_of": ("spouse_of", "sibling_of"),
    "cousin_of": ("parent_of^-1", "sibling_of", "parent_of"),
    "great_grandparent_of": ("parent_of", "parent_of", "parent_of"),
    "great_uncle_or_aunt_of": ("sibling_of", "parent_of", "parent_of"),
    "uncle_or_aunt_by_marriage_of": ("spouse_of", "sibling_of", "parent_of"),
    "co_parent_in_law_of": ("parent_of", "spouse_of", "parent_of^-1"),
    "cousin_in_law_of": ("spouse_of", "parent_of^-1", "sibling_of", "parent_of"),
}


def family_tree(num_families: int = 20, generations: int = 3, children: Tuple[int, int] = (1, 3),
                seed: int = 0, intermarriage: float = 0.5) -> nx.MultiDiGraph:
    """Grow ``num_families`` family trees over ``generations`` generations.

    Generation 0 is one founding couple per family. Every couple of generation ``g``
    has ``randint(*children)`` children (generation ``g + 1``), who are siblings of each
    other. Everyone except the last generation marries: with probability
    ``intermarriage`` a partner of the same generation from the tree who shares no
    ancestor with them and is more than six hops away from them in the tree so far (so
    families join without short cuts between relatives: a marriage closes no cycle
    shorter than eight), otherwise an outsider who enters the tree without parents.
    Nodes are ``"p0", "p1", ...`` in order of creation with attributes ``generation``
    and ``family`` (founding family of the person's first ancestor line;
    ``-1`` for outsiders).

    Args:
        num_families: founding couples.
        generations: number of generations (>= 1).
        children: inclusive range of children per couple.
        seed: random seed (the graph is a deterministic function of the arguments).
        intermarriage: probability that a person marries into another family of the tree.

    Returns:
        a ``MultiDiGraph`` with edge attribute ``relation`` in :data:`BASE_RELATIONS`.

    Example:
        >>> G = family_tree(num_families=2, generations=2, children=(2, 2))
        >>> G.number_of_nodes(), sorted({d["relation"] for *_, d in G.edges(data=True)})
        (8, ['parent_of', 'sibling_of', 'spouse_of'])
    """
    if generations < 1 or num_families < 1:
        raise ValueError("num_families and generations must be >= 1")
    lo, hi = children
    if not 0 <= lo <= hi:
        raise ValueError(f"children must be a range (lo, hi) with 0 <= lo <= hi, got {children}")
    rng = random.Random(seed)
    G = nx.MultiDiGraph(name="family")
    ids = itertools.count()
    lineage: Dict[str, frozenset] = {}

    def person(gen: int, family: int, line: Iterable[int]) -> str:
        name = f"p{next(ids)}"
        G.add_node(name, generation=gen, family=family)
        lineage[name] = frozenset(line)
        return name

    def both(a: str, b: str, relation: str) -> None:
        G.add_edge(a, b, relation=relation)
        G.add_edge(b, a, relation=relation)

    undirected = G.to_undirected(as_view=True)
    lines = itertools.count()
    couples: List[Tuple[str, str]] = []
    for f in range(num_families):
        a, b = person(0, f, [next(lines)]), person(0, f, [next(lines)])
        both(a, b, "spouse_of")
        couples.append((a, b))
    for gen in range(1, generations):
        born: List[str] = []
        for a, b in couples:
            family = G.nodes[a]["family"] if G.nodes[a]["family"] >= 0 else G.nodes[b]["family"]
            kids = [person(gen, family, lineage[a] | lineage[b])
                    for _ in range(rng.randint(lo, hi))]
            for kid in kids:
                G.add_edge(a, kid, relation="parent_of")
                G.add_edge(b, kid, relation="parent_of")
            for x, y in itertools.combinations(kids, 2):
                both(x, y, "sibling_of")
            born += kids
        if gen == generations - 1:
            break
        couples = []
        order = born[:]
        rng.shuffle(order)
        single: Set[str] = set(order)
        for p in order:
            if p not in single:
                continue
            single.discard(p)
            partner = None
            if rng.random() < intermarriage:
                near = nx.single_source_shortest_path_length(undirected, p, cutoff=_APART)
                options = [q for q in order
                           if q in single and q not in near and not lineage[q] & lineage[p]]
                if options:
                    partner = rng.choice(options)
                    single.discard(partner)
            if partner is None:
                partner = person(gen, -1, [next(lines)])
            both(p, partner, "spouse_of")
            couples.append((p, partner))
    return G


def _adjacency(G: nx.MultiDiGraph) -> Dict[str, Dict[str, Set[str]]]:
    adj: Dict[str, Dict[str, Set[str]]] = {}
    for u, v, rel in G.edges(data="relation"):
        adj.setdefault(rel, {}).setdefault(u, set()).add(v)
        adj.setdefault(rel + "^-1", {}).setdefault(v, set()).add(u)
    return adj


def derive(G: nx.MultiDiGraph, rules: Dict[str, Tuple[str, ...]] = FAMILY_RULES
           ) -> Dict[str, List[Tuple[str, str]]]:
    """All facts ``(x, y)``, ``x != y``, of every rule on the base graph ``G``.

    Returns ``{relation: sorted list of (head, tail)}`` (relations without facts are
    kept with an empty list).

    Example:
        >>> G = family_tree(num_families=1, generations=3, children=(2, 2), intermarriage=0)
        >>> len(derive(G)["grandparent_of"])            # 2 founders x 4 grandchildren
        8
    """
    adj = _adjacency(G)
    order = {node: i for i, node in enumerate(G.nodes)}
    out: Dict[str, List[Tuple[str, str]]] = {}
    for name, body in rules.items():
        pairs: Set[Tuple[str, str]] = set()
        for x in G.nodes:
            frontier = {x}
            for step in body:
                table = adj.get(step, {})
                frontier = set().union(*(table.get(n, set()) for n in frontier))
            pairs.update((x, y) for y in frontier if y != x)
        out[name] = sorted(pairs, key=lambda p: (order[p[0]], order[p[1]]))
    return out


def family_kg(seed: int = 0, num_families: int = 20, generations: int = 4,
              children: Tuple[int, int] = (1, 3), intermarriage: float = 0.5,
              valid_fraction: float = 0.1, test_fraction: float = 0.2,
              stored_fraction: float = 0.0) -> Tuple[KGData, Dict[str, int]]:
    """A transductive :class:`KGData` of a family tree and the rule length of each relation.

    See the module docstring for the rules and the split. Relations: the base relations,
    then the derived relations with at least one fact (in :data:`FAMILY_RULES` order).
    Targets of every split are derived facts only; ``KGData.splits[s].graph`` is the same
    fact graph (all base facts, plus ``stored_fraction`` of the training derived facts).
    The defaults give about 260 people (4 generations, 20 families), about 3,000 derived
    facts; GRSNN trains on them in minutes on a CPU.

    Args:
        seed: seed of the tree and of the split.
        num_families, generations, children, intermarriage: see :func:`family_tree`.
        valid_fraction, test_fraction: share of every derived relation's facts held out
            (at least one fact each when the relation has three or more).
        stored_fraction: share of the training derived facts also stored in the graph.

    Returns:
        ``(data, rule_of)`` with ``rule_of[relation] = rule length`` for every derived
        relation of ``data``.

    Example:
        >>> kg, rule_of = family_kg(num_families=3, generations=3)
        >>> kg.relations[:3], rule_of["grandparent_of"], rule_of["cousin_of"]
        (['parent_of', 'spouse_of', 'sibling_of'], 2, 3)
    """
    if not 0 <= stored_fraction <= 1 or valid_fraction < 0 or test_fraction < 0 \
            or valid_fraction + test_fraction >= 1:
        raise ValueError("fractions must lie in [0, 1] with valid_fraction + test_fraction < 1")
    G = family_tree(num_families, generations, children, seed, intermarriage)
    derived = {k: v for k, v in derive(G).items() if v}
    rng = random.Random(seed + 7919)
    ents, rels = Vocab(str(n) for n in G.nodes), Vocab(BASE_RELATIONS)
    for name in derived:
        rels.add(name)
    base = [(u, rel, v) for u, v, rel in G.edges(data="relation")]
    split: Dict[str, List[Tuple[str, str, str]]] = {"train": [], "valid": [], "test": []}
    stored: List[Tuple[str, str, str]] = []
    for name, pairs in derived.items():
        pairs = pairs[:]
        rng.shuffle(pairs)
        n = len(pairs)
        n_valid = max(int(round(valid_fraction * n)), 1 if n >= 3 and valid_fraction > 0 else 0)
        n_test = max(int(round(test_fraction * n)), 1 if n >= 3 and test_fraction > 0 else 0)
        facts = [(h, name, t) for h, t in pairs]
        split["valid"] += facts[:n_valid]
        split["test"] += facts[n_valid:n_valid + n_test]
        train = facts[n_valid + n_test:]
        split["train"] += train
        stored += train[:int(round(stored_fraction * len(train)))]
    graph, base_ids = fact_graph(base + stored, ents, rels, add=False)
    ids = {s: fact_graph(split[s], ents, rels, add=False)[1] if split[s]
           else torch.zeros(0, 3, dtype=torch.long) for s in split}
    everything = torch.cat([base_ids, ids["train"], ids["valid"], ids["test"]])
    filters = {"train": torch.cat([base_ids, ids["train"]]), "valid": everything,
               "test": everything}
    splits = {s: KGSplit(graph, ids[s], filters[s], ents.names) for s in split}
    rule_of = {name: len(FAMILY_RULES[name]) for name in derived}
    return KGData(f"family-{seed}", rels.names, splits, inductive=False), rule_of
