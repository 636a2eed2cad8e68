"""The benchmark scripts run and print what the docs quote from them (small settings)."""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_profile_batch_prints_profile_faults_and_timings():
    out = _run("benchmarks/profile_batch.py", "--config", "kg_completion/fb237_v1",
               "--set", "model.hidden_dim=4", "--set", "model.time_steps=4",
               "--warmup", "1", "--timed", "2", "--eval-queries", "2", "--top", "3")
    assert "kg_completion/fb237_v1: torch" in out and "batch 32" in out
    assert re.search(r"training batch: \d+\.\d+ s \(profiled\), \d+ minor page faults", out)
    timed = re.search(r"training batches without the profiler: (.*)", out).group(1)
    assert len(re.findall(r"\d+\.\d+ s \(\d+ faults\)", timed)) == 2
    assert "evaluation of 2 valid triples" in out
    rows = re.findall(r"^  (\S.*?)\s+(\d+)\s+(\d+\.\d)\s+(\d+\.\d)%$", out, re.M)
    assert len(rows) == 6                        # --top 3, training and evaluation
    assert all(float(share) <= 100 for *_, share in rows)


def test_scaling_times_a_batch_and_counts_the_epoch():
    out = _run("benchmarks/scaling.py", "--only", "fb237_v1", "--repeats", "1")
    row = re.search(r"^fb237_v1\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+([\d.]+)\s+[\d.]+\s+(\d+)", out,
                    re.M)
    assert row, out
    edges, nodes, batch, sec, batches = row.groups()
    # fb237_v1's training graph with inverse edges; 4,245 training triples in batches of 32
    assert (int(edges), int(nodes), int(batch), int(batches)) == (8490, 1594, 32, 133)
    assert float(sec) > 0


def test_engine_check_reproduces_the_engine_with_the_baseline():
    out = _run("benchmarks/engine.py", "--check")
    assert out.strip().splitlines()[-1] == "PASS" and "FAIL" not in out
