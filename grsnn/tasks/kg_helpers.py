"""Helpers both training protocols share (knowledge-graph completion and link prediction).

:class:`TripleIndex` looks up the known answers of ``(head, relation)`` queries (strict
negatives, filtered ranks); :func:`corrupt_heads` picks the rows of a batch that corrupt the
head; :func:`remove_easy_edges` drops a batch's query edges from the message-passing graph;
:func:`self_adversarial_loss` is the loss of both protocols.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch_geometric.data import Data

from ..training.config import ConfigError

__all__ = ["TripleIndex", "corrupt_heads", "drop_facts", "remove_easy_edges",
           "self_adversarial_loss", "model_arguments", "firing_rate_penalty"]


class TripleIndex:
    """Lookup of the true answers of ``(head, relation)`` queries, inverse relations included.

    Example:
        >>> idx = TripleIndex(torch.tensor([[0, 1, 0], [0, 2, 0]]), num_nodes=3, num_relations=1)
        >>> idx.mask(torch.tensor([0, 2]), torch.tensor([0, 1])).int().tolist()
        [[0, 1, 1], [1, 0, 0]]
    """

    def __init__(self, triples: Tensor, num_nodes: int, num_relations: int) -> None:
        h, t, r = triples.long().t()
        self.num_nodes, self.r2 = num_nodes, 2 * num_relations
        heads, rels, tails = torch.cat([h, t]), torch.cat([r, r + num_relations]), torch.cat([t, h])
        key = heads * self.r2 + rels
        order = key.argsort()
        self.keys, counts = torch.unique_consecutive(key[order], return_counts=True)
        self.ptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
        self.values = tails[order]

    def mask(self, heads: Tensor, rels: Tensor) -> Tensor:
        """``[B, N]`` bool: true where a node is a known answer of ``(heads[i], rels[i], ?)``."""
        key = heads.long() * self.r2 + rels.long()
        pos = torch.searchsorted(self.keys, key).clamp(max=max(len(self.keys) - 1, 0))
        found = ((self.keys[pos] == key) if len(self.keys)
                 else torch.zeros_like(key, dtype=torch.bool))
        start = self.ptr[pos]
        count = torch.where(found, self.ptr[pos + 1] - start, torch.zeros_like(start))
        rows = torch.repeat_interleave(torch.arange(len(key)), count)
        starts = torch.repeat_interleave(count.cumsum(0) - count, count)
        offset = torch.arange(int(count.sum())) - starts
        cols = self.values[torch.repeat_interleave(start, count) + offset]
        out = torch.zeros(len(key), self.num_nodes, dtype=torch.bool)
        out[rows, cols] = True
        return out


def corrupt_heads(batch_size: int, gen: torch.Generator) -> Tensor:
    """Which rows of a batch corrupt the head (docs/method.md section 7: half the batch corrupts
    tails, half heads): the second half of the rows; the middle row of an odd batch (the
    only row of a batch of one) by a coin flip from ``gen``, so that odd batches (FB15k-237
    uses 5 queries) corrupt heads half the time too instead of 2 in 5.

    Example:
        >>> corrupt_heads(4, torch.Generator().manual_seed(0)).tolist()
        [False, False, True, True]
        >>> g = torch.Generator().manual_seed(0)
        >>> sum(bool(corrupt_heads(1, g)) for _ in range(1000))   # about 500
        504
    """
    side = torch.arange(batch_size) >= (batch_size + 1) // 2
    if batch_size % 2:
        side[batch_size // 2] = bool(torch.randint(0, 2, (1,), generator=gen))
    return side


def remove_easy_edges(graph: Data, heads: Tensor, tails: Tensor, rels: Tensor,
                      num_relations: int, one_hop: bool = False) -> Data:
    """The graph without the query edges ``(h, r, t)`` and their inverses ``(t, r + R, h)``;
    with ``one_hop`` without every edge between ``h`` and ``t`` (both directions, any type).

    Example:
        >>> g = Data(edge_index=torch.tensor([[0, 1, 0], [1, 0, 1]]),
        ...          edge_type=torch.tensor([0, 1, 1]), num_nodes=2)
        >>> remove_easy_edges(g, torch.tensor([0]), torch.tensor([1]), torch.tensor([0]),
        ...                   1).edge_type
        tensor([1])
    """
    n, r2 = graph.num_nodes, 2 * num_relations
    src, dst = graph.edge_index
    if one_hop:
        edge_key = src * n + dst
        query_key = torch.cat([heads * n + tails, tails * n + heads])
    else:
        edge_key = (src * n + dst) * r2 + graph.edge_type
        query_key = torch.cat([(heads * n + tails) * r2 + rels,
                               (tails * n + heads) * r2 + rels + num_relations])
    keep = ~torch.isin(edge_key, query_key)
    return Data(edge_index=graph.edge_index[:, keep], edge_type=graph.edge_type[keep],
                num_nodes=n, x=graph.x)


def drop_facts(graph: Data, num_relations: int, rate: float, gen: torch.Generator,
               undirected: bool = False) -> Data:
    """``graph`` without a random share ``rate`` of its facts: each fact ``(h, r, t)``
    leaves with its inverse edge ``(t, r + R, h)``, so that a dropped fact no longer joins
    its two ends in either direction (DropEdge at the level of facts). With
    ``undirected`` (homogeneous link prediction, where both directions of an edge share
    relation 0) a fact is the unordered pair ``{u, v}`` of a relation, and self loops
    always stay.

    Example:
        >>> g = Data(edge_index=torch.tensor([[0, 1], [1, 0]]), edge_type=torch.tensor([0, 1]),
        ...          num_nodes=2)
        >>> drop_facts(g, 1, 0.99, torch.Generator().manual_seed(0)).edge_type.numel()
        0
    """
    if rate <= 0:
        return graph
    n = graph.num_nodes
    src, dst = graph.edge_index
    if undirected:
        head, tail, rel = torch.minimum(src, dst), torch.maximum(src, dst), graph.edge_type
    else:
        inverse = graph.edge_type >= num_relations
        head, tail = torch.where(inverse, dst, src), torch.where(inverse, src, dst)
        rel = graph.edge_type - inverse.long() * num_relations
    facts, fact = torch.unique((head * n + tail) * num_relations + rel, return_inverse=True)
    keep = (torch.rand(facts.numel(), generator=gen) >= rate)[fact]
    if undirected:
        keep |= src == dst
    return Data(edge_index=graph.edge_index[:, keep], edge_type=graph.edge_type[keep],
                num_nodes=n, x=graph.x)


def self_adversarial_loss(logits: Tensor, temperature: float) -> Tensor:
    """Binary cross-entropy, column 0 positive, negatives weighted by
    ``softmax(logit / temperature)`` (detached): ``(bce_pos + sum_i w_i bce_neg_i) / 2``.

    Example:
        >>> round(self_adversarial_loss(torch.zeros(1, 3), 1.0).item(), 4)  # log 2
        0.6931
    """
    target = torch.zeros_like(logits)
    target[:, 0] = 1.0
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    weight = torch.softmax(logits[:, 1:].detach() / temperature, dim=-1)
    return ((bce[:, 0] + (weight * bce[:, 1:]).sum(-1)) / 2).mean()


def model_arguments(cfg: dict, feature_dim: Optional[int] = None) -> dict:
    """Keyword arguments of :class:`~grsnn.nn.GRSNN` for ``cfg``: the ``model`` section,
    with ``track_rate=True`` when ``task.firing_rate_weight`` is set (the regulariser reads
    :attr:`~grsnn.nn.GRSNN.firing_rate`), and ``node_features`` the width ``feature_dim``
    of the data set's node features when ``model.node_features`` is on (0 when off).

    Example:
        >>> model_arguments({"model": {"hidden_dim": 8}, "task": {"firing_rate_weight": 0.1}})
        {'hidden_dim': 8, 'track_rate': True}
        >>> model_arguments({"model": {"node_features": True}, "task": {}}, feature_dim=5)
        {'node_features': 5}
    """
    kwargs = dict(cfg["model"])
    if cfg["task"].get("firing_rate_weight", 0.0):
        kwargs["track_rate"] = True
    if kwargs.get("node_features"):
        if feature_dim is None:
            name = cfg.get("dataset", {}).get("name") or "this data set"
            raise ConfigError(f"model.node_features: {name} has no node features")
        kwargs["node_features"] = int(feature_dim)
    elif "node_features" in kwargs:
        kwargs["node_features"] = 0
    return kwargs


def firing_rate_penalty(loss: Tensor, model, weight: float) -> Tensor:
    """``loss + weight * model.firing_rate``: the firing-rate regulariser (``weight`` is
    ``task.firing_rate_weight``; ``loss`` unchanged when it is 0). The rate is the mean
    firing rate of the circuits of the model's last forward, differentiable through the
    surrogate spike function, so its gradient lowers the rate (sparser circuits)."""
    if not weight:
        return loss
    rate = model.firing_rate
    if rate is None:
        raise ValueError("task.firing_rate_weight > 0 needs a model built with "
                         "track_rate=True (see model_arguments)")
    return loss + weight * rate
