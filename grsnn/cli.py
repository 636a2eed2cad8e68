"""Command line: ``grsnn train | eval | predict | explain | stats | plot | summary | demo``."""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import List, Optional

import networkx as nx
import torch
from tqdm import tqdm

from .data import DataError, Vocab, fact_graph, read_triples
from .nn import GRSNN, SpikingDelayConv

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "datasets"


def _timing_check(data, num_rel: int, sources: List[int], steps: int, seed: int) -> None:
    """Compile the graph into a one-neuron-per-node circuit with random relation delays and
    compare first-spike times with networkx's Dijkstra (edge length = 1 + delay)."""
    gen = torch.Generator().manual_seed(seed)
    delays = torch.randint(0, 5, (num_rel, 1), generator=gen)
    conv = SpikingDelayConv(1, num_rel, time_steps=steps, bias=False)
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
    first = torch.where(spikes, t_idx, torch.full_like(t_idx, -1))
    first = torch.where(spikes.any(0), torch.where(spikes, t_idx, steps).min(0).values, -1)
    agree = total = 0
    for b, src in enumerate(sources):
        dist = nx.single_source_dijkstra_path_length(g, src, cutoff=steps - 1)
        for v in range(data.num_nodes):
            want = dist.get(v, -1)
            agree += int(first[v, b].item() == want)
            total += 1
    print(f"  first-spike time == networkx Dijkstra distance (within {steps} steps) for "
          f"{agree}/{total} (node, source) pairs from {len(sources)} sources")
    if agree != total:
        raise SystemExit("error: spike timing disagrees with networkx")


def demo(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    folder = Path(args.data_root) / "grail" / args.split
    ents, rels = Vocab(), Vocab()
    data, train = fact_graph(read_triples(folder / "train.txt"), ents, rels)
    valid_raw = [t for t in read_triples(folder / "valid.txt")
                 if t[0] in ents and t[2] in ents and t[1] in rels]
    _, valid = fact_graph(valid_raw, ents, rels, add=False)
    num_rel = 2 * len(rels)
    print(f"GraIL {args.split}: {data.num_nodes} entities, {len(rels)} relations, "
          f"{data.edge_index.size(1)} directed edges (inverses included)")

    print("1. spike timing encodes path length:")
    _timing_check(data, num_rel, random.sample(range(data.num_nodes), 4), 16, args.seed)

    print(f"2. training GRSNN for {args.steps} steps ({args.batch} queries x all "
          f"{data.num_nodes} entities per step, D={args.dim}, T=10):")
    model = GRSNN(num_rel, hidden_dim=args.dim)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    t0 = time.perf_counter()
    bar = tqdm(range(args.steps), unit="batch", file=sys.stdout, mininterval=1.0)
    for _ in bar:
        idx = torch.randint(0, train.size(0), (args.batch,))
        h, t, r = train[idx].t()
        flip = torch.rand(args.batch) < 0.5            # half head queries, as inverse queries
        h, t, r = torch.where(flip, t, h), torch.where(flip, h, t), torch.where(flip, r + len(rels), r)
        logits = model.score_all(data, h, r)
        target = torch.zeros_like(logits)
        target[torch.arange(args.batch), t] = 1.0
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, target, pos_weight=torch.tensor(float(data.num_nodes)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}",
                        q_per_s=f"{args.batch * bar.n / max(time.perf_counter() - t0, 1e-9):.1f}")
    bar.close()
    print(f"  {(time.perf_counter() - t0) / args.steps:.3f} s per training batch")

    print("3. unfiltered tail ranks of validation queries (all entities as candidates):")
    model.eval()
    with torch.no_grad():
        h, t, r = valid[: args.eval_queries].t()
        scores = model.score_all(data, h, r)
        target = scores.gather(1, t.view(-1, 1))
        rank = 1 + (scores > target).sum(1).float() + 0.5 * ((scores == target).sum(1) - 1)
        spikes = model.spike_trains(data, h, r)
    print(f"  {len(t)} queries: MRR {(1 / rank).mean():.3f}, Hits@10 {(rank <= 10).float().mean():.3f}"
          f" (realistic ranks; a random ranking has expected MRR "
          f"{sum(1 / k for k in range(1, data.num_nodes + 1)) / data.num_nodes:.3f})")
    rate = spikes.float().mean(dim=(1, 2, 3))
    print("  firing rate per time step: " + " ".join(f"{x:.3f}" for x in rate.tolist()))
    q, top = h[0].item(), scores[0].topk(3).indices.tolist()
    print(f"  example: ({ents.names[q]}, {rels.names[r[0].item() % len(rels)]}, ?) -> "
          + ", ".join(ents.names[i] for i in top) + f"   [true: {ents.names[t[0].item()]}]")


