"""Reading tab-separated triple files and turning them into a PyG fact graph."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

import torch
from torch_geometric.data import Data

__all__ = ["DataError", "read_triples", "read_numbered_triples", "Vocab", "fact_graph"]

Triple = Tuple[str, str, str]


class DataError(ValueError):
    """Bad input data; the message names the file and line."""


def read_triples(path: str | Path) -> List[Triple]:
    """Read ``head<TAB>relation<TAB>tail`` lines (blank lines are skipped).

    Raises:
        DataError: missing file, undecodable bytes, a line without exactly three fields,
            or a file with no triple; the message names the file and line.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "train.txt")
        >>> _ = open(p, "w").write("a\\tr\\tb\\n")
        >>> read_triples(p)
        [('a', 'r', 'b')]
    """
    return [triple for _, triple in read_numbered_triples(path)]


def read_numbered_triples(path: str | Path) -> List[Tuple[int, Triple]]:
    """Like :func:`read_triples`, each triple paired with its 1-based line number.

    The line numbers let later checks (an unknown relation, say) name ``file:line``.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "train.txt")
        >>> _ = open(p, "w").write("\\na\\tr\\tb\\n")
        >>> read_numbered_triples(p)
        [(2, ('a', 'r', 'b'))]
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    triples: List[Tuple[int, Triple]] = []
    with path.open("rb") as f:  # decode line by line so a bad byte is reported at its line
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}:{lineno}: not UTF-8 text ({err.reason} at byte "
                                f"{err.start} of the line)") from None
            if lineno == 1:
                line = line.lstrip("\ufeff")  # tolerate a byte-order mark
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 3 or not all(p.strip() for p in parts):
                raise DataError(f"{path}:{lineno}: expected 'head<TAB>relation<TAB>tail', "
                                f"got {len(parts)} field(s): {line[:80]!r}")
            triples.append((lineno, (parts[0].strip(), parts[1].strip(), parts[2].strip())))
    if not triples:
        raise DataError(f"{path}:1: no triples (empty file)")
    return triples


class Vocab:
    """Bidirectional name <-> id map in order of first appearance.

    Example:
        >>> v = Vocab(["x", "y", "x"]); v["y"], v.names
        (1, ['x', 'y'])
    """

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names: List[str] = []
        self.index: Dict[str, int] = {}
        for name in names:
            self.add(name)

    def add(self, name: str) -> int:
        if name not in self.index:
            self.index[name] = len(self.names)
            self.names.append(name)
        return self.index[name]

    def __getitem__(self, name: str) -> int:
        return self.index[name]

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.index


def fact_graph(triples: Sequence[Triple], entities: Vocab, relations: Vocab,
               add: bool = True) -> Tuple[Data, torch.Tensor]:
    """Fact graph with inverse edges and the ``[F, 3]`` (head, tail, relation) ids.

    Edge types: ``r`` for ``h -> t`` and ``r + R`` for the inverse ``t -> h`` where
    ``R = len(relations)`` (so ``relations`` must be complete when ``add`` is False).

    Example:
        >>> ents, rels = Vocab(), Vocab()
        >>> data, ids = fact_graph([("a", "r", "b")], ents, rels)
        >>> data.edge_index.tolist(), data.edge_type.tolist()
        ([[0, 1], [1, 0]], [0, 1])
    """
    rows = []
    for h, r, t in triples:
        if add:
            rows.append((entities.add(h), entities.add(t), relations.add(r)))
        else:
            rows.append((entities[h], entities[t], relations[r]))
    ids = torch.tensor(rows, dtype=torch.long).view(-1, 3)
    h, t, r = ids.t()
    num_rel = len(relations)
    data = Data(edge_index=torch.cat([torch.stack([h, t]), torch.stack([t, h])], dim=1),
                edge_type=torch.cat([r, r + num_rel]), num_nodes=len(entities))
    data.num_relations = 2 * num_rel
    return data, ids
