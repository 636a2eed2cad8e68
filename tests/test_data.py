"""Data layer: every loader on the shipped files and on tiny fixtures written here."""
from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import types
import zipfile
from pathlib import Path

import networkx as nx
import pytest
import torch

from grsnn.data import (GRAIL_SPLITS, REGISTRY, DataError, LinkData, data_root, download_dataset,
                        from_networkx, load_fb15k237, load_grail, load_kg, load_ogbl,
                        load_planetoid, load_triples_folder, load_wn18rr, ogb_evaluator)
from grsnn.data import homogeneous, registry

REPO = Path(__file__).resolve().parents[1]
SPLITS = ("train", "valid", "test")

# split: (train, valid, entities seen) of <split>/ and (train, valid, test, entities) of _ind
GRAIL = {
    "WN18RR_v1": (5410, 630, 2746, 9, 1618, 185, 188, 922),
    "WN18RR_v2": (15262, 1838, 6954, 10, 4011, 411, 441, 2757),
    "WN18RR_v3": (25901, 3097, 12078, 11, 6327, 538, 605, 5084),
    "WN18RR_v4": (7940, 934, 3861, 9, 12334, 1394, 1429, 7084),
    "fb237_v1": (4245, 489, 1594, 180, 1993, 206, 205, 1093),
    "fb237_v2": (9739, 1166, 2608, 200, 4145, 469, 478, 1660),
    "fb237_v3": (17986, 2194, 3668, 215, 7406, 866, 865, 2501),
    "fb237_v4": (27203, 3352, 4707, 219, 11714, 1416, 1424, 3051),
}


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def triples_folder(folder: Path, train: str, valid: str, test: str) -> Path:
    for name, text in (("train", train), ("valid", valid), ("test", test)):
        write(folder / f"{name}.txt", text)
    return folder


def names(kg_split, row: torch.Tensor, relations: list) -> tuple:
    h, t, r = row.tolist()
    return kg_split.entities[h], relations[r], kg_split.entities[t]


# ---------------------------------------------------------------- GraIL (shipped)
@pytest.mark.parametrize("split", sorted(GRAIL))
def test_grail_counts_and_vocabularies(split: str) -> None:
    tr, va, ents, rels, itr, iva, ite, ients = GRAIL[split]
    kg = load_grail(split)
    assert kg.inductive and kg.name == split and len(kg.relations) == rels
    assert kg.num_relations == 2 * rels
    train, valid, test = kg.splits["train"], kg.splits["valid"], kg.splits["test"]
    assert (train.triples.shape[0], valid.triples.shape[0], test.triples.shape[0]) == (tr, va, ite)
    assert train.filter_triples.shape[0] == tr and valid.filter_triples.shape[0] == tr + va
    assert test.filter_triples.shape[0] == itr + iva + ite
    assert train.graph is valid.graph and test.graph is not train.graph
    # the _ind valid targets on the test graph, filtered without any test target
    tv = kg.splits["test_valid"]
    assert tv.graph is test.graph and tv.entities is test.entities
    assert tv.triples.shape[0] == iva
    assert torch.equal(tv.triples, test.filter_triples[itr:itr + iva])
    assert torch.equal(tv.filter_triples, test.filter_triples[:itr + iva])
    assert len(train.entities) == ents and len(test.entities) == ients
    assert train.graph.num_nodes == ents and test.graph.num_nodes == ients
    assert train.graph.edge_index.shape[1] == 2 * tr and test.graph.edge_index.shape[1] == 2 * itr
    for s in (train, valid, test):
        assert s.triples.dtype == torch.long and int(s.triples[:, 2].max()) < rels
        assert int(s.graph.edge_type.max()) < 2 * rels
        assert int(s.triples[:, :2].max()) < len(s.entities)
    # test ids index the _ind vocabulary: decode the first test line by name
    first = (REPO / "datasets" / "grail" / f"{split}_ind" / "test.txt").read_text().split("\n")[0]
    assert names(test, test.triples[0], kg.relations) == tuple(first.split("\t"))
    overlap = set(train.entities) & set(test.entities)
    assert len(overlap) == (8 if split == "WN18RR_v3" else 0)  # see datasets/README.md


