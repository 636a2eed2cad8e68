"""How far the node features alone go: the cosine similarity of the two ends' features as
the score of every test pair of a citation graph, by hop distance between the ends in the
training graph (the table of `grsnn eval --by-distance`). With ``--hops k`` the features
are first smoothed over k hops of the training graph, as ``model.feature_hops`` does
(:meth:`grsnn.nn.GRSNN.smoothed_features`). A baseline without parameters, not a model.

    python scripts/feature_similarity.py CiteSeer
    python scripts/feature_similarity.py Cora --hops 1
    python scripts/feature_similarity.py Cora --split valid
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List

import torch

from grsnn.data import LinkData
from grsnn.nn import GRSNN
from grsnn.tasks.distance_breakdown import (format_breakdown, pair_breakdown,
                                            pair_hop_distances)
from grsnn.tasks.link_prediction import relational_graph


def cosine_breakdown(data: LinkData, split: str = "test", horizon: int = 9, hops: int = 0
                     ) -> List[Dict[str, Any]]:
    """:func:`~grsnn.tasks.distance_breakdown.pair_breakdown` of the features' cosine
    similarity on ``split``'s positive and negative pairs (the features smoothed over
    ``hops`` hops of the training graph first)."""
    if data.x is None:
        raise ValueError(f"{data.name} has no node features")
    graph = relational_graph(data)
    x = GRSNN.smoothed_features(graph, data.x.double(), hops)
    x = torch.nn.functional.normalize(x, dim=-1)
    scores, hops = [], []
    for pairs in (data.pos[split], data.neg[split]):
        scores.append((x[pairs[0]] * x[pairs[1]]).sum(-1))
        hops.append(pair_hop_distances(graph.edge_index, data.num_nodes, pairs[0], pairs[1]))
    return pair_breakdown(*scores, *hops, horizon)


def main(argv=None) -> int:
    from grsnn.data.homogeneous import load_planetoid
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="Cora, CiteSeer or PubMed")
    parser.add_argument("--split", default="test", choices=("valid", "test"))
    parser.add_argument("--hops", type=int, default=0,
                        help="smooth the features over this many hops first (default 0)")
    args = parser.parse_args(argv)
    if args.hops < 0:
        parser.error(f"--hops must be >= 0, got {args.hops}")
    rows = cosine_breakdown(load_planetoid(args.name), args.split, hops=args.hops)
    print(f"{args.name} {args.split} (hops {args.hops}): auroc {rows[0]['auroc']:.4f}, "
          f"ap {rows[0]['ap']:.4f}")
    print(format_breakdown(rows, ("positives", "negatives", "auroc_vs_all_negatives",
                                  "tied_with_a_negative")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
