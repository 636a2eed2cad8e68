"""Sparsity and energy of a trained circuit, counted from its spikes and its graph.

* firing rate per time step: the share of all neurons (nodes x queries x D) that spike;
* delivered spikes: every spike travels along every outgoing edge and arrives after its
  integer delay if that is inside the ``T`` steps (counted exactly from the spike trains,
  the delays and the edges);
* synaptic operations (SOPs): each delivered spike adds one column of the shared ``D x D``
  weight matrix to its target, i.e. ``D`` accumulates (event-driven execution);
* the non-spiking path GNN of the same size (NBFNet style, ``T - 1`` layers, width ``D``)
  needs per query and layer ``E * D`` multiply-accumulates for the relation-conditioned
  messages and ``N * D * D`` for the node update;
* energy: ``0.9 pJ`` per accumulate and ``4.6 pJ`` per multiply-accumulate (45 nm CMOS
  figures used by the GRSNN paper, docs/method.md section 9).
* measured time: the CPU time (this process, all its threads) and wall time of one run of
  the same circuits on this machine, per query, after a first run that built the plan and
  compiled any kernels (:func:`query_time`); beside the estimate, what the hardware at
  hand spends.

GRSNN+ (:func:`operation_counts`) adds work that is not event-driven, counted on both sides
the same way: relation weights make a delivered spike's column a scaled one (``D``
multiply-accumulates instead of accumulates); the self connection adds a column per own
spike (``D`` accumulates; the GNN multiplies its ``N x D`` state by a second ``D x D``
block); PNA aggregates every incoming message (max and min compare all ``E x D`` of them,
silent ones included: one accumulate-sized operation each; sum and sum of squares take a
delivered spike's value and its precomputed square: two accumulates), finishes mean and
standard deviation (three multiply-accumulates per node and neuron), scales the four
statistics by the two degree scalers (``8 D`` per node) and runs the ``12 D x D`` linear
layer on those real-valued features (multiply-accumulates, as in the GNN); LayerNorm costs
three multiply-accumulates and two accumulates per node and neuron. Neuron state updates,
biases and the readout are left out on both sides (``O(N D)`` per step each).
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

import torch
from torch import Tensor

from ..functional import build_plan
from ..nn import GRSNN

__all__ = ["circuit_stats", "format_circuit_stats", "spiking_gnn_stats", "delivered_spikes",
           "background_stats", "reached_share", "source_reach", "operation_counts", "query_time",
           "energy_pj", "ENERGY_AC_PJ", "ENERGY_MAC_PJ"]

ENERGY_AC_PJ = 0.9
ENERGY_MAC_PJ = 4.6


def energy_pj(acs, macs):
    """Energy in picojoules of ``acs`` accumulates and ``macs`` multiply-accumulates at
    :data:`ENERGY_AC_PJ` and :data:`ENERGY_MAC_PJ` (floats or tensors).

    Example:
        >>> energy_pj(10, 1)
        13.6
    """
    return acs * ENERGY_AC_PJ + macs * ENERGY_MAC_PJ


def delivered_spikes(spikes: Tensor, plan, delays: Tensor) -> Tensor:
    """Spikes that reach a target inside the simulation, per column ``[C]``.

    ``spikes`` ``[T, N, C]`` (0/1), ``plan`` from :func:`~grsnn.functional.build_plan`,
    ``delays`` ``[R, C]`` integer delays: a spike of node ``u`` at step ``j`` crosses every
    outgoing edge of relation ``rho`` and arrives at ``j + 1 + delays[rho]``, which counts
    if that is at most ``T - 1``.

    Example:
        >>> from grsnn.functional import build_plan
        >>> plan = build_plan(torch.tensor([[0, 0], [1, 2]]), 3)      # 0 -> 1, 0 -> 2
        >>> s = torch.zeros(3, 3, 1); s[0, 0] = 1; s[2, 0] = 1         # node 0 at t = 0, 2
        >>> delivered_spikes(s, plan, torch.zeros(1, 1, dtype=torch.long))  # t = 2 arrives too late
        tensor([2.])
    """
    steps, _, cols = spikes.shape
    fan = torch.zeros(plan.num_pairs).index_add_(0, plan.edge_pair, torch.ones(plan.dst.numel()))
    cum = spikes.cumsum(0)                     # spikes of each neuron in steps [0, i]
    dp = delays.index_select(0, plan.rel)      # [P, C]
    delivered = torch.zeros(cols)
    for j in range(int(dp.max()) + 1 if dp.numel() else 0):
        last = steps - 2 - j                   # a spike at i arrives at i + 1 + j <= T - 1
        if last < 0:
            continue
        arrived = cum[last].index_select(0, plan.src) * (dp == j)
        delivered += (arrived * fan.unsqueeze(1)).sum(0)
    return delivered


def operation_counts(model: GRSNN, delivered: Tensor, own_spikes: Tensor, num_nodes: int,
                     num_edges: int) -> Dict[str, Tensor]:
    """Accumulates and multiply-accumulates per query of the spiking circuit and of the
    non-spiking path GNN of the same size and layer (module docstring).

    ``delivered`` ``[B]``: spikes delivered along edges per query (:func:`delivered_spikes`);
    ``own_spikes`` ``[B]``: spikes in steps ``0..T-2`` (what the self connection reads).
    Returns ``snn_ac``, ``snn_mac`` (``[B]``), ``gnn_ac``, ``gnn_mac`` (scalars as tensors).

    Example (plain GRSNN: D accumulates per delivered spike; the GNN E*D + N*D*D per layer):
        >>> m = GRSNN(2, hidden_dim=4, time_steps=3)
        >>> c = operation_counts(m, torch.tensor([10.0]), torch.tensor([5.0]), 6, 8)
        >>> c["snn_ac"].item(), c["snn_mac"].item(), c["gnn_mac"].item()
        (40.0, 0.0, 256.0)
    """
    conv = model.conv
    d, n, e, layers = model.hidden_dim, num_nodes, num_edges, model.time_steps - 1
    weighted = model.weight_generator is not None or conv.relation_weight is not None
    pna = conv.aggregate_fn == "pna"
    # dense work both models do: PNA's statistics, scalers and 12D x D layer; LayerNorm
    shared_mac = layers * n * d * (3 + 8 + 12 * d) if pna else 0
    shared_ac = 0
    if conv.norm is not None:
        shared_mac += layers * n * d * 3
        shared_ac += layers * n * d * 2
    snn_ac = torch.zeros_like(delivered, dtype=torch.float64) + shared_ac  # exact past 2^24
    snn_mac = torch.zeros_like(snn_ac) + shared_mac
    gnn_ac, gnn_mac = float(shared_ac), float(shared_mac + layers * e * d)  # + messages
    if pna:
        snn_ac += 2 * delivered + layers * 2 * e * d        # sum, sum of squares; max, min
        snn_mac += model.num_relations * d if weighted else 0    # omega^2, once per query
        gnn_mac += layers * e * d                            # squares
        gnn_ac += layers * 2 * e * d                         # max, min
    else:
        gnn_mac += layers * n * d * d                        # the D x D layer on real input
        if weighted:
            snn_mac += d * delivered                         # a scaled column per spike
        else:
            snn_ac += d * delivered                          # a column per spike
    if conv.self_connection:
        snn_ac += d * own_spikes                             # a column per own spike
        gnn_mac += layers * n * d * d
    return {"snn_ac": snn_ac, "snn_mac": snn_mac,
            "gnn_ac": torch.tensor(gnn_ac, dtype=torch.float64),
            "gnn_mac": torch.tensor(gnn_mac, dtype=torch.float64)}


@torch.no_grad()
def spiking_gnn_stats(model, x: Tensor, edge_index: Tensor,
                      edge_type: Optional[Tensor] = None) -> Dict[str, float]:
    """Firing rate and synaptic operations of one forward pass of a
    :class:`~grsnn.nn.SpikingGNN` (all layers): every delivered spike adds a column of the
    layer's ``D x D`` weight, i.e. ``D`` accumulates. The dense encoder, mixers and output
    layer are counted separately as multiply-accumulates.
    """
    from ..nn.conv import as_edge_index
    trains = model.spike_trains(x, edge_index, edge_type)          # per layer [T, N, D]
    edge_index, _ = as_edge_index(edge_index)                       # an adjacency too
    n = x.size(0)
    total = spikes = sops = 0.0
    for conv, train in zip(model.convs, trains):
        steps, _, d = train.shape
        plan = build_plan(edge_index, n, edge_type, conv.num_relations)
        delays = (conv.integer_delays() if conv.delay_logit is not None else
                  torch.zeros(conv.num_relations, d, dtype=torch.long))
        sops += float(delivered_spikes(train.float(), plan, delays).sum()) * d
        spikes += float(train.sum())
        total += train.numel()
    gcn = model.input_conv == "gcn"
    encoder = model.encoder.lin if gcn else model.encoder
    dense = sum(m.weight.numel() for m in (encoder, *model.mixers, model.lin)
                if m is not None and hasattr(m, "weight")) * n
    if gcn:   # GCNConv also sums its messages: one per edge and self-loop
        dense += (edge_index.size(1) + n) * model.hidden_channels
    return {"firing_rate": spikes / max(total, 1.0), "spikes": spikes, "sops": sops,
            "dense_macs": float(dense)}


@torch.no_grad()
def source_reach(model: GRSNN, data, h_index: Tensor, r_index: Tensor,
                 spikes: Optional[Tensor] = None) -> List[Dict[str, Any]]:
    """How far the query travels: for the nodes at each hop distance from the query's
    source (groups of :func:`~grsnn.tasks.distance_breakdown.distance_groups`), the share that
    fires, their mean first-spike step, and the share that is *informed*: whose spike
    train differs from the one it has in the same circuit without the source's current
    (``inject=False``). An uninformed node carries nothing about the query, however it
    fires; its score is the same as every other uninformed node's with the same train.

    Returns one row per group: ``group``, ``nodes`` (node-query pairs), ``fired``,
    ``first_spike``, ``informed``.

    Example:
        >>> from torch_geometric.data import Data
        >>> data = Data(edge_index=torch.tensor([[0], [1]]), edge_type=torch.tensor([0]),
        ...             num_nodes=3)
        >>> rows = source_reach(GRSNN(1, hidden_dim=4), data, torch.tensor([0]), torch.tensor([0]))
        >>> [r["group"] for r in rows]
        ['0', '1', 'unreachable']
    """
    from ..tasks.distance_breakdown import distance_groups, pair_hop_distances
    model.eval()
    if spikes is None:
        spikes = model.spike_trains(data, h_index, r_index)
    spikes = spikes.bool().cpu()
    quiet = model.spike_trains(data, h_index, r_index, inject=False).cpu()
    steps, n, b, _ = spikes.shape
    fired = spikes.any(-1)                                             # [T, N, B]
    ever = fired.any(0)                                                # [N, B]
    first = fired.float().argmax(0)                                    # [N, B]
    informed = (spikes != quiet).any(-1).any(0)                        # [N, B]
    hops = pair_hop_distances(data.edge_index, n, h_index.view(-1).cpu().repeat_interleave(n),
                              torch.arange(n).repeat(b)).view(b, n).t()  # [N, B]
    rows: List[Dict[str, Any]] = []
    for name, mask in distance_groups(hops, steps - 1).items():
        on = mask & ever
        rows.append({"group": name, "nodes": int(mask.sum()),
                     "fired": float(on.sum() / mask.sum()),
                     "first_spike": (float(first[on].float().mean()) if bool(on.any())
                                     else float("nan")),
                     "informed": float((mask & informed).sum() / mask.sum())})
    return rows


@torch.no_grad()
def query_time(model: GRSNN, data, h_index: Tensor, r_index: Tensor) -> Dict[str, Any]:
    """CPU time (``time.process_time``: this process, all threads) and wall time of one
    run of the circuits of queries ``(h, r, ?)``, in milliseconds per query, and the
    number of threads. Run it after a first run (plan built, kernels compiled).

    Example:
        >>> from torch_geometric.data import Data
        >>> data = Data(edge_index=torch.tensor([[0], [1]]), num_nodes=2)
        >>> t = query_time(GRSNN(1, hidden_dim=4), data, torch.tensor([0]), torch.tensor([0]))
        >>> sorted(t), t["cpu_ms_per_query"] >= 0
        (['cpu_ms_per_query', 'threads', 'wall_ms_per_query'], True)
    """
    queries = max(1, h_index.numel())
    cuda = h_index.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(h_index.device)
    cpu, wall = time.process_time(), time.perf_counter()
    model.spike_trains(data, h_index, r_index)
    if cuda:
        torch.cuda.synchronize(h_index.device)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu_ms_per_query": cpu * 1e3 / queries, "wall_ms_per_query": wall * 1e3 / queries,
            "threads": torch.get_num_threads()}


def circuit_stats(model: GRSNN, data, h_index: Tensor, r_index: Tensor) -> Dict[str, Any]:
    """Firing rates, delivered spikes, SOPs and the energy estimate for queries ``(h, r, ?)``.

    Example:
        >>> from torch_geometric.data import Data
        >>> data = Data(edge_index=torch.tensor([[0, 1], [1, 0]]),
        ...             edge_type=torch.tensor([0, 1]), num_nodes=2)
        >>> stats = circuit_stats(GRSNN(2, hidden_dim=4), data, torch.tensor([0]),
        ...                       torch.tensor([0]))
        >>> len(stats["firing_rate_per_step"])
        10
    """
    model.eval()
    spikes = model.spike_trains(data, h_index, r_index).float()     # [T, N, B, D]
    steps, n, b, d = spikes.shape
    delays = model.integer_delays(r_index).transpose(0, 1).reshape(model.num_relations, -1)
    plan = build_plan(data.edge_index, n, getattr(data, "edge_type", None), model.num_relations)
    delivered = delivered_spikes(spikes.reshape(steps, n, b * d), plan, delays)
    delivered_per_query = delivered.view(b, d).sum(1)
    sops = delivered_per_query * d
    edges = plan.dst.numel()
    ops = operation_counts(model, delivered_per_query, spikes[:-1].sum(dim=(0, 1, 3)), n, edges)
    snn_pj = energy_pj(ops["snn_ac"], ops["snn_mac"])
    gnn_pj = energy_pj(float(ops["gnn_ac"]), float(ops["gnn_mac"]))
    return {
        "queries": b,
        "nodes": n,
        "edges": edges,
        "time_steps": steps,
        "neurons_per_node": d,
        "firing_rate_per_step": spikes.mean(dim=(1, 2, 3)).tolist(),
        "firing_rate": spikes.mean().item(),
        "spikes_per_query": spikes.sum(dim=(0, 1, 3)).mean().item(),
        "delivered_spikes_per_query": delivered_per_query.mean().item(),
        "sops_per_query": sops.mean().item(),
        "snn_acs_per_query": ops["snn_ac"].mean().item(),
        "snn_macs_per_query": ops["snn_mac"].mean().item(),
        "gnn_acs_per_query": float(ops["gnn_ac"]),
        "gnn_macs_per_query": float(ops["gnn_mac"]),
        "snn_energy_uj_per_query": snn_pj.mean().item() * 1e-6,
        "gnn_energy_uj_per_query": gnn_pj * 1e-6,
        "energy_ratio_gnn_over_snn": (gnn_pj / snn_pj.mean().clamp(min=1e-12)).item(),
        "energy_constants_pj": {"accumulate": ENERGY_AC_PJ, "multiply_accumulate": ENERGY_MAC_PJ},
        "reach_by_distance": source_reach(model, data, h_index, r_index, spikes),
        **query_time(model, data, h_index, r_index),
        **({"background": background_stats(model, data, plan)}
           if getattr(model, "background_query", None) is not None else {}),
        **reached_share(model, data, h_index, r_index),
    }


def reached_share(model: GRSNN, data, h_index: Tensor, r_index: Tensor) -> Dict[str, Any]:
    """For a query-driven circuit (``drive="reached"``) the nodes a message reaches within
    the horizon, per query (:func:`~grsnn.nn.query_sized.reached_sets`, the source
    included): ``reached_per_query`` (mean) and ``reached_share`` (of the graph's nodes).
    Query-sized training simulates these nodes only, and a batch whose queries reach more
    than :data:`~grsnn.nn.query_sized.CROSSOVER` of the node-columns together runs on the
    whole graph: a wave that training speeds up makes its epochs slower. Empty for a
    circuit whose unreached neurons are not at rest.
    """
    from ..nn.query_sized import CROSSOVER, reached_sets
    from ..nn.reached import supports_reached
    if not supports_reached(model.conv):
        return {}
    sets = reached_sets(model, data, h_index, r_index)
    assert sets is not None                  # no budget: never gives up
    sizes = torch.tensor([float(x.numel()) for x in sets])
    share = sizes / int(data.num_nodes)
    return {"reached_per_query": sizes.mean().item(), "reached_share": share.mean().item(),
            "reached_crossover": CROSSOVER}


@torch.no_grad()
def background_stats(model: GRSNN, data, plan=None) -> Dict[str, Any]:
    """The same counts for the background circuit of a ``background=True`` model (run
    once per graph without a query, bias-driven, and shared by every query on that
    graph): firing rate per step and over all steps, spikes, delivered spikes,
    operations and energy of that one run.

    Example:
        >>> from torch_geometric.data import Data
        >>> data = Data(edge_index=torch.tensor([[0, 1], [1, 0]]),
        ...             edge_type=torch.tensor([0, 0]), num_nodes=2)
        >>> bg = background_stats(GRSNN(1, hidden_dim=4, background=True), data)
        >>> len(bg["firing_rate_per_step"]), bg["spikes"] >= bg["delivered_spikes"] >= 0
        (10, True)
    """
    model.eval()
    spikes = model.background_spike_trains(data).float()                  # [T, N, D]
    steps, n, d = spikes.shape
    if plan is None:
        plan = build_plan(data.edge_index, n, getattr(data, "edge_type", None),
                          model.num_relations)
    delivered = delivered_spikes(spikes, plan, model.background_delays()).sum().view(1)
    ops = operation_counts(model, delivered, spikes[:-1].sum().view(1), n, plan.dst.numel())
    pj = energy_pj(ops["snn_ac"], ops["snn_mac"])
    return {
        "firing_rate_per_step": spikes.mean(dim=(1, 2)).tolist(),
        "firing_rate": spikes.mean().item(),
        "spikes": spikes.sum().item(),
        "delivered_spikes": delivered.item(),
        "acs": ops["snn_ac"].item(),
        "macs": ops["snn_mac"].item(),
        "energy_uj": pj.item() * 1e-6,
    }


def format_circuit_stats(stats: Dict[str, Any], split: str) -> str:
    """:func:`circuit_stats` as the text ``grsnn stats`` prints (``split``: where the
    queries come from)."""
    from ..tasks.distance_breakdown import format_breakdown

    s = stats
    return "\n".join([
        f"{s['queries']} {split} queries on {s['nodes']} nodes, {s['edges']} edges, "
        f"T = {s['time_steps']}, D = {s['neurons_per_node']}",
        "firing rate per time step: " + " ".join(f"{x:.4f}" for x in s["firing_rate_per_step"]),
        f"firing rate (all steps): {s['firing_rate']:.4f}",
        f"spikes per query: {s['spikes_per_query']:.0f}; delivered along edges: "
        f"{s['delivered_spikes_per_query']:.0f}",
        f"delivered spikes x D (the synaptic operations of sum aggregation): "
        f"{s['sops_per_query']:.4g}",
        f"operations per query, spiking circuit: {s['snn_acs_per_query']:.4g} AC + "
        f"{s['snn_macs_per_query']:.4g} MAC; non-spiking path GNN of the same size "
        f"(T-1 layers): {s['gnn_acs_per_query']:.4g} AC + {s['gnn_macs_per_query']:.4g} MAC",
        f"energy per query (0.9 pJ/AC, 4.6 pJ/MAC): spiking "
        f"{s['snn_energy_uj_per_query']:.4g} uJ vs GNN {s['gnn_energy_uj_per_query']:.4g} uJ "
        f"(GNN / spiking = {s['energy_ratio_gnn_over_snn']:.2f})",
        f"measured time per query on this machine: CPU {s['cpu_ms_per_query']:.4g} ms "
        f"(wall {s['wall_ms_per_query']:.4g} ms, {s['threads']} threads)",
        "",
        "reach of the query by hop distance from its source (informed: the spike train "
        "differs from the node's train without the source's current):",
        format_breakdown(s["reach_by_distance"], ["fired", "first_spike", "informed"]),
        *_format_reached(s),
        *_format_background(s.get("background"), s["snn_energy_uj_per_query"]),
    ])


def _format_reached(s: Dict[str, Any]) -> List[str]:
    """The line of :func:`reached_share` (none for a circuit without it)."""
    if "reached_per_query" not in s:
        return []
    return ["", f"nodes reached per query (what query-sized training simulates): "
                f"{s['reached_per_query']:.1f} of {s['nodes']} ({100 * s['reached_share']:.1f}%); "
                f"batches that reach more than {100 * s['reached_crossover']:.0f}% run on the "
                f"whole graph"]


def _format_background(bg: Optional[Dict[str, Any]], query_uj: float) -> List[str]:
    """The lines of :func:`background_stats` (none without a background circuit)."""
    if bg is None:
        return []
    ratio = bg["energy_uj"] / query_uj if query_uj > 0 else float("inf")
    return [
        "",
        "background circuit (run once per graph without a query, shared by all its queries; "
        "not in the figures above):",
        "firing rate per time step: " + " ".join(f"{x:.4f}" for x in bg["firing_rate_per_step"]),
        f"firing rate (all steps): {bg['firing_rate']:.4f}",
        f"spikes: {bg['spikes']:.0f}; delivered along edges: {bg['delivered_spikes']:.0f}",
        f"operations: {bg['acs']:.4g} AC + {bg['macs']:.4g} MAC; energy {bg['energy_uj']:.4g} uJ "
        f"(the spiking energy of {ratio:.3g} queries)",
    ]