def _load_cfg(args: argparse.Namespace):
    from .tasks import apply_overrides, load_config, merge_config
    if getattr(args, "config", None):
        cfg = load_config(args.config)
    elif getattr(args, "data", None):
        folder = Path(args.data)
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder (expected train.txt, valid.txt, test.txt)")
        cfg = merge_config({"dataset": {"path": str(folder)}, "train": {"num_epoch": 10}})
    else:
        raise SystemExit("error: give a config (-c CONFIG) or a folder of triples (--data FOLDER)")
    return apply_overrides(cfg, args.set or [])


def _default_out(args: argparse.Namespace) -> Path:
    stem = Path(args.config).stem if args.config else Path(args.data).resolve().name
    return Path("runs") / stem


def cmd_train(args: argparse.Namespace) -> None:
    from .tasks import Trainer, build_task
    from .tasks.trainer import prepare_run_dir
    from .tasks import distributed as dist
    if args.resume and args.out and not (args.config or args.data):
        args.config = str(Path(args.out) / "config.yaml")     # the run's own configuration
        if not Path(args.config).is_file():
            raise DataError(f"{args.config}: not found (nothing to resume in {args.out})")
    elif not (args.config or args.data):
        from .tasks import ConfigError
        raise ConfigError("give a config (-c CONFIG) or a folder of triples (--data FOLDER), "
                          "or --out RUN --resume to continue a run")
    cfg = _load_cfg(args)
    out = Path(args.out) if args.out else _default_out(args)
    _join_processes(cfg)
    task = build_task(cfg)       # bad data fails here, before the run directory is touched
    # under torchrun only rank 0 touches the run directory; its error stops every rank
    dist.on_main(lambda: prepare_run_dir(out, resume=args.resume, force=args.force))
    if dist.is_main():
        print(f"data: {task.data}\nrun directory: {out}"
              + (f"\nprocesses: {dist.world_size()}" if dist.is_distributed() else ""))
    results = Trainer(task, cfg, out, progress=not args.quiet).fit(resume=args.resume)
    if not dist.is_main():
        return
    _print_results(results)
    if hasattr(task, "predict"):
        _print_examples(task, _best_model(task, out))
    print(f"run directory: {out} (config.yaml, log.txt, metrics.jsonl, results.json, best.pt, last.pt)")


def _best_model(task, out: Path):
    from .tasks import load_checkpoint
    model = task.build_model()
    path = out / "best.pt" if (out / "best.pt").is_file() else out / "last.pt"
    model.load_state_dict(load_checkpoint(path)["model"])
    return model


def _print_results(results) -> None:
    # the metrics both splits have (a resumed run's valid metrics may come from an older
    # version that computed fewer)
    keys = [k for k in ("mrr", "hits@1", "hits@3", "hits@10", "hits@10_50", "mr",
                        "pessimistic.mrr", "pessimistic.hits@10", "auroc", "ap",
                        "pessimistic.auroc", "tied_fraction")
            if k in results["test"] and k in results["valid"]]
    print("\n" + "split".ljust(8) + "".join(k.rjust(20) for k in keys))
    for split in ("valid", "test"):
        print(split.ljust(8) + "".join(f"{results[split][k]:20.4f}" for k in keys))


def _print_examples(task, model, count: int = 3, top: int = 5) -> None:
    sp = task.data.splits["test"]
    print("\nexample predictions on the test graph (* = known true answer):")
    for h, t, r in sp.triples[:count].tolist():
        head, rel = sp.entities[h], task.data.relations[r]
        answers = task.predict(model, head, rel, top=top)
        print(f"  ({head}, {rel}, ?)  true: {sp.entities[t]}")
        for i, (name, score, known) in enumerate(answers, 1):
            print(f"    {i}. {name} {score:.3f}{' *' if known else ''}")


