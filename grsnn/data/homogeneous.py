"""Link prediction on homogeneous graphs: Planetoid (Cora, CiteSeer, PubMed) and OGB.

Planetoid graphs get the protocol of docs/method.md: a random 85/5/10 split of the undirected edges
with a fixed seed, message passing on the training edges, and one fixed strict negative
per validation/test positive (a pair that is no edge of the full graph).
"""
from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch

from . import registry
from .kg import REPO_ROOT, data_root
from .triples import DataError

__all__ = ["LinkData", "load_planetoid", "load_ogbl", "ogb_evaluator", "undirected_pairs",
           "split_edges", "strict_negatives"]

_PLANETOID = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
_PLANETOID_EXT = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


@dataclass
class LinkData:
    """Link-prediction data on one homogeneous graph.

    Attributes:
        name: data set name.
        num_nodes: number of nodes.
        train_edges: ``[2, Etr]`` undirected message-passing edges, each once (``u < v``).
        pos: ``"train"``/``"valid"``/``"test"`` -> ``[2, k]`` positive pairs.
        neg: ``"valid"``/``"test"`` -> ``[2, k]`` fixed strict negatives. Planetoid: one per
            positive. OGB: the data set's own negatives, as many as it provides.
        x: node features, if any.
        neg_candidates: OGB ranking splits (``ogbl-citation2``): ``[k, C]`` negative
            targets for each positive source of ``pos[split]``; ``neg[split]`` is then empty.

    Example:
        >>> d = load_planetoid("Cora")
        >>> d.num_nodes, d.train_edges.shape[1], d.pos["valid"].shape == d.neg["valid"].shape
        (2708, 4488, True)
    """

    name: str
    num_nodes: int
    train_edges: torch.Tensor
    pos: Dict[str, torch.Tensor]
    neg: Dict[str, torch.Tensor]
    x: Optional[torch.Tensor] = None
    neg_candidates: Dict[str, torch.Tensor] = field(default_factory=dict)

    def __repr__(self) -> str:
        # a summary, not the tensors: the CLI prints this at the start of every run
        parts = [f"{k}={v.shape[1]}" for k, v in self.pos.items() if k != "train"]
        feats = "none" if self.x is None else int(self.x.shape[1])
        return (f"LinkData({self.name!r}, nodes={self.num_nodes}, "
                f"train_edges={self.train_edges.shape[1]}, {', '.join(parts)}, "
                f"features={feats})")


