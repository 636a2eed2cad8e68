"""Registry of the data sets too large to ship, and verified downloading.

``REGISTRY`` is a plain dict: data set name -> folder, files (each with candidate URLs
and a sha256, or a git blob id where only that is known), source, licence and citation.
URLs are pinned to a commit first, then the branch URL PyTorch Geometric downloads from;
whichever answers, the file is accepted only if its checksum matches.

Downloading writes to a temporary file next to the destination, verifies it and renames
it into place atomically, so an interrupted or corrupted download never leaves a file
that a later run would trust. Archives are extracted only after every member path has
been checked to stay inside the extraction folder (no ``..``, absolute paths or links).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from .triples import DataError

__all__ = ["REGISTRY", "download_dataset", "fetch_verified", "check_file", "safe_extract", "fetch"]

_MS = "https://raw.githubusercontent.com/MichSchli/RelationPrediction/{ref}/data/FB-Toutanova/"
_MS_REF = "98dcdf4eaa41b9ccb65b17b76e2d370e6b9b5e3b"
_WN = ("https://raw.githubusercontent.com/villmow/datasets_knowledge_embedding/{ref}"
       "/WN18RR/original/")
_WN_REF = "9e392453d6804d1f51c13e5650ae58ed48b638d5"
_PL = "https://raw.githubusercontent.com/kimiyoung/planetoid/{ref}/data/"
_PL_REF = "af6abf468a772cc055bec88c52e4d6f51b7c37e3"

_PUBMED = {  # ind.pubmed.<ext>: checksum kind and value (for allx only its git blob id is known)
    "x": ("sha256", "fbe9cb5c47200d1b7769a26e579be3b7130b556831f9d850e77c4c74f2599b33"),
    "tx": ("sha256", "4eb5f5d0f30f26497eb0ac6ac9719d09c67e284f1ed0385c93f3ef27a671da3d"),
    "allx": ("git_blob", "3b86bccf08111c37c632a9dd8ab63db25ea76361"),
    "y": ("sha256", "e6c807633307a07ed659249006536a147c7999c797f11a2560752990181b41b3"),
    "ty": ("sha256", "ee2e0d4819d9fbcc403689c3bf2e49face401b605932f093bc58ab6461130fdd"),
    "ally": ("sha256", "0c37bbe3b5014ec365e9d393cf4791925e5ed94fb194305d74f064a8d7b50f0e"),
    "graph": ("sha256", "5b89f0036ca22909471f1e6558eb42fa06e0c730a577bde5b058b40638f81dc9"),
    "test.index": ("sha256", "b101d421688bbaecbd82e8a18f1e282378d6830f3a37666f28ebc47f844341b5"),
}


def _urls(base: str, ref: str, name: str) -> List[str]:
    return [base.format(ref=ref) + name, base.format(ref="master") + name]


REGISTRY: Dict[str, Dict[str, Any]] = {
    "FB15k-237": {
        "folder": "FB15k-237",
        "files": {
            name: {"urls": _urls(_MS, _MS_REF, name), "sha256": sha}
            for name, sha in [
                ("train.txt", "6e4c2782169af21e9743f3b1d200886f5d595bf6bc504ec1351720949c5cdfae"),
                ("valid.txt", "cf6309010852f6a8d47a45df830a426415d1ee6f7a3970a8376ff1fb81db4a5c"),
                ("test.txt", "5711cf41623ceb4eacc50eb6108a3ca6565c7492e3caaf82a3e355cc660d1574"),
            ]
        },
        "source": "MichSchli/RelationPrediction@98dcdf4 data/FB-Toutanova/ (the files PyG's "
                  "RelLinkPredDataset downloads; byte-identical to FB15k-237.tar.gz of "
                  "TimDettmers/ConvE@f3c0eb2)",
        "licence": "source repositories MIT (code); no separate data licence stated",
        "citation": "Toutanova et al., Representing text for joint embedding of text and "
                    "knowledge bases, EMNLP 2015; Toutanova & Chen, Observed versus latent "
                    "features for knowledge base and text inference, CVSC 2015",
    },
    "WN18RR": {
        "folder": "WN18RR",
        "files": {
            name: {"urls": _urls(_WN, _WN_REF, name), "sha256": sha}
            for name, sha in [
                ("train.txt", "038612e783c215ee5f3ca9fbfca27b8d0739be1028fe4ee7c174aecf0b83d5df"),
                ("valid.txt", "453ce7202afa58094a04d2b1560ee2b02660f1c260b32ce6651c8ccedd1028ab"),
                ("test.txt", "0383bceaaa1096cf3c03ec021ed0048068e2355dbfc0239b292cefdac821cec5"),
            ]
        },
        "source": "villmow/datasets_knowledge_embedding@9e39245 WN18RR/original/ (the files "
                  "PyG's WordNet18RR downloads; byte-identical to WN18RR.tar.gz of "
                  "TimDettmers/ConvE@f3c0eb2)",
        "licence": "ConvE repository MIT; derived from WordNet 3.0 (WordNet 3.0 licence)",
        "citation": "Dettmers et al., Convolutional 2D Knowledge Graph Embeddings, AAAI 2018",
    },
    "PubMed": {
        "folder": "PubMed",
        "files": {
            f"ind.pubmed.{ext}": {"urls": _urls(_PL, _PL_REF, f"ind.pubmed.{ext}"), kind: digest}
            for ext, (kind, digest) in _PUBMED.items()
        },
        "source": "kimiyoung/planetoid@af6abf4 data/ (where PyG's Planetoid downloads from)",
        "licence": "MIT (Copyright (c) 2016 Zhilin Yang)",
        "citation": "Yang, Cohen & Salakhutdinov, Revisiting Semi-Supervised Learning with "
                    "Graph Embeddings, ICML 2016",
    },
}


def fetch(url: str, dest: Path) -> None:
    """Copy the bytes at ``url`` (``https://``, ``file://``, ...) to ``dest``.

    The single network entry point; tests replace it.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "a").write_text("x")
        1
        >>> fetch((d / "a").as_uri(), d / "b"); (d / "b").read_text()
        'x'
    """
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)


def check_file(path: Path, sha256: Optional[str] = None, git_blob: Optional[str] = None) -> None:
    """Raise :class:`DataError` unless ``path`` has the given sha256 and/or git blob id.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "e"; _ = p.write_bytes(b"")
        >>> check_file(p, git_blob="e69de29bb2d1d6434b8b29ae775ad8c2e48c5391")
    """
    if sha256 is None and git_blob is None:
        raise DataError(f"{path}: no checksum to verify against")
    h256 = hashlib.sha256()
    blob = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h256.update(chunk)
            blob.update(chunk)
    if sha256 is not None and h256.hexdigest() != sha256.lower():
        raise DataError(f"{path}: sha256 mismatch (expected {sha256}, got {h256.hexdigest()})")
    if git_blob is not None and blob.hexdigest() != git_blob.lower():
        raise DataError(f"{path}: git blob id mismatch (expected {git_blob}, "
                        f"got {blob.hexdigest()})")


def fetch_verified(urls: List[str], dest: Path, sha256: Optional[str] = None,
                   git_blob: Optional[str] = None) -> Path:
    """Download the first of ``urls`` whose bytes verify, atomically, to ``dest``.

    Raises:
        DataError: no URL gave a verified file (every reason is listed).

    Example:
        >>> import tempfile, pathlib, hashlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a").write_bytes(b"hi")
        >>> sha = hashlib.sha256(b"hi").hexdigest()
        >>> fetch_verified([(d / "a").as_uri()], d / "b", sha).read_bytes()
        b'hi'
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            fetch(url, tmp)
            check_file(tmp, sha256, git_blob)
            os.replace(tmp, dest)
            return dest
        except (OSError, DataError) as err:
            errors.append(f"{url}: {err}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DataError(f"{dest}: download failed: " + "; ".join(errors))


def _inside(root: Path, member: str) -> bool:
    target = (root / member).resolve()
    return target == root or root in target.parents


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a tar (any compression) or zip archive into ``dest`` after checking it.

    Raises:
        DataError: a member would land outside ``dest`` (absolute path, ``..``) or is a
            link or device; nothing is extracted then.

    Example:
        >>> import tempfile, pathlib, tarfile
        >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "f.txt").write_text("x")
        >>> with tarfile.open(d / "a.tar", "w") as t: t.add(d / "f.txt", arcname="k/f.txt")
        >>> safe_extract(d / "a.tar", d / "out"); (d / "out" / "k" / "f.txt").read_text()
        'x'
    """
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                if not (m.isfile() or m.isdir()) or not _inside(root, m.name):
                    raise DataError(f"{archive}: unsafe archive member {m.name!r}")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(root, members=members, filter="data")
            else:  # pragma: no cover - Python without extraction filters
                tar.extractall(root, members=members)
    elif zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not _inside(root, info.filename) or (info.external_attr >> 28) == 0xA:
                    raise DataError(f"{archive}: unsafe archive member {info.filename!r}")
            zf.extractall(root)
    else:
        raise DataError(f"{archive}: not a tar or zip archive")


def download_dataset(name: str, root: str | Path,
                     registry: Optional[Dict[str, Dict[str, Any]]] = None) -> Path:
    """Fetch the missing files of registry entry ``name`` into ``root/<folder>/``.

    Files already present are kept as they are. An entry may instead name an
    ``archive`` (``{"urls": [...], "sha256": ...}``) whose members (``files[f]["member"]``)
    are extracted safely and verified one by one.

    Example:
        >>> import tempfile, pathlib, hashlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "src").write_bytes(b"a\\tr\\tb\\n")
        >>> digest = hashlib.sha256(b"a\\tr\\tb\\n").hexdigest()
        >>> reg = {"tiny": {"folder": "tiny", "files": {"train.txt": {
        ...     "urls": [(d / "src").as_uri()], "sha256": digest}}}}
        >>> download_dataset("tiny", d, reg).name
        'tiny'
    """
    registry = REGISTRY if registry is None else registry
    if name not in registry:
        raise DataError(f"no registry entry {name!r}; known: {sorted(registry)}")
    entry = registry[name]
    folder = Path(root) / entry["folder"]
    folder.mkdir(parents=True, exist_ok=True)
    missing = {f: spec for f, spec in entry["files"].items() if not (folder / f).is_file()}
    if not missing:
        return folder
    if "archive" not in entry:
        for fname, spec in missing.items():
            fetch_verified(spec["urls"], folder / fname, spec.get("sha256"), spec.get("git_blob"))
        return folder
    with tempfile.TemporaryDirectory(prefix=".extract-", dir=folder) as tmp:
        archive = fetch_verified(entry["archive"]["urls"], Path(tmp) / "archive",
                                 entry["archive"].get("sha256"), entry["archive"].get("git_blob"))
        out = Path(tmp) / "out"
        safe_extract(archive, out)
        for fname, spec in missing.items():
            src = out / spec["member"]
            if not src.is_file():
                raise DataError(f"{archive}: member {spec['member']!r} not in the archive")
            check_file(src, spec.get("sha256"), spec.get("git_blob"))
            os.replace(src, folder / fname)
    return folder
