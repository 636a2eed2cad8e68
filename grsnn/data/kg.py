"""Knowledge graphs in one format: a fact graph with inverse edges plus target triples.

Every KG loader returns :class:`KGData`. Triples are ``(head, tail, relation)`` ids
(NBFNet's order); the fact graph has edge type ``r`` for ``h -> t`` and ``r + R`` for
``t -> h``, so ``KGData.num_relations == 2 * len(relations)``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch_geometric.data import Data

from . import registry
from .triples import DataError, Triple, Vocab, fact_graph, read_numbered_triples

__all__ = ["KGSplit", "KGData", "GRAIL_SPLITS", "data_root", "load_triples_folder",
           "load_fb15k237", "load_wn18rr", "load_grail", "load_kg"]

REPO_ROOT = Path(__file__).resolve().parents[2]
GRAIL_SPLITS: Tuple[str, ...] = tuple(f"fb237_v{i}" for i in range(1, 5)) + tuple(
    f"WN18RR_v{i}" for i in range(1, 5))
_SPLITS = ("train", "valid", "test")


@dataclass
class KGSplit:
    """One split: the graph it is answered on, its targets and its filter.

    Attributes:
        graph: fact graph (``edge_index [2, 2F]``, ``edge_type [2F]``, ``num_nodes``).
        triples: ``[M, 3]`` long (head, tail, relation) targets, relation in ``[0, R)``.
        filter_triples: ``[K, 3]`` every true triple known on this graph (includes
            ``triples``); used to filter rankings.
        entities: entity names; node id = position in this list.
        peer_filter_triples: the filter NBFNet's code uses where it differs from
            ``filter_triples`` (GraIL test: the ``_ind`` train and test triples, not its
            valid ones), for the like-for-like ``nbfnet.hits@10_50``; ``None`` elsewhere.
    """

    graph: Data
    triples: torch.Tensor
    filter_triples: torch.Tensor
    entities: List[str]
    peer_filter_triples: Optional[torch.Tensor] = None


@dataclass
class KGData:
    """A knowledge-graph data set with ``train``/``valid``/``test`` splits.

    Transductive data sets share one graph and entity list across splits; inductive ones
    (GraIL) test on a separate graph with its own entity vocabulary.

    Example:
        >>> kg = load_grail("fb237_v1")
        >>> kg.num_relations, kg.splits["test"].graph is kg.splits["train"].graph
        (360, False)
    """

    name: str
    relations: List[str]
    splits: Dict[str, KGSplit]
    inductive: bool = False

    @property
    def num_relations(self) -> int:
        """Number of edge types, inverses included (``2R``)."""
        return 2 * len(self.relations)

    def edge_type_names(self) -> List[str]:
        """Names of the ``2R`` edge types: the relations, then ``name^-1`` for inverses."""
        return list(self.relations) + [f"{name}^-1" for name in self.relations]

    def __repr__(self) -> str:
        parts = [f"{k}={v.triples.shape[0]}" for k, v in self.splits.items()]
        ents = sorted({len(s.entities) for s in self.splits.values()})
        return (f"KGData({self.name!r}, relations={len(self.relations)}, entities={ents}, "
                f"{', '.join(parts)}, inductive={self.inductive})")


def _encode(rows: Sequence[Tuple[int, Triple]], path: Path, ents: Vocab,
            rels: Vocab) -> torch.Tensor:
    out = []
    for lineno, (h, r, t) in rows:
        if r not in rels:
            raise DataError(f"{path}:{lineno}: relation {r!r} does not occur in the training "
                            f"folder, so no model trained there can score it")
        out.append((ents[h], ents[t], rels[r]))
    return torch.tensor(out, dtype=torch.long).view(-1, 3)


def _vocab(*groups: Sequence[Triple]) -> Tuple[Vocab, Vocab]:
    ents, rels = Vocab(), Vocab()
    for group in groups:
        for h, r, t in group:
            ents.add(h)
            ents.add(t)
            rels.add(r)
    return ents, rels


def _cat(*tensors: torch.Tensor) -> torch.Tensor:
    return torch.cat(tensors, dim=0)


def _read_folder(folder: Path) -> Dict[str, List[Tuple[int, Triple]]]:
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    return {s: read_numbered_triples(folder / f"{s}.txt") for s in _SPLITS}


def _transductive(name: str, folder: Path) -> KGData:
    rows = _read_folder(folder)
    plain = {s: [t for _, t in rows[s]] for s in _SPLITS}
    ents, rels = _vocab(plain["train"], plain["valid"], plain["test"])
    graph, train_ids = fact_graph(plain["train"], ents, rels, add=False)
    ids = {"train": train_ids}
    for s in ("valid", "test"):
        ids[s] = _encode(rows[s], folder / f"{s}.txt", ents, rels)
    everything = _cat(ids["train"], ids["valid"], ids["test"])
    filters = {"train": ids["train"], "valid": everything, "test": everything}
    splits = {s: KGSplit(graph, ids[s], filters[s], ents.names) for s in _SPLITS}
    return KGData(name, rels.names, splits, inductive=False)


def load_triples_folder(folder: str | Path, name: Optional[str] = None) -> KGData:
    """Load a transductive KG from a folder with ``train.txt``, ``valid.txt``, ``test.txt``.

    Each file holds ``head<TAB>relation<TAB>tail`` lines with names as strings. All splits
    share the graph built from ``train.txt``; entity and relation ids cover every split
    (first appearance in train, then valid, then test). Filters: train = train; valid and
    test = train + valid + test.

    Raises:
        DataError: missing file, malformed line, empty file (names file and line).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> rows = {"train": "a\\tr\\tb\\n", "valid": "b\\tr\\tc\\n", "test": "a\\tr\\tc\\n"}
        >>> for split, text in rows.items():
        ...     _ = (d / f"{split}.txt").write_text(text)
        >>> kg = load_triples_folder(d)
        >>> kg.splits["test"].triples.tolist(), kg.splits["train"].entities  # (h, t, r) ids
        ([[0, 2, 0]], ['a', 'b', 'c'])
    """
    folder = Path(folder)
    return _transductive(name or folder.resolve().name, folder)


def data_root(root: str | Path | None = None) -> Path:
    """Where the large data sets live.

    Order: ``root`` if given, else ``$GRSNN_DATA_ROOT``, else ``../shared/datasets``
    next to the repository if it exists, else ``~/.cache/grsnn``.

    Example:
        >>> data_root("/data").as_posix()
        '/data'
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("GRSNN_DATA_ROOT")
    if env:
        return Path(env).expanduser()
    shared = REPO_ROOT.parent / "shared" / "datasets"
    if shared.is_dir():
        return shared
    return Path.home() / ".cache" / "grsnn"