def _load_trained(path: str, kg_only: str = ""):
    """``(task, model)`` from a checkpoint (its own config and data); ``kg_only`` names
    a command that needs a knowledge-graph checkpoint."""
    from .tasks import build_task, load_checkpoint
    state = load_checkpoint(path)
    task = build_task(_stored_config(state, path))
    if kg_only and not hasattr(task, "predict"):
        raise DataError(f"{kg_only} works on knowledge-graph checkpoints (kg_completion)")
    model = task.build_model()
    model.load_state_dict(state["model"])
    return task, model


def _stored_config(state, path):
    """The config saved in a checkpoint, with the defaults of keys added since."""
    from .tasks import ConfigError, merge_config
    try:
        return merge_config(state["config"])
    except (KeyError, ConfigError) as err:
        raise ConfigError(f"{path}: the stored config is not valid ({err})") from None


def _join_processes(cfg) -> None:
    """Under ``torchrun``: pick this process's device and join the process group."""
    from .tasks import distributed as dist
    dist.set_deterministic(cfg["train"]["deterministic"])
    dist.init_from_env(dist.device_for(cfg["train"]["device"]))


def cmd_eval(args: argparse.Namespace) -> None:
    from .tasks import apply_overrides, build_task, evaluate_checkpoint, load_checkpoint
    from .tasks import distributed as dist
    from .tasks.trainer import load_model, partial_eval_path
    if args.config:
        cfg = _load_cfg(args)
    else:
        cfg = apply_overrides(_stored_config(load_checkpoint(args.checkpoint), args.checkpoint),
                              args.set or [])
    _join_processes(cfg)
    task = build_task(cfg)
    partial = None
    if getattr(task, "resumable", False):
        partial = partial_eval_path(args.checkpoint, args.split)
        if args.restart and partial.is_file():
            partial.unlink()
    if not args.by_distance:
        metrics = evaluate_checkpoint(task, args.checkpoint, args.split, progress=not args.quiet,
                                      partial=partial)
    else:
        from .tasks.analysis import GROUP_COLUMNS, GROUP_ONLY, format_breakdown
        model = load_model(task, args.checkpoint)
        rows = task.breakdown(model, args.split, progress=not args.quiet, partial=partial)
        metrics = {k: v for k, v in rows[0].items() if k != "group" and k not in GROUP_ONLY}
    if dist.is_main():
        for k, v in metrics.items():
            print(f"{args.split}.{k}: {v:.6g}")
        if args.by_distance:
            print(f"\nby hop distance from the query's source to its answer in the {args.split}"
                  f" graph (horizon {model.time_steps - 1} hops):")
            print(format_breakdown(rows, [c for c in GROUP_COLUMNS if c in rows[0]]))


def cmd_predict(args: argparse.Namespace) -> None:
    task, model = _load_trained(args.checkpoint, kg_only="predict")
    answers = task.predict(model, args.head, args.relation, top=args.top, split=args.split)
    print(f"({args.head}, {args.relation}, ?) on the {args.split} graph (* = known true):")
    for i, (name, score, known) in enumerate(answers, 1):
        print(f"{i:4d}. {name}\t{score:.4f}{'  *' if known else ''}")


