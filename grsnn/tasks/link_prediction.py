"""Link prediction on homogeneous graphs (Cora, CiteSeer, PubMed, OGB), docs/method.md section 6-8.

The graph becomes a one-relation circuit with a self loop on every node (relation 0).
Both directions of an undirected edge are relation 0 too: docs/method.md section 2 gives every fact
an inverse type, but an undirected edge has no direction to invert (calling the lower id
the head would tie the delays to the node numbering), so section 6's single relation is
read as one type for every edge. Delays are independent of the query and scoring is
symmetric (the circuit runs from both ends of a pair and the two features are averaged).
Training uses one strict negative per positive and removes every edge between a source and
its candidates; evaluation scores the fixed positives and negatives of a split (AUROC, AP).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data
from tqdm import tqdm

from ..data import LinkData
from ..metrics import auroc_ap
from ..nn import GRSNN
from ..training import distributed as dist
from ..training.memory import queries_per_pass, release_free_memory
from .base import Task
from .kg_helpers import (TripleIndex, corrupt_heads, drop_facts, firing_rate_penalty,
                         model_arguments, remove_easy_edges, self_adversarial_loss)

__all__ = ["LinkPredictionTask", "relational_graph"]


def relational_graph(data: LinkData, features: bool = False) -> Data:
    """Both directions of every training edge plus a self loop per node, all relation 0;
    with ``features`` the data set's node features as ``x`` (for ``model.node_features``;
    otherwise they stay off the graph, which every batch copies and moves to the device).

    Example:
        >>> from grsnn.data import LinkData
        >>> d = LinkData("toy", 3, torch.tensor([[0], [1]]), {}, {})
        >>> relational_graph(d).edge_index.tolist()
        [[0, 1, 0, 1, 2], [1, 0, 0, 1, 2]]
    """
    u, v = data.train_edges
    loops = torch.arange(data.num_nodes)
    ei = torch.stack([torch.cat([u, v, loops]), torch.cat([v, u, loops])])
    return Data(edge_index=ei, edge_type=torch.zeros(ei.size(1), dtype=torch.long),
                num_nodes=data.num_nodes, x=data.x if features else None)


class LinkPredictionTask(Task):
    """Training batches, loss and AUROC/AP evaluation for one :class:`LinkData`."""

    name = "link_prediction"

    def __init__(self, data: LinkData, cfg: Dict[str, Dict]) -> None:
        self.data, self.cfg = data, cfg
        self.graph = relational_graph(data, bool(cfg["model"].get("node_features")))
        u, v = data.train_edges
        both = torch.stack([torch.cat([u, v]), torch.cat([v, u]),
                            torch.zeros(2 * len(u), dtype=torch.long)], 1)
        self.neighbours = TripleIndex(both, data.num_nodes, 1)
        self.train_pairs = data.pos["train"]

    rows_per_group = 1          # a training row: a positive and its negatives (one loss term)

    @property
    def circuits_per_row(self) -> int:
        """Circuits per training row: one from the shared head, one from every candidate."""
        return 2 + self.cfg["task"]["num_negative"]

    def build_model(self) -> GRSNN:
        kwargs = model_arguments(
            self.cfg, None if self.data.x is None else int(self.data.x.size(1)))
        kwargs.update(dependent=False, symmetric=True)
        return GRSNN(1, **kwargs)

    def vocab(self) -> Dict[str, List[str]]:
        return {"relations": ["link"], "entities": []}

    def relation_names(self) -> List[str]:
        return ["link"]

    @property
    def num_train(self) -> int:
        return int(self.train_pairs.size(1))

    def make_batch(self, idx: Tensor, gen: torch.Generator) -> Tuple[Data, Tensor]:
        """Graph without the batch's easy edges and a batch ``[B, 1 + n, 3]`` (a row: a head,
        its positive tail and its negatives; scored symmetrically with one circuit from the
        head and one from every candidate). The first half of the rows keeps the first end
        of its pair (the lower id for Planetoid's ``u < v`` pairs) and corrupts the second;
        the second half keeps the second end (:func:`corrupt_heads`)."""
        h, t = self.train_pairs[:, idx]
        # docs/method.md section 7: half the batch corrupts tails, half heads: those rows keep the
        # pair's second end and corrupt its first (the batches are shuffled, so a pair is
        # anchored at either end across epochs)
        flip = corrupt_heads(len(h), gen)
        h, t = torch.where(flip, t, h), torch.where(flip, h, t)
        n_neg = self.cfg["task"]["num_negative"]
        allowed = ~self.neighbours.mask(h, torch.zeros_like(h))
        allowed[torch.arange(len(h)), h] = False       # no self pairs
        allowed[allowed.sum(1) == 0] = True
        neg = torch.multinomial(allowed.float(), n_neg, replacement=True, generator=gen)
        tails = torch.cat([t.unsqueeze(1), neg], dim=1)                  # [B, 1 + n]
        heads = h.unsqueeze(1).expand_as(tails)
        graph = remove_easy_edges(self.graph, heads.reshape(-1), tails.reshape(-1),
                                  torch.zeros(tails.numel(), dtype=torch.long), 1, one_hop=True)
        if self.cfg["task"].get("edge_dropout", 0.0):   # without a share of its edges
            graph = drop_facts(graph, 1, self.cfg["task"]["edge_dropout"], gen, undirected=True)
        batch = torch.stack([heads, tails, torch.zeros_like(tails)], dim=-1)   # [B, 1 + n, 3]
        return graph, batch

    def loss(self, model: GRSNN, graph: Data, batch: Tensor) -> Tensor:
        task = self.cfg["task"]
        logits = model(graph, batch).view(-1, 1 + task["num_negative"])
        return firing_rate_penalty(self_adversarial_loss(logits, task["adversarial_temperature"]),
                                   model, task.get("firing_rate_weight", 0.0))

    @torch.no_grad()
    def score_pairs(self, model: GRSNN, pairs: Tensor, progress: bool = False) -> Tensor:
        was = model.training
        model.eval()
        device = next(model.parameters()).device
        graph = dist.to_device(self.graph, device)
        budget = self.cfg["task"]["eval_memory_mb"]
        size = queries_per_pass(self.data.num_nodes, model.hidden_dim, device, memory_mb=budget,
                                num_pairs=model.plan(graph).num_pairs if budget else 0)
        size = self.cfg["task"]["eval_batch_size"] if size is None else max(
            1, min(self.cfg["task"]["eval_batch_size"], size // 2))   # both ends of a pair
        lo, hi = dist.shard(pairs.size(1))        # this process's pairs (all of them alone)
        out = []
        for start in tqdm(range(lo, hi, size), disable=not (progress and dist.is_main()),
                          leave=False, unit="chunk", desc="eval"):
            h, t = pairs[:, start:min(start + size, hi)]
            batch = torch.stack([h, t, torch.zeros_like(h)], dim=-1).view(-1, 1, 3)
            out.append(model(graph, batch.to(device)).view(-1).cpu())
            if device.type == "cpu":
                release_free_memory()      # keep resident memory near live memory
        model.train(was)
        return dist.gather_cat(out)

    def eval_pairs(self, split: str) -> Tuple[Tensor, Tensor]:
        """The positive and negative pairs ``[2, k]`` of ``split`` (``task.max_eval_queries``
        of each at most)."""
        pos, neg = self.data.pos[split], self.data.neg[split]
        cap = self.cfg["task"]["max_eval_queries"]
        return (pos, neg) if cap is None else (pos[:, :cap], neg[:, :cap])

    def evaluate(self, model: GRSNN, split: str, progress: bool = True,
                 partial: Optional[Path] = None) -> Dict[str, float]:
        """AUROC and AP of ``split``'s positives against its negatives (not resumable:
        ``partial`` is ignored)."""
        pos, neg = self.eval_pairs(split)
        return auroc_ap(self.score_pairs(model, pos, progress),
                        self.score_pairs(model, neg, progress))

    def breakdown(self, model: GRSNN, split: str, progress: bool = True,
                  partial: Optional[Path] = None) -> List[Dict[str, Any]]:
        """Positives and negatives grouped by the hop distance between the two ends in the
        message-passing graph (:func:`grsnn.tasks.distance_breakdown.pair_breakdown`)."""
        from .distance_breakdown import pair_breakdown, pair_hop_distances
        pos, neg = self.eval_pairs(split)
        g = self.graph
        pos_hops, neg_hops = (pair_hop_distances(g.edge_index, g.num_nodes, p[0], p[1])
                              for p in (pos, neg))
        return pair_breakdown(self.score_pairs(model, pos, progress),
                              self.score_pairs(model, neg, progress), pos_hops, neg_hops,
                              model.eval_steps - 1)

    def circuit_queries(self, split: str, count: int) -> Tuple[Data, Tensor, Tensor]:
        """The message-passing graph and the first ends of ``split``'s first ``count``
        positive pairs (relation 0)."""
        h = self.data.pos[split][0, :count]
        return self.graph, h, torch.zeros_like(h)
