"""networkx graphs whose edges name a relation -> :class:`~grsnn.data.kg.KGData`."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List

import torch

from .kg import KGData, KGSplit
from .triples import Triple, Vocab, fact_graph

if TYPE_CHECKING:       # networkx is imported by the caller who has a graph
    import networkx as nx

__all__ = ["from_networkx"]


def from_networkx(G: nx.Graph, relation_attr: str = "relation", name: str | None = None) -> KGData:
    """Turn a networkx graph into a transductive :class:`KGData`.

    Every edge becomes a fact ``(u, G[u][v][relation_attr], v)`` and a ``train`` target;
    ``valid`` and ``test`` are empty (``[0, 3]``). Directed graphs keep their direction;
    an undirected edge is added once, and its inverse edge type covers the other
    direction. Multigraph edges are all kept. Entities are the nodes as strings, in
    ``G.nodes`` order (isolated nodes included); relations in order of first appearance.

    Args:
        G: a ``Graph``, ``DiGraph``, ``MultiGraph`` or ``MultiDiGraph``.
        relation_attr: the edge attribute holding the relation name.
        name: data set name (default ``G.name`` or ``"networkx"``).

    Raises:
        ValueError: an edge without ``relation_attr`` (the edge is named), or two nodes
            with the same string form.

    Example:
        >>> import networkx as nx
        >>> G = nx.DiGraph(); G.add_edge("a", "b", relation="likes")
        >>> kg = from_networkx(G)
        >>> kg.relations, kg.splits["train"].triples.tolist()
        (['likes'], [[0, 1, 0]])
    """
    ents, rels = Vocab(), Vocab()
    for node in G.nodes:
        if str(node) in ents:
            raise ValueError(f"two nodes have the same name {str(node)!r}; relabel them first")
        ents.add(str(node))
    triples: List[Triple] = []
    for edge in G.edges(data=True):
        u, v = edge[0], edge[1]
        attrs_dict: Dict[str, Any] = edge[-1]
        if relation_attr not in attrs_dict:
            raise ValueError(f"edge ({u!r}, {v!r}) has no {relation_attr!r} attribute "
                             f"(attributes: {sorted(attrs_dict)})")
        relation = str(attrs_dict[relation_attr])
        rels.add(relation)
        triples.append((str(u), relation, str(v)))
    graph, ids = fact_graph(triples, ents, rels, add=False)
    empty = torch.zeros(0, 3, dtype=torch.long)
    splits = {
        "train": KGSplit(graph, ids, ids, ents.names),
        "valid": KGSplit(graph, empty, ids, ents.names),
        "test": KGSplit(graph, empty.clone(), ids, ents.names),
    }
    return KGData(name or G.name or "networkx", rels.names, splits, inductive=False)
