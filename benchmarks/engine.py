"""Engine benchmark: GRSNN at the FB15k-237 configuration against a per-edge baseline.

Seconds per batch and peak memory on the FB15k-237 training graph with inverse edges (E =
544,230, 474 edge types) at the paper's configuration: B queries x candidates tails, D=32,
T=10, tau=4, V_th=2, K=4, linear_scale 0.1, dependent query-conditioned delays, sum.
  (a) engine    ``grsnn.nn.GRSNN(...)(data, batch)``;
  (b) baseline  the same math (docs/method.md sections 3-4) done the straightforward way: full
                spike history [N, B, D, t] grown by torch.cat, a per-edge int64 time index
                [E, B, D] per step for an advanced-indexing delayed gather, index_add_ into
                destinations, a custom autograd function for the trace-based delay gradient;
  (c) floor     T-1 = 9 products torch.sparse.mm(A, X), A the CSR adjacency over the same
                edges, X dense [N, B*D]: the bandwidth floor of one pass over the edges.
"forward" runs under torch.no_grad(); "fwd+bwd" adds .backward() of BCE-with-logits with
column 0 positive ((c): of the sum of the outputs). Time: one warm-up batch, then the median
of --repeats batches (--repeats-baseline for (b)); both default to 1 so that every variant
runs the same sequence of batches and the peak memory compares like with like (glibc's
adaptive allocator keeps freed blocks, so a process's peak RSS creeps up with every batch).
Memory: each variant runs in a fresh subprocess (--worker a|b|c); peak RSS (ru_maxrss, reset
through /proc/self/clear_refs) minus the RSS after data loading and model construction, in MiB.

Run:  python benchmarks/engine.py [--data-root DIR] [--queries 5] [--candidates 257]
          [--repeats 1] [--repeats-baseline 1] [--variants a,b,c] [--max-edges M]
          [--mmap-threshold BYTES]   # e.g. 131072: freed blocks go back to the OS, so the
                                     # peak RSS is the memory in use, not glibc's cache
      python benchmarks/engine.py --check   # (b) reproduces (a): float64 logits and grads
The data root defaults to $GRSNN_DATA_ROOT, else ../shared/datasets beside the repository.
"""
import argparse
import contextlib
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch_geometric.data import Data  # noqa: E402
from grsnn.nn import GRSNN  # noqa: E402

CONFIG = dict(hidden_dim=32, time_steps=10, linear_scale=0.1)  # tau 4, V_th 2, K 4: defaults


