"""Event-driven against dense propagation at controlled firing rates, in one run.

For graphs shaped like FB15k-237 and WN18RR (their training graphs with inverse edges, read
from the data root; ``--datasets`` also takes GraIL splits such as ``fb237_v1`` or
``gen:N:E:R``, a generated graph of N nodes, E edges (inverses included) and R edge
types), one training batch of the propagation engine at the paper's configuration (B
queries of the task's batch, D = 32, T = 10, K = 4, query-dependent delays with their
trace gradient): T - 1 steps of :func:`grsnn.functional.delayed_propagate`, and for
"fwd+bwd" the backward of a fixed random linear function of the T - 1 outputs into the
spike frames and the delays.

The firing rate is set synthetically by the spike history: a random share of the nodes
fires (every bit of their history is random), chosen so that the given share of the
``(source, relation)`` pairs is active (has a spike in its delay window); "full" means
every neuron fired at every step. Variants, timed in interleaved rounds (one batch of
each in turn, so machine noise hits all alike; the median is printed):

  dense   ``propagation="dense"`` (pull: every pair, every step)
  event   ``propagation="event"`` (push: the active pairs only, every step)
  auto    ``propagation="auto"`` (push below the crossover, pull above; per step)
  floor   T - 1 products ``torch.sparse.mm(A, X)``, A the CSR adjacency over the edges,
          X dense [N, B*D]: one pass over the edges per step (forward only), the
          bandwidth floor of the dense engine

Ratios are speed-ups, dense seconds / candidate seconds (> 1: faster than dense),
measured in this run. The crossover is where the event-driven forward stops being
faster than the dense one (linear interpolation between measured rates). The neuron-level
work (linear layer, LIF step) is not part of this benchmark: it does not depend on the
propagation mode in training (see docs/method.md section 5).

Then, for the data sets of ``--epochs`` (default WN18RR and FB15k-237), the seconds per
training epoch of the recommended task configuration (``tasks/kg_completion/<name>.yaml``,
a real training batch of ``grsnn train`` timed after a warm-up, times the batches per
epoch; validation not included) with the dense engine and with ``propagation="auto"``,
in interleaved rounds. ``--epochs none`` skips this part.

Then the event-driven engine at node level, query-sized training (``GRSNN(query_sized=
True)``, docs/method.md section 11: the query-driven circuit simulated, with gradients,
on the nodes each query reaches): training batches (forward and backward of the model's
loss, 8 queries) against the same circuit on the whole graph, on a generated graph of N
nodes in K equal components, with the circuit set to flood what it reaches, so that a
query reaches (and activates the pairs of) ``1/K`` of the graph; K = 20 is 5% active
pairs, K = 1 full firing (where the batch runs on the whole graph, above the crossover).

Run:  python benchmarks/firing_rate.py [--datasets fb15k237,wn18rr] [--rates 0.001,...,full]
          [--rounds 3] [--queries 0 (= the task's batch)] [--threads 1] [--data-root DIR]
          [--epochs wn18rr,fb15k237 | none] [--query-sized 20000:20,4,1 | none]
      python benchmarks/firing_rate.py --runs RUN,RUN,... [--rounds 3]
``--runs`` prints only the firing-rate trade-off of trained run directories (the runs of
``scripts/ablation.sh <split> rate<w> <epochs>``): test metric, firing rate of the trained
circuit, and seconds per training epoch from its weights, dense against auto.
The last line reads
``event-driven vs dense, forward+backward: <r>x at 5% active pairs, <s>x at full firing``
(query-sized training at K = 20 and K = 1; with ``--query-sized none``, the pair-level
auto mode on the first data set, 5% among the rates).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from grsnn.functional import build_plan, delayed_propagate, history_dtype  # noqa: E402

DIM, STEPS, BOUND = 32, 10, 4
BATCH = {"fb15k237": 5, "wn18rr": 8}          # the paper tasks' queries per batch
VARIANTS = ("dense", "event", "auto", "floor")


def load_graph(name: str, root: str | None):
    """``(edge_index, edge_type, num_nodes, num_relations, label)``."""
    if name.startswith("gen:"):
        n, e, r = (int(x) for x in name[4:].split(":"))
        g = torch.Generator().manual_seed(0)
        half = e // 2        # facts and their inverses, types r and r + R / 2
        src = torch.randint(0, n, (half,), generator=g)
        dst = torch.randint(0, n, (half,), generator=g)
        rel = torch.randint(0, max(1, r // 2), (half,), generator=g)
        ei = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
        return ei, torch.cat([rel, rel + max(1, r // 2)]), n, 2 * max(1, r // 2), name
    from grsnn.data import kg
    if name == "fb15k237":
        data = kg.load_fb15k237(root)
    elif name == "wn18rr":
        data = kg.load_wn18rr(root)
    else:
        data = kg.load_grail(name, root)
    graph = data.splits["train"].graph
    return graph.edge_index, graph.edge_type, int(graph.num_nodes), data.num_relations, name


def spike_history(plan, cols: int, share, gen) -> torch.Tensor:
    """``[N, C]`` bit history in which about ``share`` of the pairs are active
    (``"full"``: every bit set)."""
    hdtype = history_dtype(BOUND)
    n = plan.num_nodes
    if share == "full":
        return torch.full((n, cols), (1 << (BOUND + 1)) - 1, dtype=hdtype)
    pairs_of = torch.bincount(plan.src, minlength=n)
    order = torch.randperm(n, generator=gen)
    count = torch.cumsum(pairs_of[order], 0)
    chosen = order[: int(torch.searchsorted(count, int(share * plan.num_pairs))) + 1]
    hist = torch.zeros(n, cols, dtype=hdtype)
    bits = torch.randint(1, 1 << (BOUND + 1), (chosen.numel(), cols), generator=gen)
    hist[chosen] = bits.to(hdtype)
    return hist


def run_batch(variant: str, plan, floor_adj, hist, delta, delay, traces, grad_out,
              backward: bool) -> float:
    traces = traces * (hist != 0).any(1).view(1, -1, 1)   # no trace where nothing fired
    frames = [((hist >> j) & 1).float().requires_grad_(backward) for j in range(BOUND + 1)]
    d = delay.detach().requires_grad_(backward)
    t0 = time.perf_counter()
    with torch.set_grad_enabled(backward):
        total = None
        for t in range(1, STEPS):
            use = frames[: min(t, BOUND + 1)]
            if variant == "floor":
                out = torch.sparse.mm(floor_adj, use[0], "sum")
            else:
                out = delayed_propagate(plan, hist, use, delta, d, None, traces,
                                        workspace={}, propagation=variant)
            if backward:
                part = (out * grad_out).sum()
                total = part if total is None else total + part
        if backward and total is not None:
            total.backward()
    return time.perf_counter() - t0


def measure(name: str, rates, rounds: int, queries: int, root, gen) -> dict:
    ei, et, n, rels, label = load_graph(name, root)
    plan = build_plan(ei, n, et, rels)
    plan.operators(torch.float32)
    floor_adj = torch.sparse_coo_tensor(ei.flip(0), torch.ones(ei.size(1)), (n, n)
                                        ).coalesce().to_sparse_csr()   # [target, source]
    b = queries or BATCH.get(name, 5)
    cols = b * DIM
    delay = BOUND * torch.rand(rels, cols, generator=gen)
    delta = torch.round(delay).to(history_dtype(BOUND))
    traces = torch.randn(BOUND + 1, n, cols, generator=gen)
    grad_out = torch.randn(n, cols, generator=gen)
    print(f"{label}: {n} nodes, {ei.size(1)} edges, {plan.num_pairs} (source, relation) "
          f"pairs, {rels} edge types, B = {b} queries x D = {DIM}, T = {STEPS}, K = {BOUND}",
          flush=True)
    hists = {r: spike_history(plan, cols, r, gen) for r in rates}
    from grsnn.functional import active_pairs
    share = {r: float(active_pairs(plan, hists[r], delta).float().mean()) for r in rates}
    times = {(r, v, bwd): [] for r in rates for v in VARIANTS for bwd in (False, True)
             if not (v == "floor" and bwd)}
    for rnd in range(rounds + 1):            # round 0 warms up
        for r in rates:
            for (rr, v, bwd) in times:
                if rr != r:
                    continue
                sec = run_batch(v, plan, floor_adj, hists[r], delta, delay, traces, grad_out,
                                bwd)
                if rnd:
                    times[(rr, v, bwd)].append(sec)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{'active pairs':>12} {'firing':>7} | {'forward s/batch':^31} | {'fwd+bwd s/batch':^23}"
          f" | {'speed-up vs dense':^27}")
    print(f"{'':>12} {'':>7} | {'dense':>7} {'event':>7} {'auto':>7} {'floor':>7} | "
          f"{'dense':>7} {'event':>7} {'auto':>7} | {'fwd ev':>6} {'fwd au':>6} {'f+b ev':>6} "
          f"{'f+b au':>6}")
    rows = []
    for r in rates:
        fd, fe, fa, ff = (med[(r, v, False)] for v in VARIANTS)
        bd, be, ba = (med[(r, v, True)] for v in VARIANTS[:3])
        fire = float(((hists[r] & 1) != 0).float().mean())
        print(f"{share[r]:>11.2%} {fire:>7.4f} | {fd:7.3f} {fe:7.3f} {fa:7.3f} {ff:7.3f} | "
              f"{bd:7.3f} {be:7.3f} {ba:7.3f} | {fd / fe:5.2f}x {fd / fa:5.2f}x {bd / be:5.2f}x "
              f"{bd / ba:5.2f}x")
        rows.append((r, share[r], fd / fe, fd / fa, bd / be, bd / ba))
    cross = None
    for (_, s0, q0, *_), (_, s1, q1, *_) in zip(rows, rows[1:]):
        if q0 >= 1 > q1:
            cross = s0 + (s1 - s0) * (q0 - 1) / (q0 - q1)
            break
    if cross is None:
        print("crossover (forward, event vs dense): not within the measured rates")
    else:
        print(f"crossover (forward, event vs dense): {cross:.1%} active pairs")
    return {"rows": rows}


def epoch_seconds(name: str, rounds: int, root) -> None:
    """Seconds per training epoch of ``tasks/kg_completion/<name>.yaml``, dense engine
    against ``propagation="auto"`` (the median batch of each, rounds interleaved)."""
    from scaling import time_batch
    config = f"kg_completion/{name}"
    runs = {"dense": [], "auto": []}
    for _ in range(rounds):
        for mode in runs:
            runs[mode].append(time_batch(name, config, root, 1, model={"propagation": mode}))
    med = {m: statistics.median(r["epoch_s"] for r in rs) for m, rs in runs.items()}
    first = runs["dense"][0]
    print(f"epoch of {name} (tasks/{config}.yaml, {first['batches']} batches of "
          f"{first['batch']} queries, {first['edges']} edges): dense {med['dense']:.0f} s "
          f"({med['dense'] / 3600:.2f} h), auto {med['auto']:.0f} s "
          f"({med['auto'] / 3600:.2f} h), {med['dense'] / med['auto']:.2f}x", flush=True)


def trade_off(runs: list, rounds: int) -> None:
    """The firing-rate trade-off of trained runs (one row per run directory, e.g. the same
    split trained with several ``task.firing_rate_weight``): the weight, the test metric
    of ``results.json``, the firing rate of the trained circuit (``best.pt``, 64 test
    queries, as ``grsnn stats``) and the seconds per training epoch of the run's own
    configuration from its trained weights, dense against ``propagation="auto"`` (a real
    training batch, the median of ``rounds`` interleaved rounds)."""
    import json

    from scaling import time_batch

    from grsnn.reports.firing_stats import circuit_stats
    from grsnn.tasks import build_task, load_config
    from grsnn.training.checkpoints import load_model
    print("firing-rate trade-off of trained runs (test metric, firing rate of 64 test "
          "queries, seconds per training epoch from the trained weights):")
    print(f"{'run':<40} {'weight':>6} {'metric':>14} {'firing':>7} {'dense s':>8} "
          f"{'auto s':>8} {'ratio':>6}")
    for run in map(Path, runs):
        for need in ("config.yaml", "best.pt", "results.json"):
            if not (run / need).is_file():
                raise SystemExit(f"firing_rate.py: {run / need}: not found (a finished run "
                                 f"directory is needed)")
        cfg = load_config(run / "config.yaml")
        test = json.loads((run / "results.json").read_text())["test"]
        key = "pessimistic.hits@10_50" if "hits@10_50" in test else "auroc"
        task = build_task(cfg)
        model = load_model(task, run / "best.pt", "cpu").eval()
        graph, heads, relations = task.circuit_queries("test", 64)
        with torch.no_grad():
            rate = circuit_stats(model, graph, heads, relations)["firing_rate"]
        times = {"dense": [], "auto": []}
        for _ in range(rounds):
            for mode in times:
                times[mode].append(time_batch(run.name, str(run / "config.yaml"), None, 1,
                                              model={"propagation": mode},
                                              checkpoint=run / "best.pt")["epoch_s"])
        med = {m: statistics.median(t) for m, t in times.items()}
        label = f"{key.split('.')[-1]} {test[key]:.3f}"
        print(f"{str(run):<40} {cfg['task'].get('firing_rate_weight', 0.0):>6g} {label:>14} "
              f"{rate:>7.4f} {med['dense']:>8.0f} {med['auto']:>8.0f} "
              f"{med['dense'] / med['auto']:>5.2f}x", flush=True)


def reach_graph(num_nodes: int, components: int, relations: int, gen):
    """A graph of ``components`` equal random components (3 edges per node each, relation
    types at random, inverse edges added): a query's wave reaches at most its own
    component, ``1 / components`` of the nodes."""
    from torch_geometric.data import Data
    size = num_nodes // components
    src = torch.randint(0, size, (3 * size * components,), generator=gen)
    dst = torch.randint(0, size, (3 * size * components,), generator=gen)
    shift = torch.arange(components).repeat_interleave(3 * size) * size
    src, dst = src + shift, dst + shift
    typ = torch.randint(0, relations, (src.numel(),), generator=gen)
    return Data(edge_index=torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1),
                edge_type=torch.cat([typ, typ + relations]), num_nodes=size * components)


def flooding_model(relations: int, query_sized: bool):
    """The query-driven circuit (D = 32, T = 10, K = 4, triangle surrogate) set so that
    its wave floods what it reaches: the source fires at once, every delay is 0 and a
    reached neuron fires at every step (positive synapses, a bias above threshold)."""
    from grsnn.nn import GRSNN
    torch.manual_seed(0)
    model = GRSNN(2 * relations, hidden_dim=32, drive="reached", surrogate="triangle",
                  query_sized=query_sized)
    with torch.no_grad():
        model.query.weight.fill_(3.0)
        model.delay_generator.weight.zero_()
        model.delay_generator.bias.fill_(-8.0)
        model.conv.lin.weight.uniform_(0.0, 0.2)
        model.conv.lin.bias.fill_(4.0)
    return model


def query_sized(spec: str, rounds: int, queries: int, gen) -> dict:
    """Training batches (forward + backward of GRSNN's loss) of the query-driven circuit on
    the whole graph against query-sized (``GRSNN(query_sized=True)``), at controlled
    reach: ``spec`` is ``N:K1,K2,...``, a graph of N nodes in K equal components for each
    K, so that every query reaches ``1/K`` of the nodes (and of the active pairs)."""
    import grsnn.nn.query_sized as qs
    nodes, counts = spec.split(":")
    nodes = int(nodes)
    batch = queries or 8
    print(f"query-sized vs whole graph: training batch of {batch} queries x 33 candidates "
          f"(forward + backward), the query-driven circuit flooding what it reaches "
          f"(crossover {qs.CROSSOVER:.0%} of the node-columns)")
    print(f"{'components':>10} {'reached':>8} {'whole s':>8} {'query-sized s':>14} "
          f"{'speed-up':>9}")
    rows = []
    for k in map(int, counts.split(",")):
        data = reach_graph(nodes, k, 4, gen)
        models = {"whole": flooding_model(4, False), "qs": flooding_model(4, True)}
        heads = torch.randint(0, data.num_nodes, (batch, 1), generator=gen)
        tails = torch.randint(0, data.num_nodes, (batch, 33), generator=gen)
        rel = torch.randint(0, 8, (batch, 1), generator=gen)
        rows_t = torch.stack([heads.expand_as(tails), tails, rel.expand_as(tails)], -1)
        times = {m: [] for m in models}
        for rnd in range(rounds + 1):
            for name, model in models.items():
                model.zero_grad()
                t0 = time.perf_counter()
                model(data, rows_t).logsumexp(-1).sum().backward()
                if rnd:
                    times[name].append(time.perf_counter() - t0)
        qsm = models["qs"]
        share = qsm.query_sized_nodes / (batch * data.num_nodes) if qsm.query_sized_nodes else 1.0
        med = {m: statistics.median(t) for m, t in times.items()}
        rows.append((k, share, med["whole"], med["qs"], med["whole"] / med["qs"]))
        print(f"{k:>10} {share:>7.1%} {med['whole']:>8.3f} {med['qs']:>14.3f} "
              f"{med['whole'] / med['qs']:>8.2f}x", flush=True)
    return {"rows": rows}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="fb15k237,wn18rr")
    p.add_argument("--rates", default="0.001,0.01,0.05,0.1,0.25,0.5,full",
                   help="shares of active (source, relation) pairs, and 'full'")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--queries", type=int, default=0, help="queries per batch (0: the task's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-root", default=None)
    p.add_argument("--epochs", default="wn18rr,fb15k237",
                   help="task configs (tasks/kg_completion/<name>.yaml) whose seconds per "
                        "epoch are measured, or 'none'")
    p.add_argument("--query-sized", default="20000:20,4,1", metavar="N:K1,K2,...",
                   help="query-sized training against the whole graph on N nodes in K "
                        "components (reach 1/K), or 'none'; K = 20 and 1 give the last line")
    p.add_argument("--runs", default=None,
                   help="trained run directories (comma-separated) for the firing-rate "
                        "trade-off table; with it, only that table is printed")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.runs:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        trade_off(args.runs.split(","), max(1, args.rounds))
        return
    rates = [r if r == "full" else float(r) for r in args.rates.split(",")]
    if 0.05 not in rates or "full" not in rates:
        raise SystemExit("firing_rate.py: --rates must include 0.05 and full")
    if args.query_sized != "none":
        parts = args.query_sized.split(":")
        if (len(parts) != 2 or not parts[0].isdigit()
                or not {"20", "1"} <= set(parts[1].split(","))):
            raise SystemExit("firing_rate.py: --query-sized must be N:K1,K2,... with K = 20 "
                             "and K = 1 among the components")
    gen = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.rounds} "
          f"interleaved rounds after one warm-up, medians")
    first = None
    for name in args.datasets.split(","):
        res = measure(name, rates, args.rounds, args.queries, args.data_root, gen)
        first = first or res
    if args.epochs != "none":
        sys.path.insert(0, str(ROOT / "benchmarks"))
        for name in args.epochs.split(","):
            epoch_seconds(name, max(1, args.rounds), args.data_root)
    by_rate = {row[0]: row for row in first["rows"]}
    pair_line = (f"forward+backward: {by_rate[0.05][5]:.2f}x at 5% active pairs, "
                 f"{by_rate['full'][5]:.2f}x at full firing")
    if args.query_sized == "none":
        print(f"event-driven vs dense, {pair_line}")
        return
    print(f"pair-level push (auto) vs dense, {pair_line}")
    res = query_sized(args.query_sized, args.rounds, args.queries, gen)
    by_k = {row[0]: row for row in res["rows"]}
    print(f"event-driven vs dense, forward+backward: {by_k[20][4]:.2f}x at 5% active pairs, "
          f"{by_k[1][4]:.2f}x at full firing")


if __name__ == "__main__":
    main()