def _registered(key: str, root: str | Path | None, download: bool) -> Path:
    base = data_root(root)
    entry = registry.REGISTRY[key]
    folder = base / entry["folder"]
    missing = [f for f in entry["files"] if not (folder / f).is_file()]
    if missing and download:
        registry.download_dataset(key, base)
    elif missing:
        raise DataError(
            f"{folder / missing[0]}: not found (data root {base}, chosen from the root "
            f"argument, $GRSNN_DATA_ROOT, ../shared/datasets or ~/.cache/grsnn). Pass "
            f"download=True to fetch the sha256-verified files from "
            f"{entry['files'][missing[0]]['urls'][0].rsplit('/', 1)[0]}/, or point "
            f"root/GRSNN_DATA_ROOT at a folder holding {entry['folder']}/"
            f"{{{','.join(entry['files'])}}}")
    return folder


def load_fb15k237(root: str | Path | None = None, download: bool = False) -> KGData:
    """FB15k-237 (Toutanova & Chen split): 272,115 / 17,535 / 20,466 triples.

    Reads ``<root>/FB15k-237/{train,valid,test}.txt`` (see :func:`data_root`); with
    ``download=True`` missing files are fetched and sha256-verified first.

    Example:
        >>> kg = load_fb15k237()                                    # doctest: +SKIP
        >>> len(kg.splits["train"].entities), len(kg.relations)     # doctest: +SKIP
        (14541, 237)
    """
    return _transductive("FB15k-237", _registered("FB15k-237", root, download))


def load_wn18rr(root: str | Path | None = None, download: bool = False) -> KGData:
    """WN18RR: 86,835 / 3,034 / 3,134 triples, 40,943 entities, 11 relations.

    Reads ``<root>/WN18RR/{train,valid,test}.txt`` (see :func:`data_root`); with
    ``download=True`` missing files are fetched and sha256-verified first.

    Example:
        >>> kg = load_wn18rr()                                      # doctest: +SKIP
        >>> kg.num_relations                                        # doctest: +SKIP
        22
    """
    return _transductive("WN18RR", _registered("WN18RR", root, download))