# ------------------------------------------------------------------ (b) per-edge baseline
class _SpikeFn(torch.autograd.Function):
    """Heaviside (H(0) = 1) forward, sigmoid surrogate (alpha = 4) backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        sg = torch.sigmoid(4.0 * ctx.saved_tensors[0])
        return g * 4.0 * sg * (1 - sg)


class _DelayedGather(torch.autograd.Function):
    """m[e, b, k] = hist[src_e, b, k, t-1-delta] (0 where delta >= t), per edge."""

    @staticmethod
    def forward(ctx, hist, delay, trace, src, etype):
        n, b, d, t = hist.shape
        delta = torch.round(delay.detach()).long()                     # [B, R, D]
        tidx = (t - 1) - delta.transpose(0, 1)[etype]                  # [E, B, D] int64
        mask = tidx >= 0
        tidx.clamp_(min=0)
        ib, ik = torch.arange(b).view(1, -1, 1), torch.arange(d).view(1, 1, -1)
        msg = hist[src.view(-1, 1, 1), ib, ik, tidx].masked_fill_(~mask, 0)
        ctx.save_for_backward(tidx, mask, trace, src, etype)
        ctx.hist_shape, ctx.num_rel = hist.shape, delay.size(1)
        return msg

    @staticmethod
    def backward(ctx, g):
        tidx, mask, trace, src, etype = ctx.saved_tensors
        b, d = ctx.hist_shape[1:3]
        g = g.masked_fill(~mask, 0)
        idx = (src.view(-1, 1, 1), torch.arange(b).view(1, -1, 1),
               torch.arange(d).view(1, 1, -1), tidx)
        grad_hist = grad_delay = None
        if ctx.needs_input_grad[0]:  # scatter-add over the time index
            grad_hist = g.new_zeros(ctx.hist_shape).index_put_(idx, g, accumulate=True)
        if ctx.needs_input_grad[1]:  # straight through the rounding: g * trace
            gd = g * trace[idx]
            grad_delay = g.new_zeros(ctx.num_rel, b, d).index_add_(0, etype, gd).transpose(0, 1)
        return grad_hist, grad_delay, None, None, None


class PerEdgeBaseline(nn.Module):
    """The GRSNN forward of docs/method.md section 3 with per-edge, full-history message passing."""

    def __init__(self, model: GRSNN):
        super().__init__()
        conv, R, D = model.conv, model.num_relations, model.hidden_dim
        self.R, self.D, self.T, self.tau = R, D, conv.time_steps, conv.tau
        self.vth, self.K, self.lam = conv.v_threshold, conv.delay_bound, conv.linear_scale
        self.query, self.lin = nn.Embedding(R, D), nn.Linear(D, D)
        self.delay_generator = nn.Linear(D, R * D)
        self.mlp = nn.Sequential(nn.Linear(2 * D, 2 * D), nn.ReLU(), nn.Linear(2 * D, 1))
        for mine, theirs in [(self.query, model.query), (self.lin, conv.lin),
                             (self.mlp, model.mlp), (self.delay_generator, model.delay_generator)]:
            mine.load_state_dict(theirs.state_dict())

    def forward(self, edge_index, edge_type, num_nodes, batch):
        src, dst = edge_index
        h, tails, r = batch[:, 0, 0], batch[:, :, 1], batch[:, 0, 2]
        B, D, T, tau, vth = h.numel(), self.D, self.T, self.tau, self.vth
        q = self.query(r) * (vth / 2) + vth / 2                        # q~, [B, D]
        delay = self.K * torch.sigmoid(self.delay_generator(q)).view(B, self.R, D)
        beta = q.new_zeros(num_nodes, B, D)
        beta[h, torch.arange(B)] = q
        a, i = math.exp(-1 / tau), torch.arange(T, dtype=q.dtype)
        eps_d = (math.e / tau) * (1 - (i + 1) / tau) * torch.exp(-i / tau)
        kappa = 0.95 ** i / (0.95 ** i).sum()
        s = _SpikeFn.apply(beta - vth)
        c, u = torch.zeros_like(beta), beta * (1 - s)
        hist = s.unsqueeze(-1)                                         # [N, B, D, t]
        trace = -(s.detach() * eps_d[0]).unsqueeze(-1)                 # [N, B, D, t]
        for t in range(1, T):
            msg = _DelayedGather.apply(hist, delay, trace, src, edge_type)    # [E, B, D]
            agg = q.new_zeros(num_nodes, B, D).index_add_(0, dst, msg)
            c = a * c + (math.e / tau) * (self.lam * self.lin(agg))
            u = a * u + c + beta
            s = _SpikeFn.apply(u - vth)
            u = u * (1 - s)
            hist = torch.cat([hist, s.unsqueeze(-1)], dim=-1)
            with torch.no_grad():
                tr = -(hist.detach() * eps_d[: t + 1].flip(0)).sum(-1, keepdim=True)
                trace = torch.cat([trace, tr], dim=-1)
        enc = (hist @ kappa).transpose(0, 1)[torch.arange(B).view(-1, 1), tails]  # [B, n, D]
        feat = torch.cat([enc, q.unsqueeze(1).expand_as(enc)], dim=-1)
        return self.mlp(feat).squeeze(-1)


# ------------------------------------------------------------------------------ data
def with_inverses(trip, num_rel):
    """(head, rel, tail) facts -> edge_index [2, 2F] and edge_type (inverse of r is r + R)."""
    edge_index = torch.cat([trip[:, [0, 2]].t(), trip[:, [2, 0]].t()], dim=1).contiguous()
    return edge_index, torch.cat([trip[:, 1], trip[:, 1] + num_rel])


def load_graph(root: Path, max_edges: int = 0):
    """FB15k-237 train facts with inverses: (edge_index, edge_type, N, 2R, facts)."""
    ds = root / "FB15k-237"
    rows = [ln.rstrip("\n").split("\t") for ln in open(ds / "train.txt", encoding="utf-8")]
    if (ds / "entities.dict").exists() and (ds / "relations.dict").exists():
        ent = {k: int(i) for i, k in (ln.split() for ln in open(ds / "entities.dict"))}
        rel = {k: int(i) for i, k in (ln.split() for ln in open(ds / "relations.dict"))}
    else:
        ent = {k: i for i, k in enumerate(dict.fromkeys(x for h, _, t in rows for x in (h, t)))}
        rel = {k: i for i, k in enumerate(dict.fromkeys(r for _, r, _ in rows))}
    rows = rows[: max_edges // 2] if max_edges else rows
    trip = torch.tensor([[ent[h], rel[r], ent[t]] for h, r, t in rows], dtype=torch.long)
    return (*with_inverses(trip, len(rel)), len(ent), 2 * len(rel), trip)


def make_batch(trip, num_nodes, queries, candidates, seed):
    """[B, candidates, 3] of (head, tail, relation); column 0 is the true tail."""
    g = torch.Generator().manual_seed(seed)
    facts = trip[torch.randint(len(trip), (queries,), generator=g)]
    tails = torch.randint(num_nodes, (queries, candidates), generator=g)
    tails[:, 0] = facts[:, 2]
    return torch.stack([facts[:, :1].expand_as(tails), tails,
                        facts[:, 1:2].expand_as(tails)], dim=-1)


def _try_write(path: str, text: str) -> None:
    with contextlib.suppress(OSError), open(path, "w") as f:
        f.write(text)


def rss_kib() -> int:
    with open("/proc/self/statm") as f:  # Linux, like ru_maxrss in KiB
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


# ---------------------------------------------------------------------------- worker
def worker(args) -> dict:
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    _try_write("/proc/self/oom_score_adj", "1000")  # if memory runs out, this process goes first
    edge_index, edge_type, n, num_rel, trip = load_graph(Path(args.data_root), args.max_edges)
    B, src, dst = args.queries, edge_index[0], edge_index[1]
    batch = make_batch(trip, n, B, args.candidates, args.seed)
    target = (torch.arange(args.candidates) == 0).float().expand(B, -1)  # column 0 positive
    torch.manual_seed(args.seed)
    model = GRSNN(num_rel, **CONFIG)
    data = Data(edge_index=edge_index, edge_type=edge_type, num_nodes=n)
    if args.worker == "a":
        run, params = (lambda: model(data, batch)), list(model.parameters())
    elif args.worker == "b":
        base = PerEdgeBaseline(model)
        run, params = (lambda: base(edge_index, edge_type, n, batch)), list(base.parameters())
    else:  # CSR [N, N], row = destination; all E entries kept (parallel edges not merged)
        crow = torch.zeros(n + 1, dtype=torch.long)
        crow[1:] = torch.cumsum(torch.bincount(dst, minlength=n), 0)
        col = src[torch.argsort(dst * n + src)]
        A = torch.sparse_csr_tensor(crow, col, torch.ones(len(col)), (n, n), check_invariants=False)
        X = torch.randn(n, B * CONFIG["hidden_dim"], requires_grad=True)
        run, params = (lambda: torch.stack([torch.sparse.mm(A, X) for _ in range(9)])), [X]

    def fwd_bwd():
        for p in params:
            p.grad = None
        out = run()
        (out.sum() if args.worker == "c"
         else nn.functional.binary_cross_entropy_with_logits(out, target)).backward()
        return out

    def fwd():
        with torch.no_grad():
            return run()

    reps = args.repeats_baseline if args.worker == "b" else args.repeats
    _try_write("/proc/self/clear_refs", "5")  # reset the peak RSS (ru_maxrss) to now
    base_rss = rss_kib()
    res = {"N": n, "E": int(edge_index.size(1)), "types": num_rel, "repeats": reps}
    for name, fn in (("fwd", fwd), ("fwdbwd", fwd_bwd)):
        out = fn()  # warm-up (for (a) it also builds and caches the propagation plan)
        times, cpu = [], []
        for _ in range(reps):
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        res[name], res[name + "_all"], res[name + "_cpu"] = statistics.median(times), times, cpu
        res[name + "_mib"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 1024
        if name == "fwd" and args.worker != "c":
            res["logits"] = out.detach().flatten().tolist()
    return res


# ----------------------------------------------------------------------------- check
def check() -> int:
    """Baseline (b) against the engine (a): float64 logits (atol 1e-8), grads (rtol 1e-6)."""
    torch.set_default_dtype(torch.float64)
    g = torch.Generator().manual_seed(1)
    n, facts, R = 200, 500, 3  # 1,000 directed edges, 6 edge types
    trip = torch.stack([torch.randint(k, (facts,), generator=g) for k in (n, R, n)], dim=1)
    ei, et = with_inverses(trip, R)
    data, batch = Data(edge_index=ei, edge_type=et, num_nodes=n), make_batch(trip, n, 2, 17, 2)
    target = (torch.arange(17) == 0).double().expand(2, -1)
    ok = True
    for scale, gain in ((0.1, 1.0), (1.0, 1.0), (1.0, 4.0)):  # gain scales W: more spikes
        torch.manual_seed(0)
        model = GRSNN(2 * R, hidden_dim=32, time_steps=10, linear_scale=scale)
        with torch.no_grad():
            model.conv.lin.weight.mul_(gain)
        base = PerEdgeBaseline(model)
        outs, grads = [], []
        for run, mods in [(lambda m=model: m(data, batch), (model.delay_generator, model.conv.lin)),
                          (lambda b=base: b(ei, et, n, batch), (base.delay_generator, base.lin))]:
            out = run()
            nn.functional.binary_cross_entropy_with_logits(out, target).backward()
            outs.append(out.detach())
            grads.append([p.grad for m in mods for p in m.parameters()])
        st = model.spike_trains(data, batch[:, 0, 0], batch[:, 0, 2])
        same = [torch.allclose(ga, gb, rtol=1e-6, atol=1e-14) for ga, gb in zip(*grads)]
        good = torch.allclose(outs[0], outs[1], rtol=0, atol=1e-8) and all(same)
        norms = ", ".join(f"{x.norm().item():.1e}" for x in grads[0])
        diffs = ", ".join(f"{(x - y).abs().max().item():.1e}" for x, y in zip(*grads))
        print(f"linear_scale {scale}, W x {gain}: firing rate {st.double().mean().item():.4f}, "
              f"{int(st.any(0).any(-1).sum())} (node, query) pairs fired; max |logit diff| "
              f"{(outs[0] - outs[1]).abs().max().item():.1e}\n  grads delay_generator.weight, "
              f".bias, lin.weight, .bias: |g| {norms}; max |diff| {diffs}: "
              f"{'PASS' if good else 'FAIL'}")
        ok &= good
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


# ------------------------------------------------------------------------------ main
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", default=os.environ.get(
        "GRSNN_DATA_ROOT", str(ROOT / ".." / "shared" / "datasets")))
    for flag, default in (("queries", 5), ("candidates", 257), ("repeats", 1), ("seed", 0),
                          ("repeats-baseline", 1), ("max-edges", 0), ("variants", "a,b,c")):
        p.add_argument("--" + flag, type=type(default), default=default)  # max-edges: M/2 facts
    p.add_argument("--mmap-threshold", type=int, default=0,
                   help="glibc MALLOC_MMAP_THRESHOLD_ for the workers (0: glibc's adaptive "
                        "default, which keeps freed blocks up to 32 MiB in the heap)")
    p.add_argument("--check", action="store_true")
    p.add_argument("--worker", choices=["a", "b", "c"], help=argparse.SUPPRESS)  # one variant
    args = p.parse_args()
    if args.check:
        return check()
    if args.worker:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return 0
    if os.environ.get("GRSNN_BENCH_WORKER"):  # never let a worker spawn workers
        raise SystemExit("engine.py: worker started without --worker")
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, torch.get_num_threads() = "
          f"{torch.get_num_threads()}, load average {os.getloadavg()}, malloc mmap threshold "
          f"{args.mmap_threshold or 'glibc default'}")
    names = {"a": "(a) grsnn engine", "b": "(b) per-edge baseline", "c": "(c) 9x sparse.mm floor"}
    res = {}
    for v in args.variants.split(","):
        keys = ("data_root", "queries", "candidates", "repeats", "repeats_baseline",
                "max_edges", "seed")
        cmd = [sys.executable, __file__, "--worker", v] + [
            f"--{k.replace('_', '-')}={getattr(args, k)}" for k in keys]
        t0 = time.perf_counter()
        env = dict(os.environ, GRSNN_BENCH_WORKER="1")
        if args.mmap_threshold:
            env["MALLOC_MMAP_THRESHOLD_"] = str(args.mmap_threshold)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not line:
            why = "SIGKILL (out of memory?)" if proc.returncode == -9 else proc.stderr[-2000:]
            print(f"{names[v]}: worker failed after {time.perf_counter() - t0:.0f} s "
                  f"(rc {proc.returncode}): {why}")
            continue
        res[v] = dict(json.loads(line[0][7:]), wall=time.perf_counter() - t0)
    if not res:
        return 1
    r0 = next(iter(res.values()))
    print(f"graph: FB15k-237 train + inverses, N = {r0['N']} nodes, E = {r0['E']} directed edges, "
          f"{r0['types']} edge types\nconfig: B = {args.queries} queries x {args.candidates} "
          f"candidates, D = 32, T = 10, tau = 4, V_th = 2, K = 4, linear_scale 0.1, dependent "
          f"delays, sum aggregation\n\n{'variant':26s} {'forward s':>10s} {'fwd+bwd s':>10s} "
          f"{'fwd peak MiB':>13s} {'peak MiB':>10s}  repeats  worker wall s")
    for v, r in res.items():
        print(f"{names[v]:26s} {r['fwd']:10.3f} {r['fwdbwd']:10.3f} {r['fwd_mib']:13.1f} "
              f"{r['fwdbwd_mib']:10.1f}  {r['repeats']:7d}  {r['wall']:13.1f}")
    for v, r in res.items():
        print(f"  {v}: wall (cpu) s, forward: " + ", ".join(
            f"{w:.3f} ({c:.3f})" for w, c in zip(r["fwd_all"], r["fwd_cpu"])) + "; fwd+bwd: "
            + ", ".join(f"{w:.3f} ({c:.3f})" for w, c in zip(r["fwdbwd_all"], r["fwdbwd_cpu"])))
    if "a" in res and "b" in res:
        a, b = res["a"], res["b"]
        diff = max(abs(x - y) for x, y in zip(a["logits"], b["logits"]))
        print(f"\nmax |logit(a) - logit(b)| (float32, same batch and parameters): {diff:.2e}\n"
              f"(b)/(a): forward {b['fwd'] / a['fwd']:.1f}x, fwd+bwd "
              f"{b['fwdbwd'] / a['fwdbwd']:.1f}x, peak memory "
              f"{b['fwdbwd_mib'] / a['fwdbwd_mib']:.1f}x "
              f"(forward-only peak {b['fwd_mib'] / a['fwd_mib']:.1f}x)")
    if "a" in res and "c" in res:
        a, c = res["a"], res["c"]
        print(f"(a)/(c): forward {a['fwd'] / c['fwd']:.1f}x, fwd+bwd "
              f"{a['fwdbwd'] / c['fwdbwd']:.1f}x")
    print(f"load average after the workers: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
