"""Lint and type checks of the library (ruff and mypy, configured in pyproject.toml)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_ruff_finds_nothing_in_the_library():
    res = _run("ruff", "check", "--no-cache", "grsnn")
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_finds_nothing_in_the_library():
    res = _run("mypy", "--cache-dir", str(ROOT / ".mypy_cache"))    # files: pyproject.toml
    assert res.returncode == 0, res.stdout + res.stderr
