"""The examples in the library's docstrings run and print what they say."""
import doctest
import importlib
import pkgutil

import pytest

import grsnn

MODULES = sorted(m.name for m in pkgutil.walk_packages(grsnn.__path__, "grsnn.")
                 if m.name != "grsnn.__main__")      # runs the command line on import


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"


def test_the_library_has_examples():
    finder = doctest.DocTestFinder()
    examples = sum(len(t.examples) for n in MODULES
                   for t in finder.find(importlib.import_module(n)))
    assert examples >= 150           # about 200: a module that stops being found fails
