"""The path-reasoning demos under examples/ run end to end (short budgets)."""
import re


def test_path_reasoning_demo(tmp_path, run_python):
    out = run_python("examples/path_reasoning_demo.py", "--out", str(tmp_path / "img"), "--run",
                     str(tmp_path / "run"), "--steps", "2", "--no-family")
    assert re.search(r"spiking shortest paths == networkx Dijkstra from 20/20 sources", out)
    assert re.search(r"^  1\. [+-]\d\.\d+  \S+ --\[", out, re.M)          # an explained path
    for name in ("raster", "delays_heatmap", "first_spike_vs_hops", "explained_subgraph",
                 "learning_curve", "delays"):
        assert (tmp_path / "img" / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
    assert (tmp_path / "run" / "results.json").is_file()
    for page in ("explain.html", "shortest_paths.html"):     # interactive, self-contained
        text = (tmp_path / "run" / page).read_text(encoding="utf-8")
        assert 'id="spike-movie"' in text and "<script src" not in text, page


def test_family_rules_example(tmp_path, run_python):
    out = run_python("examples/family_rules.py", "--out", str(tmp_path / "run"), "--set",
                     "train.num_epoch=1")
    lengths = re.findall(r"^\s+([1-4])\s+(0\.\d+)\s+(0\.\d+)$", out, re.M)
    assert {n for n, _, _ in lengths} == {"1", "2", "3", "4"}
    assert "example test queries" in out
