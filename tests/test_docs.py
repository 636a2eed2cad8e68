"""The documentation builds strictly, and the licence and citation files are well formed.

The API reference (Sphinx: autodoc + autosummary + napoleon for the Google-style docstrings,
myst-parser for the Markdown pages) is built with ``sphinx-build -W --keep-going -b html``
from a copy of ``docs/`` in a temporary folder (the recursive API summary writes its stubs
next to the sources), so every warning (a broken cross-reference, a malformed docstring, a
page missing from the table of contents) fails the test.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_sphinx_build_is_clean(tmp_path: Path) -> None:
    missing = [m for m in ("sphinx", "myst_parser") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: pip install -e '.[test]' "
                    "installs them (the API reference cannot be built without)")
    src = tmp_path / "docs"
    shutil.copytree(DOCS, src, ignore=shutil.ignore_patterns("_build", "generated"))
    out = tmp_path / "html"
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q",
           "-d", str(tmp_path / "doctrees"), str(src), str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    # what the build must contain: the guides, the method and the API of every package
    for page in ("index", "method", "guide_kg", "guide_paths", "guide_gnn", "RESULTS",
                 "benchmarks", "reliability", "testing", "api"):
        assert (out / f"{page}.html").is_file(), page
    api = {p.name for p in (out / "generated").glob("*.html")}
    for module in ("grsnn.nn.conv", "grsnn.functional.propagation", "grsnn.data",
                   "grsnn.metrics", "grsnn.paths", "grsnn.tasks", "grsnn.cli"):
        assert f"{module}.html" in api, module
    conv = (out / "generated" / "grsnn.nn.conv.html").read_text(encoding="utf-8")
    assert "SpikingDelayConv" in conv and "reset_parameters" in conv


def test_license_is_mit() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "the grsnn authors" in text
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'license\s*=\s*\{\s*text\s*=\s*"MIT"\s*\}', pyproject)


def test_citation_cff() -> None:
    path = ROOT / "CITATION.cff"
    cff = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["license"] == "MIT" and cff["message"] and cff["authors"]
    version = re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(),
                        flags=re.M)
    assert version and str(cff["version"]) == version.group(1)
    paper = cff["preferred-citation"]
    assert paper["type"] == "conference-paper" and paper["year"] == 2024
    assert paper["title"] == ("Temporal Spiking Neural Networks with Synaptic Delay for "
                              "Graph Reasoning")
    assert [a["family-names"] for a in paper["authors"]] == ["Xiao", "Zhu", "He", "Lin"]
    assert "ICML" in paper["collection-title"] and "2405.16851" in paper["url"]
    if importlib.util.find_spec("cffconvert") is not None:  # the schema check, where installed
        from cffconvert import Citation

        Citation(path.read_text(encoding="utf-8")).validate()
