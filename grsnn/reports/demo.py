"""The engine demo (``grsnn demo``): spike timing as path length, then a short training run.

:func:`spike_timing_agreement` compiles a fact graph into a one-neuron-per-node
:class:`~grsnn.nn.SpikingDelayConv` with random relation delays and compares every
first-spike time with networkx's Dijkstra distance (edge length 1 + delay).
:func:`train_steps` trains a :class:`~grsnn.nn.GRSNN` on random tail and head queries
against all entities; :func:`unfiltered_ranks` ranks validation queries the same way.
:func:`run_demo` runs the three on a GraIL split and prints what they find.
"""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import networkx as nx
import torch
from torch import Tensor
from torch_geometric.data import Data
from tqdm import tqdm

from ..data import Vocab, fact_graph, read_triples
from ..nn import GRSNN, SpikingDelayConv

__all__ = ["spike_timing_agreement", "train_steps", "unfiltered_ranks", "run_demo"]


def spike_timing_agreement(data: Data, num_rel: int, sources: List[int], steps: int,
                           seed: int) -> Tuple[int, int]:
    """``(agree, total)``: the ``(node, source)`` pairs whose first-spike time in a
    one-neuron-per-node circuit (integer delays ``0..4`` per relation drawn with ``seed``)
    equals the networkx Dijkstra distance within ``steps`` steps (-1: unreached, both).

    Example:
        >>> g = Data(edge_index=torch.tensor([[0, 1], [1, 2]]), edge_type=torch.tensor([0, 1]),
        ...          num_nodes=3)
        >>> spike_timing_agreement(g, 2, [0], 12, seed=0)
        (3, 3)
    """
    gen = torch.Generator().manual_seed(seed)
    delays = torch.randint(0, 5, (num_rel, 1), generator=gen)
    conv = SpikingDelayConv(1, num_rel, time_steps=steps, bias=False)
    assert conv.delay_logit is not None          # learnable delays (the default)
    with torch.no_grad():
        conv.lin.weight.fill_(3.1)
        p = (delays.float() / 4).clamp(1e-3, 1 - 1e-3)
        conv.delay_logit.copy_(torch.log(p / (1 - p)))
    g = nx.DiGraph()
    g.add_nodes_from(range(data.num_nodes))
    for (a, b), r in zip(data.edge_index.t().tolist(), data.edge_type.tolist()):
        w = 1 + int(delays[r])
        if not g.has_edge(a, b) or g[a][b]["weight"] > w:
            g.add_edge(a, b, weight=w)
    beta = torch.zeros(data.num_nodes, len(sources), 1)
    beta[torch.tensor(sources), torch.arange(len(sources))] = 2.5
    with torch.no_grad():
        spikes = conv(beta, data.edge_index, data.edge_type)[..., 0].bool()   # [T, N, B]
    t_idx = torch.arange(steps).view(-1, 1, 1).expand_as(spikes)
    first = torch.where(spikes.any(0), torch.where(spikes, t_idx, steps).min(0).values, -1)
    agree = total = 0
    for b, src in enumerate(sources):
        dist = nx.single_source_dijkstra_path_length(g, src, cutoff=steps - 1)
        for v in range(data.num_nodes):
            agree += int(first[v, b].item() == dist.get(v, -1))
            total += 1
    return agree, total


