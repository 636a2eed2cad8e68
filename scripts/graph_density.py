"""Facts per node of a GraIL split's training and test graphs, and the edge dropout that
thins the training graph to the test graph's density.

    python scripts/graph_density.py WN18RR_v1 WN18RR_v2 WN18RR_v3 WN18RR_v4

The inductive test graphs (``<split>_ind/train.txt``) are sparser than the training graphs
on every WordNet split, so more of their test answers are far from the query's source or
unreachable. ``task.edge_dropout`` = 1 - (test facts per node) / (training facts per node)
(0 where the test graph is the denser) gives the training batches the test graph's
density; it reads the test graph's facts only, no test target.
"""
from __future__ import annotations

import argparse
import sys
from typing import Dict

from grsnn.data import DataError, load_kg


def density(name: str) -> Dict[str, float]:
    """Nodes, facts and facts per node of ``name``'s training and test graphs, and the
    matching ``edge_dropout`` (rounded to two decimals)."""
    kg = load_kg(name)
    out: Dict[str, float] = {}
    for split in ("train", "test"):
        g = kg.splits[split].graph
        out[f"{split}_nodes"] = int(g.num_nodes)
        out[f"{split}_facts"] = int(g.edge_index.size(1)) // 2     # each fact, both ways
        out[f"{split}_density"] = out[f"{split}_facts"] / max(out[f"{split}_nodes"], 1)
    out["edge_dropout"] = round(max(0.0, 1 - out["test_density"] / out["train_density"]), 2)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("splits", nargs="+", help="GraIL split names (WN18RR_v1, fb237_v2, ...)")
    args = p.parse_args(argv)
    try:
        rows = {name: density(name) for name in args.splits}
    except DataError as err:
        print(f"graph_density.py: {err}", file=sys.stderr)
        return 2
    print("| split | training graph: nodes, facts, facts per node | test graph: nodes, facts, "
          "facts per node | edge_dropout |")
    print("|---|---|---|---:|")
    for name, d in rows.items():
        print(f"| {name} | {d['train_nodes']:,}, {d['train_facts']:,}, "
              f"{d['train_density']:.2f} | {d['test_nodes']:,}, {d['test_facts']:,}, "
              f"{d['test_density']:.2f} | {d['edge_dropout']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