def cmd_stats(args: argparse.Namespace) -> None:
    from .tasks.stats import circuit_stats
    task, model = _load_trained(args.checkpoint)
    if hasattr(task, "predict"):
        sp = task.data.splits[args.split]
        h, _, r = sp.triples[: args.queries].t()
        graph = sp.graph
    else:
        h = task.data.pos[args.split][0, : args.queries]
        r = torch.zeros_like(h)
        graph = task.graph
    stats = circuit_stats(model, graph, h, r)
    print(f"{stats['queries']} {args.split} queries on {stats['nodes']} nodes, {stats['edges']} "
          f"edges, T = {stats['time_steps']}, D = {stats['neurons_per_node']}")
    print("firing rate per time step: " + " ".join(f"{x:.4f}" for x in stats["firing_rate_per_step"]))
    print(f"firing rate (all steps): {stats['firing_rate']:.4f}")
    print(f"spikes per query: {stats['spikes_per_query']:.0f}; delivered along edges: "
          f"{stats['delivered_spikes_per_query']:.0f}")
    print(f"delivered spikes x D (the synaptic operations of sum aggregation): "
          f"{stats['sops_per_query']:.4g}")
    print(f"operations per query, spiking circuit: {stats['snn_acs_per_query']:.4g} AC + "
          f"{stats['snn_macs_per_query']:.4g} MAC; non-spiking path GNN of the same size "
          f"(T-1 layers): {stats['gnn_acs_per_query']:.4g} AC + "
          f"{stats['gnn_macs_per_query']:.4g} MAC")
    print(f"energy per query (0.9 pJ/AC, 4.6 pJ/MAC): spiking "
          f"{stats['snn_energy_uj_per_query']:.4g} uJ vs GNN "
          f"{stats['gnn_energy_uj_per_query']:.4g} uJ (GNN / spiking = "
          f"{stats['energy_ratio_gnn_over_snn']:.2f})")
    from .tasks.analysis import format_breakdown
    print("\nreach of the query by hop distance from its source (informed: the spike train "
          "differs from the node's train without the source's current):")
    print(format_breakdown(stats["reach_by_distance"], ["fired", "first_spike", "informed"]))


def cmd_plot(args: argparse.Namespace) -> None:
    from .tasks.plots import compare_runs, delay_histogram, learning_curve
    run = Path(args.run)
    for r in [run, *map(Path, args.compare or [])]:
        if not (r / "metrics.jsonl").is_file():
            raise DataError(f"{r}: no metrics.jsonl (not a run directory?)")
    out = Path(args.out) if args.out else run
    out.mkdir(parents=True, exist_ok=True)
    print(f"wrote {learning_curve(run, out / 'learning_curve.png')}")
    if args.compare:
        print(f"wrote {compare_runs([run, *args.compare], out / 'compare.png')}")
    ckpt = run / "best.pt" if (run / "best.pt").is_file() else run / "last.pt"
    task, model = _load_trained(str(ckpt))
    names = task.data.relations if hasattr(task.data, "relations") else ["link"]
    queries = torch.arange(model.num_relations)
    print(f"wrote {delay_histogram(model, queries, names, out / 'delays.png')}")


def cmd_summary(args: argparse.Namespace) -> None:
    from .tasks.summary import summary_table
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    print(summary_table(args.runs, metrics))