def train_steps(model: GRSNN, data: Data, train: Tensor, num_relations: int, steps: int,
                batch: int, lr: float = 5e-3, progress: bool = True) -> float:
    """Train ``model`` for ``steps`` batches of ``batch`` random training triples (half of
    them as head queries, i.e. inverse tail queries), binary cross-entropy against all
    entities; returns the seconds per batch."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    t0 = time.perf_counter()
    bar = tqdm(range(steps), unit="batch", file=sys.stdout, mininterval=1.0, disable=not progress)
    for _ in bar:
        idx = torch.randint(0, train.size(0), (batch,))
        h, t, r = train[idx].t()
        flip = torch.rand(batch) < 0.5            # half head queries, as inverse queries
        h, t = torch.where(flip, t, h), torch.where(flip, h, t)
        r = torch.where(flip, r + num_relations, r)
        logits = model.score_all(data, h, r)
        target = torch.zeros_like(logits)
        target[torch.arange(batch), t] = 1.0
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, target, pos_weight=torch.tensor(float(data.num_nodes)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}",
                        q_per_s=f"{batch * bar.n / max(time.perf_counter() - t0, 1e-9):.1f}")
    bar.close()
    return (time.perf_counter() - t0) / steps


@torch.no_grad()
def unfiltered_ranks(model: GRSNN, data: Data, queries: Tensor) -> Tuple[Tensor, Tensor]:
    """Realistic unfiltered ranks of the tails of ``queries`` ``[Q, 3]`` (head, tail,
    relation) against all entities, and the scores ``[Q, N]``."""
    model.eval()
    h, t, r = queries.t()
    scores = model.score_all(data, h, r)
    target = scores.gather(1, t.view(-1, 1))
    rank = 1 + (scores > target).sum(1).float() + 0.5 * ((scores == target).sum(1) - 1)
    return rank, scores


def run_demo(data_root: str | Path, split: str = "fb237_v1", steps: int = 60, batch: int = 16,
             dim: int = 32, eval_queries: int = 200, seed: int = 0,
             echo: Callable[[str], None] = print) -> Dict[str, float]:
    """The whole demo on ``data_root/grail/<split>``: the timing check (4 sources, 16
    steps), ``steps`` training batches, the ranks of ``eval_queries`` validation queries;
    prints with ``echo`` and returns ``mrr``, ``hits@10``, ``seconds_per_batch``.

    Raises:
        SystemExit: the spike timing disagrees with networkx.
    """
    torch.manual_seed(seed)
    random.seed(seed)
    folder = Path(data_root) / "grail" / split
    ents, rels = Vocab(), Vocab()
    data, train = fact_graph(read_triples(folder / "train.txt"), ents, rels)
    valid_raw = [t for t in read_triples(folder / "valid.txt")
                 if t[0] in ents and t[2] in ents and t[1] in rels]
    _, valid = fact_graph(valid_raw, ents, rels, add=False)
    num_rel = 2 * len(rels)
    echo(f"GraIL {split}: {data.num_nodes} entities, {len(rels)} relations, "
         f"{data.edge_index.size(1)} directed edges (inverses included)")

    echo("1. spike timing encodes path length:")
    sources = random.sample(range(data.num_nodes), 4)
    agree, total = spike_timing_agreement(data, num_rel, sources, 16, seed)
    echo(f"  first-spike time == networkx Dijkstra distance (within 16 steps) for "
         f"{agree}/{total} (node, source) pairs from {len(sources)} sources")
    if agree != total:
        raise SystemExit("error: spike timing disagrees with networkx")

    echo(f"2. training GRSNN for {steps} steps ({batch} queries x all "
         f"{data.num_nodes} entities per step, D={dim}, T=10):")
    model = GRSNN(num_rel, hidden_dim=dim)
    per_batch = train_steps(model, data, train, len(rels), steps, batch)
    echo(f"  {per_batch:.3f} s per training batch")

    echo("3. unfiltered tail ranks of validation queries (all entities as candidates):")
    queries = valid[:eval_queries]
    rank, scores = unfiltered_ranks(model, data, queries)
    h, t, r = queries.t()
    with torch.no_grad():
        spikes = model.spike_trains(data, h, r)
    mrr, hits10 = (1 / rank).mean().item(), (rank <= 10).float().mean().item()
    echo(f"  {len(t)} queries: MRR {mrr:.3f}, Hits@10 {hits10:.3f}"
         f" (realistic ranks; a random ranking has expected MRR "
         f"{sum(1 / k for k in range(1, data.num_nodes + 1)) / data.num_nodes:.3f})")
    rate = spikes.float().mean(dim=(1, 2, 3))
    echo("  firing rate per time step: " + " ".join(f"{x:.3f}" for x in rate.tolist()))
    q, top = h[0].item(), scores[0].topk(3).indices.tolist()
    echo(f"  example: ({ents.names[q]}, {rels.names[r[0].item() % len(rels)]}, ?) -> "
         + ", ".join(ents.names[i] for i in top) + f"   [true: {ents.names[t[0].item()]}]")
    return {"mrr": mrr, "hits@10": hits10, "seconds_per_batch": per_batch}
