"""The ``grsnn`` command: train, eval, predict, explain, stats, plot, compare, summary, demo."""
# This module parses and dispatches. It imports only the standard library at the top:
# ``grsnn --help`` and argument errors answer without importing torch, and every command
# imports the parts of the library it calls.
from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "datasets"

Config = Dict[str, Dict[str, Any]]


# ------------------------------------------------------------------ helpers
def _load_cfg(args: argparse.Namespace) -> Config:
    from .data import DataError
    from .training import apply_overrides, load_config, merge_config
    if args.config:
        cfg = load_config(args.config)
    elif args.data:
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


def _join_processes(cfg: Config) -> None:
    """Under ``torchrun``: pick this process's device and join the process group."""
    from .training import distributed as dist
    dist.set_deterministic(cfg["train"]["deterministic"])
    dist.init_from_env(dist.device_for(cfg["train"]["device"]))


@contextmanager
def _one_thread() -> Iterator[None]:
    """One query's operations are small: handing each of them to a second thread costs
    more than it saves (much more on a busy machine)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _load_for_queries(path: str, command: str = ""):
    """``(task, model)`` of a checkpoint, uncompiled (a few queries do not repay a
    compilation); ``command`` names a command that needs a knowledge-graph checkpoint."""
    from .data import DataError
    from .tasks import load_trained
    task, model = load_trained(path, compiled=False)
    if command and not task.supports_prediction:
        raise DataError(f"{command} works on knowledge-graph checkpoints (kg_completion)")
    return task, model


def _print_results(results: Dict[str, Dict[str, float]]) -> None:
    from .metrics import shown_metrics
    # the metrics both splits have (the valid metrics of a run resumed from a checkpoint
    # may lack some that its test has)
    keys = shown_metrics(results["test"], results["valid"])
    print("\n" + "split".ljust(8) + "".join(k.rjust(20) for k in keys))
    for split in ("valid", "test"):
        print(split.ljust(8) + "".join(f"{results[split][k]:20.4f}" for k in keys))


def _print_examples(task, model, count: int = 3, top: int = 5) -> None:
    print("\nexample predictions on the test graph (* = known true answer):")
    for head, rel, tail in task.example_queries("test", count):
        answers = task.predict(model, head, rel, top=top)
        print(f"  ({head}, {rel}, ?)  true: {tail}")
        for i, (name, score, known) in enumerate(answers, 1):
            print(f"    {i}. {name} {score:.3f}{' *' if known else ''}")


# ------------------------------------------------------------------ commands
def cmd_train(args: argparse.Namespace) -> None:
    from .data import DataError
    from .tasks import build_task
    from .training import (ConfigError, Trainer, check_run_dir, load_model, prepare_run_dir,
                           run_checkpoint)
    from .training import distributed as dist
    if args.resume and args.out and not (args.config or args.data):
        args.config = str(Path(args.out) / "config.yaml")     # the run's own configuration
        if not Path(args.config).is_file():
            raise DataError(f"{args.config}: not found (nothing to resume in {args.out})")
    elif not (args.config or args.data):
        raise ConfigError("give a config (-c CONFIG) or a folder of triples (--data FOLDER), "
                          "or --out RUN --resume to continue a run")
    cfg = _load_cfg(args)
    out = Path(args.out) if args.out else _default_out(args)
    _join_processes(cfg)
    # under torchrun only rank 0 touches the run directory; its error stops every rank
    dist.on_main(lambda: check_run_dir(out, resume=args.resume, force=args.force))
    task = build_task(cfg)       # bad data fails here, before the run directory is touched
    trainer = Trainer(task, cfg, out, progress=not args.quiet)      # and a bad model here
    dist.on_main(lambda: prepare_run_dir(out, resume=args.resume, force=args.force))
    if dist.is_main():
        print(f"data: {task.data}\nrun directory: {out}"
              + (f"\nprocesses: {dist.world_size()}" if dist.is_distributed() else ""))
    results = trainer.fit(resume=args.resume)
    if not dist.is_main():
        return
    _print_results(results)
    if task.supports_prediction:
        _print_examples(task, load_model(task, run_checkpoint(out), device="cpu"))
    print(f"run directory: {out} (config.yaml, log.txt, metrics.jsonl, results.json, best.pt, "
          f"last.pt)")


def cmd_eval(args: argparse.Namespace) -> None:
    from .tasks import build_task
    from .tasks.distance_breakdown import GROUP_COLUMNS, GROUP_ONLY, format_breakdown
    from .training import apply_overrides
    from .training import distributed as dist
    from .training.checkpoints import (evaluate_checkpoint, load_checkpoint, load_model,
                                       partial_eval_path, stored_config)
    if args.config:
        cfg = _load_cfg(args)
    else:
        cfg = apply_overrides(stored_config(load_checkpoint(args.checkpoint), args.checkpoint),
                              args.set or [])
    _join_processes(cfg)
    task = build_task(cfg)
    if args.split not in task.split_names:
        from .data import DataError
        raise DataError(f"--split {args.split}: {task.data.name} has no such split "
                        f"(test_valid: GraIL splits, `_ind/valid.txt`)")
    partial = None
    if task.resumable:
        partial = partial_eval_path(args.checkpoint, args.split)
        if args.restart and partial.is_file():
            partial.unlink()
    if not args.by_distance:
        metrics = evaluate_checkpoint(task, args.checkpoint, args.split, progress=not args.quiet,
                                      partial=partial)
    else:
        model = load_model(task, args.checkpoint)
        rows = task.breakdown(model, args.split, progress=not args.quiet, partial=partial)
        metrics = {k: v for k, v in rows[0].items() if k != "group" and k not in GROUP_ONLY}
    if dist.is_main():
        for k, v in metrics.items():
            print(f"{args.split}.{k}: {v:.6g}")
        if args.by_distance:
            print(f"\nby hop distance from the query's source to its answer in the {args.split}"
                  f" graph (horizon {model.eval_steps - 1} hops):")
            print(format_breakdown(rows, [c for c in GROUP_COLUMNS if c in rows[0]]))


def cmd_predict(args: argparse.Namespace) -> None:
    with _one_thread():
        task, model = _load_for_queries(args.checkpoint, "predict")
        answers = task.predict(model, args.head, args.relation, top=args.top, split=args.split)
    print(f"({args.head}, {args.relation}, ?) on the {args.split} graph (* = known true):")
    for i, (name, score, known) in enumerate(answers, 1):
        print(f"{i:4d}. {name}\t{score:.4f}{'  *' if known else ''}")


def cmd_explain(args: argparse.Namespace) -> None:
    from .reports.explain import explain_query, explanation_pictures
    with _one_thread():
        task, model = _load_for_queries(args.checkpoint, "explain")
        expl = explain_query(task, model, args.head, args.relation, args.tail, args.split,
                             args.top)
    print("\n".join(expl.lines()))
    if args.plot:
        files = explanation_pictures(task, model, expl, args.plot)
        print("wrote " + ", ".join(str(f) for f in files))
    if args.html:
        from .viz import write_explanation_html
        with _one_thread():
            page = write_explanation_html(task, model, expl, args.html, max_nodes=args.nodes,
                                          top=args.top)
        print(f"wrote {page} ({page.stat().st_size / 1e6:.1f} MB; open it in a browser)")


def cmd_stats(args: argparse.Namespace) -> None:
    from .reports.firing_stats import circuit_stats, format_circuit_stats
    task, model = _load_for_queries(args.checkpoint)
    graph, heads, relations = task.circuit_queries(args.split, args.queries)
    print(format_circuit_stats(circuit_stats(model, graph, heads, relations), args.split))


def cmd_plot(args: argparse.Namespace) -> None:
    import torch

    from .data import DataError
    from .training.checkpoints import run_checkpoint
    from .reports.plots import compare_runs, delay_histogram, learning_curve
    run = Path(args.run)
    for r in [run, *map(Path, args.compare or [])]:
        if not (r / "metrics.jsonl").is_file():
            raise DataError(f"{r}: no metrics.jsonl (not a run directory?)")
    out = Path(args.out) if args.out else run
    out.mkdir(parents=True, exist_ok=True)
    print(f"wrote {learning_curve(run, out / 'learning_curve.png')}")
    if args.compare:
        print(f"wrote {compare_runs([run, *args.compare], out / 'compare.png')}")
    task, model = _load_for_queries(str(run_checkpoint(run)))
    queries = torch.arange(model.num_relations)
    print(f"wrote {delay_histogram(model, queries, task.relation_names(), out / 'delays.png')}")


def cmd_compare(args: argparse.Namespace) -> None:
    from .reports.mechanism import format_comparison, mechanism_report
    before, after = (mechanism_report(path, args.split, args.queries, progress=not args.quiet)
                     for path in (args.before, args.after))
    print(format_comparison(before, after, args.before, args.after))


def cmd_summary(args: argparse.Namespace) -> None:
    from .reports.run_summary import summary_table
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    print(summary_table(args.runs, metrics))


def cmd_demo(args: argparse.Namespace) -> None:
    from .reports.demo import run_demo
    run_demo(args.data_root, args.split, steps=args.steps, batch=args.batch, dim=args.dim,
             eval_queries=args.eval_queries, seed=args.seed)


# ------------------------------------------------------------------ parser
_SET_HELP = ("override config values: one or more SECTION.KEY=VALUE (e.g. --set "
             "train.num_epoch=2 train.seed=3; --set may be repeated)")


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="extend", nargs="+", metavar="SECTION.KEY=VALUE",
                   help=_SET_HELP)


def _add_checkpoint_query(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--head", required=True)
    p.add_argument("--relation", required=True, help="relation name (append ^-1 for its inverse)")


def _add_training(sub) -> None:
    p = sub.add_parser("train", help="train a model from a task YAML or a folder of triples")
    src = p.add_mutually_exclusive_group()
    src.add_argument("-c", "--config", help="task YAML (see tasks/; with --resume and --out "
                     "alone: the run's own config.yaml)")
    src.add_argument("--data", help="folder with train.txt, valid.txt, test.txt (head, "
                     "relation, tail)")
    p.add_argument("--out", help="run directory (default: runs/<config or folder name>)")
    _add_set(p)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--force", action="store_true", help="start over in a non-empty run directory")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint")
    p.add_argument("-c", "--config",
                   help="task YAML (default: the config stored in the checkpoint)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", choices=("valid", "test", "test_valid"), default="test",
                   help="test_valid (GraIL): the `_ind/valid.txt` targets on the test graph")
    _add_set(p)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--by-distance", action="store_true",
                   help="also group the results by the hop distance from source to answer")
    p.add_argument("--restart", action="store_true",
                   help="discard the saved progress of an interrupted evaluation (knowledge "
                        "graphs keep it once a minute in <checkpoint>.eval_<split>.partial.pt "
                        "and resume from it)")
    p.set_defaults(func=cmd_eval, data=None)


def _add_queries(sub) -> None:
    p = sub.add_parser("predict", help="ranked answers of (head, relation, ?) by name")
    _add_checkpoint_query(p)
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--split", choices=("train", "valid", "test"), default="test",
                   help="graph to answer on (inductive data: test is the unseen graph)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("explain", help="most important paths of a prediction, and pictures")
    _add_checkpoint_query(p)
    p.add_argument("--tail", required=True)
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--split", choices=("train", "valid", "test"), default="test")
    p.add_argument("--plot", metavar="DIR", help="write raster, delay heatmap, first spike vs "
                   "hops and the explained subgraph as PNG files into DIR")
    p.add_argument("--html", metavar="FILE", help="write one self-contained interactive page "
                   "(spikes step by step, delays, paths, answers) to FILE")
    p.add_argument("--nodes", type=int, default=150,
                   help="largest subgraph the --html page shows (default 150)")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("stats", help="firing rates, synaptic operations and energy of a checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", choices=("train", "valid", "test"), default="test")
    p.add_argument("--queries", type=int, default=32, help="number of target queries sampled")
    p.set_defaults(func=cmd_stats)


def _add_reports(sub) -> None:
    p = sub.add_parser("plot", help="learning curve and delay histogram of a run (PNG)")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--out", help="folder for the PNG files (default: the run directory)")
    p.add_argument("--compare", action="append", metavar="RUN",
                   help="another run directory: also write compare.png (validation metric "
                        "per epoch of every run)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("compare", help="before/after table of two checkpoints: the query's "
                       "reach, first spikes, firing rate, ties and metrics by hop distance")
    p.add_argument("before", help="checkpoint A (e.g. the paper's circuit)")
    p.add_argument("after", help="checkpoint B")
    p.add_argument("--split", choices=("train", "valid", "test"), default="test")
    p.add_argument("--queries", type=int, default=64,
                   help="queries whose spike trains are measured (the metrics use the split)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("summary", help="one Markdown table of several runs (epochs, best "
                       "valid epoch, test metrics, training time)")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    p.add_argument("--metrics", help="comma-separated test metrics to show (default: those "
                   "of mrr, hits@1, hits@3, hits@10, hits@10_50, mr, pessimistic.mrr, "
                   "pessimistic.hits@10, pessimistic.hits@10_50, auroc, ap, "
                   "pessimistic.auroc, tied_fraction that some run has)")
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
    p.set_defaults(func=cmd_demo)


#: the functions that add the subcommands to the parser, in the order ``--help`` lists them
SUBCOMMANDS: List[Callable[[Any], None]] = [_add_training, _add_queries, _add_reports]


def build_parser() -> argparse.ArgumentParser:
    """The ``grsnn`` argument parser (no heavy imports)."""
    parser = argparse.ArgumentParser(prog="grsnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


_INTERRUPT_HINTS = {
    "train": "the same command with --resume continues from last.pt",
    "eval": "the same command continues from the last saved progress (once a minute; "
            "--restart discards it)",
}


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from .data import DataError
    from .training import ConfigError, RunError
    from .training import distributed as dist
    try:
        args.func(args)
    except (DataError, ConfigError, RunError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = _INTERRUPT_HINTS.get(args.command, "")
        print("interrupted" + (f": {hint}" if hint else ""), file=sys.stderr)
        return 130
    finally:
        dist.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