def cmd_explain(args: argparse.Namespace) -> None:
    from .tasks.explain import explain_prediction
    task, model = _load_trained(args.checkpoint, kg_only="explain")
    sp = task.data.splits[args.split]
    h, r = task.resolve(args.split, args.head, args.relation)
    t, _ = task.resolve(args.split, args.tail, args.relation)
    paths, importance, score = explain_prediction(model, sp.graph, h, r, t, top=args.top)
    labels = task.data.edge_type_names()
    edge_names = [labels[x] for x in sp.graph.edge_type.tolist()]
    print(f"({args.head}, {args.relation}, {args.tail}): score {score:.4f}; "
          f"{len(paths)} paths by average edge importance (gradient of the score):")
    for i, p in enumerate(paths, 1):
        hops = " ".join(f"--[{edge_names[e]}]--> {sp.entities[v]}"
                        for e, v in zip(p.edges, p.nodes[1:]))
        print(f"{i:3d}. {p.importance:+.4f}  {sp.entities[p.nodes[0]]} {hops}")
    if args.plot:
        from .paths import hop_distances
        from .tasks.plots import delay_heatmap, first_spike_vs_hops, path_subgraph, spike_raster
        out = Path(args.plot)
        out.mkdir(parents=True, exist_ok=True)
        spikes = model.spike_trains(sp.graph, torch.tensor([h]), torch.tensor([r]))[:, :, 0]
        best = paths[0].nodes if paths else [h, t]
        files = [spike_raster(spikes, best, [sp.entities[v] for v in best], out / "raster.png")]
        on_path = sorted({int(sp.graph.edge_type[e]) for p in paths for e in p.edges})
        delays = model.integer_delays(torch.tensor([r]))[0]
        files.append(delay_heatmap(delays, labels, on_path, out / "delays_heatmap.png"))
        hops = hop_distances(sp.graph.edge_index, sp.graph.num_nodes, h)
        files.append(first_spike_vs_hops(spikes, hops, out / "first_spike_vs_hops.png"))
        files.append(path_subgraph(paths, sp.graph.edge_index, sp.entities, edge_names,
                                   out / "explained_subgraph.png"))
        print("wrote " + ", ".join(str(f) for f in files))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="grsnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model from a task YAML or a folder of triples")
    src = p.add_mutually_exclusive_group()
    src.add_argument("-c", "--config", help="task YAML (see tasks/; with --resume and --out "
                     "alone: the run's own config.yaml)")
    src.add_argument("--data", help="folder with train.txt, valid.txt, test.txt (head, relation, tail)")
    p.add_argument("--out", help="run directory (default: runs/<config or folder name>)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config value")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--force", action="store_true", help="start over in a non-empty run directory")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint")
    p.add_argument("-c", "--config", help="task YAML (default: the config stored in the checkpoint)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", choices=("valid", "test"), default="test")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--by-distance", action="store_true",
                   help="also group the results by the hop distance from source to answer")
    p.add_argument("--restart", action="store_true",
                   help="discard the saved progress of an interrupted evaluation (knowledge "
                        "graphs keep it once a minute in <checkpoint>.eval_<split>.partial.pt "
                        "and resume from it)")
    p.set_defaults(func=cmd_eval, data=None)

    p = sub.add_parser("predict", help="ranked answers of (head, relation, ?) by name")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--head", required=True)
    p.add_argument("--relation", required=True, help="relation name (append ^-1 for its inverse)")
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--split", choices=("train", "valid", "test"), default="test",
                   help="graph to answer on (inductive data: test is the unseen graph)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("explain", help="most important paths of a prediction, and pictures")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--head", required=True)
    p.add_argument("--relation", required=True, help="relation name (append ^-1 for its inverse)")
    p.add_argument("--tail", required=True)
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--split", choices=("train", "valid", "test"), default="test")
    p.add_argument("--plot", metavar="DIR", help="write raster, delay heatmap, first spike vs "
                   "hops and the explained subgraph as PNG files into DIR")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("stats", help="firing rates, synaptic operations and energy of a checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", choices=("train", "valid", "test"), default="test")
    p.add_argument("--queries", type=int, default=32, help="number of target queries sampled")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("plot", help="learning curve and delay histogram of a run (PNG)")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--out", help="folder for the PNG files (default: the run directory)")
    p.add_argument("--compare", action="append", metavar="RUN",
                   help="another run directory: also write compare.png (validation metric "
                        "per epoch of every run)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("summary", help="one Markdown table of several runs (epochs, best "
                       "valid epoch, test metrics, training time)")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    p.add_argument("--metrics", help="comma-separated test metrics to show (default: mrr, "
                   "hits@1, hits@10, hits@10_50, pessimistic.mrr, pessimistic.hits@10_50, "
                   "auroc, ap, pessimistic.auroc: those some run has)")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("demo", help="engine demo: spike timing and a short run on a GraIL split")
    p.add_argument("--data-root", default=str(DEFAULT_DATA),
                   help="folder holding grail/<split>/ (default: the repository's datasets/)")
    p.add_argument("--split", default="fb237_v1")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--eval-queries", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=demo)

    args = parser.parse_args(argv)
    from .tasks import ConfigError, RunError
    from .tasks import distributed as dist
    try:
        args.func(args)
    except (DataError, ConfigError, RunError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = {"train": "the same command with --resume continues from last.pt",
                "eval": "the same command continues from the last saved progress (once a "
                        "minute; --restart discards it)"}.get(args.command, "")
        print("interrupted" + (f": {hint}" if hint else ""), file=sys.stderr)
        return 130
    finally:
        dist.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
