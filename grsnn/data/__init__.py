"""Data loading: every task's data in one of two formats.

* :class:`KGData` (knowledge graphs): user triple folders, FB15k-237, WN18RR, the GraIL
  inductive splits and networkx graphs; a fact graph with inverse edges per split.
* :class:`LinkData` (homogeneous link prediction): Planetoid Cora/CiteSeer/PubMed with a
  seeded 85/5/10 edge split and fixed strict negatives, and OGB ``ogbl-*`` data sets.

``ogb`` is imported only inside the OGB functions (importing it contacts PyPI).
"""
from .homogeneous import (LinkData, load_ogbl, load_planetoid, ogb_evaluator, planetoid_data,
                          split_edges, strict_negatives, undirected_pairs)
from .kg import (GRAIL_SPLITS, KGData, KGSplit, data_root, load_fb15k237, load_grail, load_kg,
                 load_triples_folder, load_wn18rr)
from .networkx_io import from_networkx
from .registry import REGISTRY, download_dataset
from .sampling import TorchNeighborSampler
from .triples import DataError, Vocab, fact_graph, read_numbered_triples, read_triples

__all__ = [
    "DataError", "Vocab", "fact_graph", "read_triples", "read_numbered_triples",
    "KGData", "KGSplit", "GRAIL_SPLITS", "data_root", "load_triples_folder", "load_fb15k237",
    "load_wn18rr", "load_grail", "load_kg", "from_networkx",
    "LinkData", "load_planetoid", "planetoid_data", "load_ogbl", "ogb_evaluator", "split_edges",
    "strict_negatives", "undirected_pairs",
    "REGISTRY", "download_dataset", "TorchNeighborSampler",
]
