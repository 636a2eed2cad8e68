"""Where the time of a training batch and of an evaluation pass goes (torch.profiler).

For the task config given, one training batch (what ``grsnn train`` runs per batch:
sampling, forward, backward) and one evaluation pass (``--eval-queries`` queries scored
against every entity) are profiled after a warm-up batch; the operators with the largest
self CPU time are printed with their share of the total. The compiled neuron step shows as
``CompiledFunction`` / ``Torch-Compiled Region`` rows.

Run:  python benchmarks/profile_batch.py [--config paper/kg_completion/WN18RR_v2] [--data-root DIR]
          [--top 15] [--eval-queries 32] [--timed N] [--warmup N] [--no-train]
          [--set model.compiled=false ...] [--device cuda]
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from grsnn.tasks import build_task, load_config  # noqa: E402
from grsnn.training.config import apply_overrides  # noqa: E402
from grsnn.training.memory import keep_freed_memory, release_free_memory  # noqa: E402
from grsnn.training import distributed as dist  # noqa: E402
from grsnn.training.trainer import accumulate_gradients  # noqa: E402


def _faults() -> int:
    """Minor page faults of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


DEVICE = torch.device("cpu")


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def _activities():
    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if DEVICE.type == "cuda" else [])


def table(prof, top: int) -> str:
    """Operators by self time (on a GPU: self device time, the kernels' time)."""
    attr = "self_device_time_total" if DEVICE.type == "cuda" else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, attr) > 0]
    total = sum(getattr(e, attr) for e in events)
    events.sort(key=lambda e: getattr(e, attr), reverse=True)
    lines = [f"  {'operator':48s} {'calls':>7s} {'self ms':>9s} {'share':>6s}"]
    for e in events[:top]:
        lines.append(f"  {e.key[:48]:48s} {e.count:7d} {getattr(e, attr) / 1e3:9.1f} "
                     f"{getattr(e, attr) / total:6.1%}")
    lines.append(f"  {'total':48s} {'':7s} {total / 1e3:9.1f}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="paper/kg_completion/WN18RR_v2")
    p.add_argument("--data-root", default=None)
    p.add_argument("--glibc-default", action="store_true",
                   help="leave glibc's mmap/trim thresholds at their defaults (baseline)")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--eval-queries", type=int, default=32)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--warmup", type=int, default=3, metavar="N",
                   help="training batches run before the profiled one (default 3)")
    p.add_argument("--no-train", action="store_true",
                   help="profile the evaluation pass only (no training batch)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    p.add_argument("--timed", type=int, default=0, metavar="N",
                   help="also time N training batches (and N evaluation passes) without the "
                        "profiler")
    args = p.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    if not args.glibc_default:
        keep_freed_memory()   # as grsnn train / eval do on CPU
    cfg = load_config(ROOT / "tasks" / f"{args.config}.yaml")
    if args.data_root:
        cfg["dataset"]["root"] = args.data_root
    cfg = apply_overrides(cfg, args.set)
    task = build_task(cfg)
    torch.manual_seed(0)
    model = task.build_model().to(DEVICE)
    gen = torch.Generator().manual_seed(0)
    bs = cfg["train"]["batch_size"]
    where = (torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda"
             else f"{torch.get_num_threads()} threads")
    print(f"{args.config}: torch {torch.__version__}, {where}, "
          f"batch {bs}, compiled={cfg['model']['compiled']}")
    # warm-up batches (compiles; the heap grows until its pages are reused: the second
    # WN18RR_v2 batch still faulted in 189k pages, the fourth none), then the profiled one
    runs = 0 if args.no_train else args.warmup + 1
    for i in range(runs):
        idx = torch.randint(0, task.num_train, (bs,), generator=gen)
        with profile(activities=_activities()) if i == runs - 1 else _null() as prof:
            t0, f0 = time.perf_counter(), _faults()
            _batch(task, model, cfg, idx, gen)
            sec, faults = time.perf_counter() - t0, _faults() - f0
        release_free_memory()     # between batches, as grsnn train does
    if not args.no_train:
        # page faults are slow on these VMs (about 20 us each, the kernel zeroing the
        # page): a profiled batch that still faults shows them as fill_ / copy_ time
        print(f"training batch: {sec:.3f} s (profiled), {faults} minor page faults\n"
              f"{table(prof, args.top)}")
    times = []
    for _ in range(args.timed):
        idx = torch.randint(0, task.num_train, (bs,), generator=gen)
        t0, f0 = time.perf_counter(), _faults()
        _batch(task, model, cfg, idx, gen)
        times.append((time.perf_counter() - t0, _faults() - f0))
        release_free_memory()
    if times:
        print("training batches without the profiler: "
              + ", ".join(f"{t:.3f} s ({f} faults)" for t, f in times))
    if hasattr(task, "evaluate"):
        cfg["task"]["max_eval_queries"] = args.eval_queries
        for i in range(2):
            with profile(activities=_activities()) if i else _null() as prof:
                t0 = time.perf_counter()
                task.evaluate(model, "valid", progress=False)
                _sync()
                sec = time.perf_counter() - t0
        print(f"evaluation of {args.eval_queries} valid triples: {sec:.3f} s (profiled)\n"
              f"{table(prof, args.top)}")
        times = []
        for _ in range(args.timed):
            t0 = time.perf_counter()
            task.evaluate(model, "valid", progress=False)
            _sync()
            times.append(time.perf_counter() - t0)
        if times:
            print("evaluations without the profiler: "
                  + ", ".join(f"{t:.3f}" for t in times) + " s")
    return 0


def _batch(task, model, cfg, idx, gen) -> None:
    """One training batch as ``grsnn train`` runs it (sampling on the CPU, then the
    forward and backward passes on the device)."""
    graph, batch = task.make_batch(idx, gen)
    accumulate_gradients(task, model, cfg, dist.to_device(graph, DEVICE), batch.to(DEVICE))
    _sync()


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    sys.exit(main())
