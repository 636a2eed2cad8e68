"""Hypothesis profiles: ``ci`` (default) draws a fixed sequence of examples so that CI is
reproducible; ``HYPOTHESIS_PROFILE=explore`` draws fresh random examples, ten times as many
(run it now and then: it is how new bad inputs are found)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent

settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("explore", max_examples=600, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def run_python():
    """``run_python(*args, timeout=900)``: run ``python *args`` in the repository root at one
    thread, assert that it exits with 0 (showing the end of its stderr if not), and return
    its stdout."""
    def run(*args, timeout=900):
        proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True,
                              text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
                              timeout=timeout)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout
    return run