def undirected_pairs(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Each undirected edge once as ``(u, v)`` with ``u < v``, sorted; self loops dropped.

    Example:
        >>> undirected_pairs(torch.tensor([[0, 1, 2, 2], [1, 0, 2, 0]]), 3).tolist()
        [[0, 0], [1, 2]]
    """
    u, v = edge_index[0].long(), edge_index[1].long()
    lo, hi = torch.minimum(u, v), torch.maximum(u, v)
    keep = lo != hi
    key = torch.unique(lo[keep] * num_nodes + hi[keep])
    return torch.stack([key // num_nodes, key % num_nodes])


def strict_negatives(num_nodes: int, edges: torch.Tensor, k: int,
                     generator: torch.Generator) -> torch.Tensor:
    """``k`` distinct node pairs ``(u < v)`` that are neither edges nor self loops.

    Args:
        num_nodes: number of nodes.
        edges: ``[2, E]`` every edge of the full graph (either direction).
        k: how many negatives.
        generator: seeded generator (the result depends only on it and the inputs).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> strict_negatives(3, torch.tensor([[0], [1]]), 2, g).shape
        torch.Size([2, 2])
    """
    forbidden = undirected_pairs(edges, num_nodes)
    forbidden_key = forbidden[0] * num_nodes + forbidden[1]
    free = num_nodes * (num_nodes - 1) // 2 - forbidden_key.numel()
    if k > free:
        raise ValueError(f"asked for {k} negatives but only {free} non-edges exist")
    chosen: Dict[int, None] = {}  # insertion-ordered set
    while len(chosen) < k:
        m = 2 * (k - len(chosen)) + 64
        pair = torch.randint(num_nodes, (2, m), generator=generator)
        lo, hi = pair.min(0).values, pair.max(0).values
        key = lo * num_nodes + hi
        ok = (lo != hi) & ~torch.isin(key, forbidden_key)
        for value in key[ok].tolist():
            if len(chosen) == k:
                break
            chosen.setdefault(value, None)
    key = torch.tensor(list(chosen), dtype=torch.long)
    return torch.stack([key // num_nodes, key % num_nodes])


def split_edges(edge_index: torch.Tensor, num_nodes: int, seed: int = 0, valid: float = 0.05,
                test: float = 0.10) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    """Random split of the undirected edges plus one strict negative per valid/test edge.

    Returns ``(pos, neg)`` dicts as in :class:`LinkData`. Sizes: ``floor(valid * E)`` and
    ``floor(test * E)``; the rest is train. Valid and test negatives are disjoint.

    Example:
        >>> ring = torch.tensor([[i for i in range(40)], [(i + 1) % 40 for i in range(40)]])
        >>> pos, neg = split_edges(ring, 40, seed=0)
        >>> [pos[s].shape[1] for s in ("train", "valid", "test")], neg["test"].shape[1]
        ([34, 2, 4], 4)
    """
    pairs = undirected_pairs(edge_index, num_nodes)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(pairs.shape[1], generator=g)
    n_valid, n_test = int(valid * pairs.shape[1]), int(test * pairs.shape[1])
    pos = {"valid": pairs[:, perm[:n_valid]], "test": pairs[:, perm[n_valid:n_valid + n_test]],
           "train": pairs[:, perm[n_valid + n_test:]]}
    negatives = strict_negatives(num_nodes, pairs, n_valid + n_test, g)
    neg = {"valid": negatives[:, :n_valid], "test": negatives[:, n_valid:]}
    return pos, neg


def _planetoid_raw(canonical: str, root: str | Path | None, download: bool) -> Path:
    files = [f"ind.{canonical.lower()}.{ext}" for ext in _PLANETOID_EXT]
    bases = [Path(root)] if root is not None else [REPO_ROOT / "datasets", data_root()]
    candidates = [b / canonical / sub for b in bases for sub in ("", "raw")]
    for folder in candidates:
        if all((folder / f).is_file() for f in files):
            return folder
    if download and canonical in registry.REGISTRY:
        return registry.download_dataset(canonical, bases[-1])
    existing = [c for c in candidates if c.is_dir()] or candidates[:1]
    missing = next(f for f in files if not (existing[0] / f).is_file())
    raise DataError(f"{existing[0] / missing}: not found (looked in "
                    f"{', '.join(str(c) for c in candidates)}). Planetoid needs "
                    f"{', '.join(files)}; get them from https://github.com/kimiyoung/planetoid "
                    "(data/), the files PyG's Planetoid downloads"
                    + (", or pass download=True" if canonical in registry.REGISTRY else ""))


def planetoid_data(name: str, root: str | Path | None = None, download: bool = False):
    """PyG ``Planetoid`` data (public split masks) from local raw files, never downloading.

    Example:
        >>> planetoid_data("Cora").train_mask.sum().item()
        140
    """
    canonical = _PLANETOID.get(name.lower())
    if canonical is None:
        raise DataError(f"{name}: not a Planetoid data set (Cora, CiteSeer, PubMed)")
    raw = _planetoid_raw(canonical, root, download)
    from torch_geometric.datasets import Planetoid

    with tempfile.TemporaryDirectory(prefix="grsnn-planetoid-") as tmp:
        target = Path(tmp) / canonical / "raw"
        target.mkdir(parents=True)
        for ext in _PLANETOID_EXT:
            fname = f"ind.{canonical.lower()}.{ext}"
            shutil.copyfile(raw / fname, target / fname)
        with contextlib.redirect_stderr(io.StringIO()):   # PyG's "Processing... Done!"
            return Planetoid(tmp, canonical)[0]


def load_planetoid(name: str, root: str | Path | None = None, seed: int = 0,
                   download: bool = False) -> LinkData:
    """Cora, CiteSeer or PubMed for link prediction, from local raw files.

    The raw ``ind.<name>.*`` files are looked up in ``<root>/<Name>/`` (or its ``raw/``);
    by default in the repository's ``datasets/`` (Cora, CiteSeer) and then the data root
    (:func:`~grsnn.data.kg.data_root`). They are copied to a temporary folder for PyG's
    ``Planetoid``, which never downloads. ``download=True`` fetches missing PubMed
    files (checksums verified) into the data root.

    Raises:
        DataError: a raw file is missing (named, e.g. ``ind.pubmed.allx``).

    Example:
        >>> d = load_planetoid("CiteSeer", seed=1)
        >>> d.num_nodes, d.x.shape[1]
        (3327, 3703)
    """
    data = planetoid_data(name, root, download)
    pos, neg = split_edges(data.edge_index, data.num_nodes, seed=seed)
    return LinkData(_PLANETOID[name.lower()], int(data.num_nodes), pos["train"], pos, neg,
                    data.x)


def _open_ogb_dataset(name: str, root: str | Path) -> Any:
    from ogb.linkproppred import PygLinkPropPredDataset  # lazy: importing ogb checks PyPI

    return PygLinkPropPredDataset(name=name, root=str(root))


def _pairs(part: Dict[str, Any], name: str, split: str, negative: bool = False) -> torch.Tensor:
    key = "edge_neg" if negative else "edge"
    if key in part:
        return torch.as_tensor(part[key]).long().t().contiguous()
    if not negative and "source_node" in part:
        return torch.stack([torch.as_tensor(part["source_node"]).long(),
                            torch.as_tensor(part["target_node"]).long()])
    if "head" in part or "relation" in part:
        raise DataError(f"{name} is a knowledge graph (head/relation/tail); LinkData is for "
                        "homogeneous graphs")
    raise DataError(f"{name}: split {split!r} has no {key!r} (keys: {sorted(part)})")


def load_ogbl(name: str, root: str | Path, download: bool = False) -> LinkData:
    """An OGB link-prediction data set (``ogbl-collab``, ``ogbl-ddi``, ``ogbl-citation2``, ...).

    Loads through ``ogb.linkproppred.PygLinkPropPredDataset`` from ``root`` (the folder
    holding ``ogbl_<name>/``); OGB's own splits and negatives are used unchanged, and the
    message-passing graph is ``dataset[0].edge_index`` made undirected. Nothing is
    downloaded unless ``download=True``.

    Raises:
        DataError: the data set folder is missing, or it is a KG data set.

    Example:
        >>> d = load_ogbl("ogbl-collab", "data/ogb")            # doctest: +SKIP
        >>> evaluator = ogb_evaluator("ogbl-collab")            # doctest: +SKIP
    """
    folder = Path(root) / name.replace("-", "_")
    if not download and not folder.is_dir():
        raise DataError(f"{folder}: not found; download {name} once where there is network "
                        f"(load_ogbl(name, root, download=True)) or point root at a copy")
    dataset = _open_ogb_dataset(name, root)
    split, data = dataset.get_edge_split(), dataset[0]
    num_nodes = int(data.num_nodes)
    pos: Dict[str, torch.Tensor] = {}
    neg: Dict[str, torch.Tensor] = {}
    candidates: Dict[str, torch.Tensor] = {}
    for s in ("train", "valid", "test"):
        pos[s] = _pairs(split[s], name, s)
        if s == "train":
            continue
        if "target_node_neg" in split[s]:
            candidates[s] = torch.as_tensor(split[s]["target_node_neg"]).long()
            neg[s] = torch.zeros(2, 0, dtype=torch.long)
        else:
            neg[s] = _pairs(split[s], name, s, negative=True)
    train_edges = undirected_pairs(data.edge_index, num_nodes)
    x = getattr(data, "x", None)
    return LinkData(name, num_nodes, train_edges, pos, neg, x, candidates)


def ogb_evaluator(name: str) -> Any:
    """``ogb.linkproppred.Evaluator(name)``, importing ogb only now.

    Example:
        >>> ev = ogb_evaluator("ogbl-collab")                   # doctest: +SKIP
        >>> ev.eval({"y_pred_pos": p, "y_pred_neg": n})          # doctest: +SKIP
    """
    from ogb.linkproppred import Evaluator

    return Evaluator(name)