def load_grail(split: str, root: str | Path | None = None) -> KGData:
    """A GraIL inductive split (``fb237_v1..v4``, ``WN18RR_v1..v4``).

    Train and valid are answered on the graph of ``<split>/train.txt`` (valid targets
    from ``<split>/valid.txt``; filters train and train + valid); test is answered on the
    graph of ``<split>_ind/train.txt`` with its own entity list, targets
    ``<split>_ind/test.txt``, filter the whole ``_ind`` folder. ``test_valid`` is answered
    on the test graph too, targets ``<split>_ind/valid.txt``, filter its train and valid
    triples: a validation set drawn like the test targets, for choices (such as the
    evaluation horizon) that depend on the graph answered on. Relations are shared and
    come from the training folder.

    Args:
        split: split name.
        root: folder holding ``<split>/`` and ``<split>_ind/``, or a data root holding
            them under ``grail/`` (default: the repository's ``datasets/grail``).

    Raises:
        DataError: missing folder or file, malformed line, or an ``_ind`` triple whose
            relation is unknown to the training folder (names file and line).

    Example:
        >>> kg = load_grail("WN18RR_v1")
        >>> [len(kg.splits[s].entities) for s in ("train", "test")]
        [2746, 922]
    """
    base = Path(root) if root is not None else REPO_ROOT / "datasets" / "grail"
    if not (base / split).is_dir() and (base / "grail" / split).is_dir():
        base = base / "grail"  # a data root holding grail/ was given
    for folder in (base / split, base / f"{split}_ind"):
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder (GraIL splits: {', '.join(GRAIL_SPLITS)}; "
                            "each needs <split>/ and <split>_ind/ with train/valid/test.txt)")
    tr_dir, ind_dir = base / split, base / f"{split}_ind"
    train = read_numbered_triples(tr_dir / "train.txt")
    valid = read_numbered_triples(tr_dir / "valid.txt")
    ents, rels = _vocab([t for _, t in train], [t for _, t in valid])
    graph, train_ids = fact_graph([t for _, t in train], ents, rels, add=False)
    valid_ids = _encode(valid, tr_dir / "valid.txt", ents, rels)

    ind = _read_folder(ind_dir)
    ind_ents = Vocab()
    for s in _SPLITS:  # encode first: unknown relations raise with file:line
        for _, (h, _, t) in ind[s]:
            ind_ents.add(h)
            ind_ents.add(t)
    ind_ids = {s: _encode(ind[s], ind_dir / f"{s}.txt", ind_ents, rels) for s in _SPLITS}
    ind_graph, _ = fact_graph([t for _, t in ind["train"]], ind_ents, rels, add=False)

    splits = {
        "train": KGSplit(graph, train_ids, train_ids, ents.names),
        "valid": KGSplit(graph, valid_ids, _cat(train_ids, valid_ids), ents.names),
        "test": KGSplit(ind_graph, ind_ids["test"],
                        _cat(ind_ids["train"], ind_ids["valid"], ind_ids["test"]), ind_ents.names,
                        peer_filter_triples=_cat(ind_ids["train"], ind_ids["test"])),
        # the benchmark's own validation targets on the test graph (`_ind/valid.txt`,
        # held out of its facts like the test targets); filter without the test targets,
        # so that a choice made on it uses no test label
        "test_valid": KGSplit(ind_graph, ind_ids["valid"], _cat(ind_ids["train"], ind_ids["valid"]),
                              ind_ents.names),
    }
    return KGData(split, rels.names, splits, inductive=True)


def _norm(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def load_kg(name: str, root: str | Path | None = None) -> KGData:
    """Load a KG by name or folder path.

    ``fb15k237``/``FB15k-237``, ``wn18rr``/``WN18RR`` (``root`` = data root), a GraIL
    split such as ``fb237_v1`` (``root`` = the folder of GraIL splits), or a folder with
    ``train.txt``, ``valid.txt``, ``test.txt``.

    Example:
        >>> load_kg("fb237_v1").name
        'fb237_v1'
    """
    key = _norm(name)
    if key == "fb15k237":
        return load_fb15k237(root)
    if key == "wn18rr":
        return load_wn18rr(root)
    for split in GRAIL_SPLITS:
        if key == _norm(split):
            return load_grail(split, root)
    if Path(name).is_dir():
        return load_triples_folder(name)
    raise DataError(f"{name}: unknown data set and no such folder (known: fb15k237, wn18rr, "
                    f"{', '.join(GRAIL_SPLITS)}, or a folder with train/valid/test.txt)")

