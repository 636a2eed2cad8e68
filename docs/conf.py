"""Sphinx configuration: the API reference from the docstrings (Google style, napoleon) and
the Markdown guides (myst-parser). Build: ``sphinx-build -W --keep-going -b html docs
docs/_build/html`` (``tests/test_docs.py`` builds it strictly into a temporary folder)."""
from __future__ import annotations

import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if (ROOT / "grsnn" / "__init__.py").is_file():  # a checkout; otherwise the installed grsnn
    sys.path.insert(0, str(ROOT))

# ``python -m grsnn`` runs the command line when ``grsnn.__main__`` is imported; the
# recursive API summary imports every module, so that one is replaced by a marked stub
# (autosummary skips modules carrying ``__sphinx_mock__``).
_main = types.ModuleType("grsnn.__main__")
_main.__sphinx_mock__ = True  # type: ignore[attr-defined]
sys.modules.setdefault("grsnn.__main__", _main)

import grsnn  # noqa: E402

project = "grsnn"
author = "the grsnn authors"
copyright = "2026, the grsnn authors"
release = version = grsnn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# gnn_comparison.md is the raw output of benchmarks/gnn_comparison.py (tables without a title)
exclude_patterns = ["_build", "bench", "gnn_comparison.md", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_mock_imports = ["ogb"]
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_custom_sections = [("Shapes", "params_style"), ("Switches", "params_style")]

myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

html_theme = "alabaster"
html_title = f"grsnn {release}"