def test_load_kg_dispatch_grail_names() -> None:
    assert load_kg("WN18RR_V1").name == "WN18RR_v1"
    assert set(GRAIL) == set(GRAIL_SPLITS)
    with pytest.raises(DataError, match="unknown data set"):
        load_kg("no-such-thing")


# ------------------------------------------------------------- FB15k-237 / WN18RR (stand-in root)
# The real files (FB15k-237: 272,115 / 17,535 / 20,466 triples, 14,541 entities, 237
# relations; WN18RR: 86,835 / 3,034 / 3,134, 40,943 entities, 11 relations) are verified by
# their sha256 when downloaded (registry tests below). Here a tiny data root with the same
# folder layout and the same line format is made in the test, so the loaders are exercised
# in a clone with nothing beside it.
FB_ROWS = {
    "train": ["/m/027rn\t/location/country/form_of_government\t/m/06cx9",
              "/m/017dcd\t/tv/tv_program/regular_cast\t/m/06v8s0",
              "/m/07s9rl0\t/media_common/netflix_genre/titles\t/m/0170z3",
              "/m/06cx9\t/location/country/form_of_government\t/m/017dcd",
              "/m/0170z3\t/tv/tv_program/regular_cast\t/m/027rn",
              "/m/06v8s0\t/media_common/netflix_genre/titles\t/m/07s9rl0"],
    "valid": ["/m/027rn\t/tv/tv_program/regular_cast\t/m/07s9rl0",
              "/m/06cx9\t/media_common/netflix_genre/titles\t/m/0170z3"],
    "test": ["/m/017dcd\t/location/country/form_of_government\t/m/0170z3",
             "/m/06v8s0\t/tv/tv_program/regular_cast\t/m/027rn"],
}
WN_ROWS = {
    "train": ["00260881\t_hypernym\t00260622", "01332730\t_derivationally_related_form\t03122748",
              "06066555\t_derivationally_related_form\t00645415", "00260622\t_also_see\t01332730",
              "03122748\t_hypernym\t06066555"],
    "valid": ["00645415\t_hypernym\t00260881"],
    "test": ["00260881\t_also_see\t03122748", "01332730\t_hypernym\t00645415"],
}


def standin_root(tmp_path: Path) -> Path:
    """A data root laid out like ``../shared/datasets``: ``FB15k-237/`` (with the extra files
    of the canonical archive, which the loader ignores), ``WN18RR/`` and ``grail/<split>``
    (the shipped fb237_v1 split)."""
    root = tmp_path / "datasets"
    for folder, rows in (("FB15k-237", FB_ROWS), ("WN18RR", WN_ROWS)):
        for split in SPLITS:
            write(root / folder / f"{split}.txt", "\n".join(rows[split]) + "\n")
    write(root / "FB15k-237" / "entities.dict", "0\t/m/027rn\n")
    write(root / "FB15k-237" / "README.txt", "stand-in\n")
    for part in ("fb237_v1", "fb237_v1_ind"):
        shutil.copytree(REPO / "datasets" / "grail" / part, root / "grail" / part)
    return root


def test_fb15k237_from_data_root(tmp_path: Path) -> None:
    root = standin_root(tmp_path)
    kg = load_fb15k237(root)
    assert [kg.splits[s].triples.shape[0] for s in SPLITS] == [6, 2, 2]
    assert len(kg.splits["train"].entities) == 6 and len(kg.relations) == 3
    assert kg.splits["train"].entities[0] == "/m/027rn"
    g = kg.splits["test"].graph
    assert g is kg.splits["train"].graph and g.edge_index.shape[1] == 2 * 6
    assert kg.num_relations == 6 and g.num_relations == 6
    assert kg.splits["test"].filter_triples.shape[0] == 6 + 2 + 2
    assert names(kg.splits["test"], kg.splits["test"].triples[1], kg.relations) == \
        tuple(FB_ROWS["test"][1].split("\t"))


