"""Lint and type checks of the library (ruff and mypy, configured in pyproject.toml)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_ruff_finds_nothing_in_the_code():
    """The library and everything that runs it: benchmarks, scripts, examples, tests."""
    res = _run("ruff", "check", "--no-cache", "grsnn", "benchmarks", "scripts", "examples",
               "tests")
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_finds_nothing_in_the_library():
    res = _run("mypy", "--cache-dir", str(ROOT / ".mypy_cache"))    # files: pyproject.toml
    assert res.returncode == 0, res.stdout + res.stderr


def test_library_comments_hold_no_history():
    import re
    pattern = re.compile(r"\b(earlier|older|previous|old) versions?\b|\bsessions? \d",
                         re.IGNORECASE)
    found = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
             for p in sorted((ROOT / "grsnn").rglob("*.py"))
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if pattern.search(line)]
    assert not found, "\n".join(found)
