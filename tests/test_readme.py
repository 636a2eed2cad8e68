"""The README's Python examples run as written (in order, one namespace, from the repo root)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_examples_run(monkeypatch):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 4
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"README.md python block {i + 1}", "exec"), namespace)
    # what the examples promise
    import networkx as nx
    G = namespace["G"]
    want = nx.single_source_dijkstra_path_length(G, 0)
    assert namespace["grsnn"].shortest_path_lengths(G, 0) == want
    assert tuple(namespace["logits"].shape) == (1, 3)
    assert tuple(namespace["out"].shape)[1] == 7
