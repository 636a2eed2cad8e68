"""Data loading: triple files into PyG fact graphs (more loaders come with the task layer)."""
from .triples import DataError, Vocab, fact_graph, read_triples

__all__ = ["DataError", "Vocab", "fact_graph", "read_triples"]