def test_wn18rr_from_data_root(tmp_path: Path) -> None:
    root = standin_root(tmp_path)
    kg = load_kg("wn18rr", root)
    assert [kg.splits[s].triples.shape[0] for s in SPLITS] == [5, 1, 2]
    assert len(kg.splits["valid"].entities) == 6 and len(kg.relations) == 3
    assert kg.splits["train"].entities[0] == "00260881"  # ids stay names: leading zeros kept
    assert kg.splits["train"].filter_triples.shape[0] == 5
    assert load_kg("fb237_v1", root).splits["test"].triples.shape[0] == 205  # root/grail


def test_data_root_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert data_root(tmp_path) == tmp_path
    monkeypatch.setenv("GRSNN_DATA_ROOT", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    with pytest.raises(DataError, match=r"FB15k-237.train\.txt: not found.*download=True"):
        load_fb15k237()


# ---------------------------------------------------------------- user folders and bad input
def test_user_folder_semantics(tmp_path: Path) -> None:
    folder = triples_folder(tmp_path / "mine", "a\tr\tb\nb\ts\tc\n", "a\ts\tc\n",
                            "c\tq\td\n\na\tr\tb\n")
    kg = load_kg(str(folder))
    assert kg.name == "mine" and not kg.inductive
    assert kg.relations == ["r", "s", "q"] and kg.splits["train"].entities == ["a", "b", "c", "d"]
    train, test = kg.splits["train"], kg.splits["test"]
    assert all(kg.splits[s].graph is train.graph for s in ("valid", "test"))
    assert train.graph.num_nodes == 4 and kg.num_relations == 6  # d and q only occur in test
    assert train.graph.edge_index.tolist() == [[0, 1, 1, 2], [1, 2, 0, 1]]
    assert train.graph.edge_type.tolist() == [0, 1, 3, 4]
    assert test.triples.tolist() == [[2, 3, 2], [0, 1, 0]]
    assert train.filter_triples.tolist() == [[0, 1, 0], [1, 2, 1]]
    assert test.filter_triples.shape[0] == 5
    assert kg.splits["valid"].filter_triples is test.filter_triples


@pytest.mark.parametrize("bad, where", [
    ({"train.txt": "a\tr\tb\nb\tc\n"}, "train.txt:2"),
    ({"train.txt": "a\tr\tb\tx\n"}, "train.txt:1"),
    ({"valid.txt": ""}, "valid.txt:1"),
    ({"test.txt": b"a\tr\tb\n\nb\tr\t\xff\xfe\n"}, "test.txt:3"),
    ({"train.txt": None}, "train.txt: no such file"),
])
def test_malformed_files_name_file_and_line(tmp_path: Path, bad: dict, where: str) -> None:
    folder = triples_folder(tmp_path / "f", "a\tr\tb\n", "a\tr\tb\n", "a\tr\tb\n")
    for name, text in bad.items():
        if text is None:
            (folder / name).unlink()
        else:
            write(folder / name, text)
    with pytest.raises(DataError, match=where.replace(".", r"\.")) as err:
        load_triples_folder(folder)
    assert str(folder) in str(err.value)


def test_inductive_fixture_and_unknown_relation(tmp_path: Path) -> None:
    triples_folder(tmp_path / "toy", "a\tr\tb\nb\ts\tc\n", "a\ts\tc\n", "a\tr\tc\n")
    ind = triples_folder(tmp_path / "toy_ind", "x\ts\ty\n", "y\tr\tx\n", "x\tr\ty\ny\ts\tz\n")
    kg = load_grail("toy", tmp_path)
    test = kg.splits["test"]
    assert kg.relations == ["r", "s"] and test.entities == ["x", "y", "z"]  # z only in test
    assert test.graph.num_nodes == 3 and test.graph.edge_type.tolist() == [1, 3]
    assert test.triples.tolist() == [[0, 1, 0], [1, 2, 1]] and test.filter_triples.shape[0] == 4
    assert kg.splits["valid"].filter_triples.tolist() == [[0, 1, 0], [1, 2, 1], [0, 2, 1]]
    tv = kg.splits["test_valid"]     # _ind valid on the test graph; filter _ind train + valid
    assert tv.graph is test.graph and tv.triples.tolist() == [[1, 0, 0]]
    assert tv.filter_triples.tolist() == [[0, 1, 1], [1, 0, 0]]
    write(ind / "test.txt", "x\tr\ty\ny\tnever_trained\tx\n")
    with pytest.raises(DataError, match=r"toy_ind.test\.txt:2: relation 'never_trained'"):
        load_grail("toy", tmp_path)
    with pytest.raises(DataError, match="no such folder"):
        load_grail("fb237_v9")


# ---------------------------------------------------------------- networkx
def test_from_networkx_directed_undirected_and_errors() -> None:
    G = nx.DiGraph(name="toy")
    G.add_edge("a", "b", relation="likes")
    G.add_edge("b", "a", relation="hates")
    G.add_node("lonely")
    kg = from_networkx(G)
    train = kg.splits["train"]
    assert kg.name == "toy" and train.entities == ["a", "b", "lonely"]
    assert kg.relations == ["likes", "hates"] and train.triples.tolist() == [[0, 1, 0], [1, 0, 1]]
    assert train.graph.num_nodes == 3 and train.graph.edge_type.tolist() == [0, 1, 2, 3]
    assert kg.splits["valid"].triples.shape == (0, 3) and kg.splits["test"].triples.shape == (0, 3)

    U = nx.Graph()
    U.add_edge(1, 2, kind="r")
    U.add_edge(2, 3, kind="r")
    ukg = from_networkx(U, relation_attr="kind")
    assert ukg.splits["train"].triples.shape[0] == 2  # each undirected edge once
    assert ukg.splits["train"].graph.edge_index.shape[1] == 4 and ukg.num_relations == 2

    M = nx.MultiDiGraph()
    M.add_edge("p", "q", relation="x")
    M.add_edge("p", "q", relation="y")
    assert from_networkx(M).splits["train"].triples.tolist() == [[0, 1, 0], [0, 1, 1]]

    G.add_edge("a", "lonely", weight=2)
    with pytest.raises(ValueError, match=r"edge \('a', 'lonely'\) has no 'relation'"):
        from_networkx(G)


# ---------------------------------------------------------------- download / verify / extract
def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_good_bad_and_mirror(tmp_path: Path) -> None:
    good = write(tmp_path / "src" / "good", b"a\tr\tb\n")
    bad = write(tmp_path / "src" / "bad", b"evil")
    spec = {"urls": [bad.as_uri(), good.as_uri()], "sha256": sha(good.read_bytes())}
    reg = {"tiny": {"folder": "tiny", "files": {"train.txt": spec}}}
    folder = download_dataset("tiny", tmp_path / "root", reg)  # first URL fails its checksum
    assert (folder / "train.txt").read_bytes() == good.read_bytes()

    reg["tiny"]["files"]["valid.txt"] = {"urls": [bad.as_uri()], "sha256": sha(b"other")}
    with pytest.raises(DataError, match="sha256 mismatch"):
        download_dataset("tiny", tmp_path / "root", reg)
    assert sorted(p.name for p in folder.iterdir()) == ["train.txt"]  # no partial file left

    blob = hashlib.sha1(b"blob 4\0evil").hexdigest()
    registry.fetch_verified([bad.as_uri()], tmp_path / "blob", git_blob=blob)
    with pytest.raises(DataError, match="download failed"):
        registry.fetch_verified([(tmp_path / "missing").as_uri()], tmp_path / "x", sha(b""))


def test_loader_download_path_with_patched_registry(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    texts = {"train.txt": b"a\tr\tb\nb\tr\tc\n", "valid.txt": b"a\tr\tc\n",
             "test.txt": b"c\tr\ta\n"}
    files = {n: {"urls": [write(tmp_path / "src" / n, t).as_uri()], "sha256": sha(t)}
             for n, t in texts.items()}
    monkeypatch.setitem(REGISTRY, "WN18RR", dict(REGISTRY["WN18RR"], files=files))
    with pytest.raises(DataError, match=r"WN18RR.train\.txt: not found"):
        load_wn18rr(tmp_path / "root")
    kg = load_wn18rr(tmp_path / "root", download=True)
    assert kg.splits["train"].triples.shape[0] == 2 and len(kg.splits["test"].entities) == 3


def make_tar(path: Path, members: dict) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_archive_extract_and_path_traversal(tmp_path: Path) -> None:
    arch = make_tar(tmp_path / "ok.tar.gz", {"KG/train.txt": b"a\tr\tb\n", "KG/README": b"hi"})
    reg = {"kg": {"folder": "kg",
                  "archive": {"urls": [arch.as_uri()], "sha256": sha(arch.read_bytes())},
                  "files": {"train.txt": {"member": "KG/train.txt", "sha256": sha(b"a\tr\tb\n")}}}}
    folder = download_dataset("kg", tmp_path / "root", reg)
    assert sorted(p.name for p in folder.iterdir()) == ["train.txt"]  # temp extraction removed

    evil = make_tar(tmp_path / "evil.tar.gz", {"ok.txt": b"x", "../escaped.txt": b"pwned"})
    with pytest.raises(DataError, match=r"unsafe archive member '\.\./escaped\.txt'"):
        registry.safe_extract(evil, tmp_path / "out" / "inner")
    assert not (tmp_path / "out" / "escaped.txt").exists()
    absolute = make_tar(tmp_path / "abs.tar", {"/tmp/abs_escape.txt": b"x"})
    with pytest.raises(DataError, match="unsafe"):
        registry.safe_extract(absolute, tmp_path / "out2")
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("../../zip_escape.txt", b"pwned")
    with pytest.raises(DataError, match="unsafe"):
        registry.safe_extract(tmp_path / "evil.zip", tmp_path / "out3" / "a")
    assert not (tmp_path / "zip_escape.txt").exists()
    reg["kg"]["archive"]["urls"] = [evil.as_uri()]
    reg["kg"]["archive"]["sha256"] = sha(evil.read_bytes())
    with pytest.raises(DataError, match="unsafe"):
        download_dataset("kg", tmp_path / "root2", reg)


# ---------------------------------------------------------------- Planetoid
@pytest.fixture(scope="module")
def cora() -> LinkData:
    return load_planetoid("Cora", seed=0)


@pytest.mark.parametrize("name, nodes, edges, feats", [("Cora", 2708, 5278, 1433),
                                                       ("CiteSeer", 3327, 4552, 3703)])
def test_planetoid_split_and_strict_negatives(name: str, nodes: int, edges: int, feats: int,
                                              cora: LinkData) -> None:
    d = cora if name == "Cora" else load_planetoid(name)
    assert (d.name, d.num_nodes, tuple(d.x.shape)) == (name, nodes, (nodes, feats))
    n_valid, n_test = int(0.05 * edges), int(0.10 * edges)
    sizes = [d.pos[s].shape[1] for s in ("train", "valid", "test")]
    assert sizes == [edges - n_valid - n_test, n_valid, n_test] and d.train_edges is d.pos["train"]
    keys = {s: set((d.pos[s][0] * nodes + d.pos[s][1]).tolist()) for s in d.pos}
    assert sum(len(k) for k in keys.values()) == edges and len(set.union(*keys.values())) == edges
    assert bool((d.train_edges[0] < d.train_edges[1]).all())
    neg = torch.cat([d.neg["valid"], d.neg["test"]], dim=1)
    assert all(d.neg[s].shape == d.pos[s].shape for s in ("valid", "test"))
    neg_keys = (neg.min(0).values * nodes + neg.max(0).values).tolist()
    assert len(set(neg_keys)) == neg.shape[1] and bool((neg[0] != neg[1]).all())
    assert not set(neg_keys) & set.union(*keys.values())  # never an edge of the full graph
    n_train = edges - n_valid - n_test
    assert repr(d) == (f"LinkData({name!r}, nodes={nodes}, train_edges={n_train}, "
                       f"valid={n_valid}, test={n_test}, features={feats})")


def test_planetoid_determinism_and_missing_file(tmp_path: Path, cora: LinkData) -> None:
    again, other = load_planetoid("cora", seed=0), load_planetoid("Cora", seed=1)
    for s in ("valid", "test"):
        assert torch.equal(again.pos[s], cora.pos[s]) and torch.equal(again.neg[s], cora.neg[s])
    assert not torch.equal(other.pos["test"], cora.pos["test"])
    for ext in ("x", "tx", "y", "ty", "ally", "graph", "test.index"):
        write(tmp_path / "PubMed" / f"ind.pubmed.{ext}", b"")
    with pytest.raises(DataError, match=r"PubMed.ind\.pubmed\.allx: not found"):
        load_planetoid("PubMed", root=tmp_path)


# ---------------------------------------------------------------- OGB (no network: a fake data set)
class FakeOGB:
    def __init__(self, split: dict, num_nodes: int = 5) -> None:
        self.split = split
        self.data = types.SimpleNamespace(num_nodes=num_nodes, x=torch.ones(num_nodes, 2),
                                          edge_index=torch.tensor([[0, 1, 2, 1], [1, 0, 1, 2]]))

    def get_edge_split(self) -> dict:
        return self.split

    def __getitem__(self, i: int) -> types.SimpleNamespace:
        return self.data


def test_ogbl_conversion_with_fake_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    e = lambda rows: torch.tensor(rows)  # noqa: E731  [k, 2] as OGB stores them
    collab = {"train": {"edge": e([[0, 1], [2, 1]])},
              "valid": {"edge": e([[0, 2]]), "edge_neg": e([[3, 4], [0, 4]])},
              "test": {"edge": e([[1, 3]]), "edge_neg": e([[2, 4]])}}
    citation = {"train": {"source_node": e([0, 2]), "target_node": e([1, 1])},
                "valid": {"source_node": e([3]), "target_node": e([4]),
                          "target_node_neg": e([[0, 1, 2]])},
                "test": {"source_node": e([4]), "target_node": e([0]),
                         "target_node_neg": e([[1, 2, 3]])}}
    fakes = {"ogbl-collab": FakeOGB(collab), "ogbl-citation2": FakeOGB(citation),
             "ogbl-wikikg2": FakeOGB({"train": {"head": e([0]), "relation": e([0]),
                                                "tail": e([1])}})}
    monkeypatch.setattr(homogeneous, "_open_ogb_dataset", lambda name, root: fakes[name])
    with pytest.raises(DataError, match="ogbl_collab: not found"):
        load_ogbl("ogbl-collab", tmp_path)
    for name in fakes:
        (tmp_path / name.replace("-", "_")).mkdir()
    d = load_ogbl("ogbl-collab", tmp_path)
    assert d.num_nodes == 5 and d.train_edges.tolist() == [[0, 1], [1, 2]] and d.x.shape == (5, 2)
    assert d.pos["valid"].tolist() == [[0], [2]] and d.neg["valid"].tolist() == [[3, 0], [4, 4]]
    assert d.pos["train"].tolist() == [[0, 2], [1, 1]] and not d.neg_candidates
    c = load_ogbl("ogbl-citation2", tmp_path)
    assert c.pos["test"].tolist() == [[4], [0]]
    assert c.neg_candidates["valid"].tolist() == [[0, 1, 2]]
    assert c.neg["test"].shape == (2, 0)
    with pytest.raises(DataError, match="knowledge graph"):
        load_ogbl("ogbl-wikikg2", tmp_path)


def test_ogb_is_imported_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("ogb.linkproppred")
    fake.Evaluator = lambda name: ("evaluator", name)
    monkeypatch.setitem(sys.modules, "ogb", types.ModuleType("ogb"))
    monkeypatch.setitem(sys.modules, "ogb.linkproppred", fake)
    assert ogb_evaluator("ogbl-collab") == ("evaluator", "ogbl-collab")
    code = "import sys, grsnn.data; assert 'ogb' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
