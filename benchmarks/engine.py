"""Engine benchmark: GRSNN at the FB15k-237 configuration against a per-edge baseline.

Measured (seconds per batch and peak memory; B queries x candidates tails, D=32, T=10,
tau=4, V_th=2, K=4, linear_scale 0.1, dependent query-conditioned delays, sum
aggregation), on the FB15k-237 training graph with inverse edges (474 edge types):

  (a) engine    ``grsnn.nn.GRSNN`` called as ``model(data, batch)``;
  (b) baseline  the same model math (METHOD.md section 3) written the straightforward
                way: full spike history ``[N, B, D, t]`` grown by ``torch.cat`` every
                step, a per-edge int64 time index ``[E, B, D]`` per step for a delayed
                advanced-indexing gather, ``index_add_`` into destinations, and a custom
                autograd function for the delay gradient (trace history, METHOD 4);
  (c) floor     T-1 = 9 products ``torch.sparse.mm(A, X)``, A the CSR adjacency over the
                same edges, X dense ``[N, B*D]`` (the memory-bandwidth floor).

"forward" runs under ``torch.no_grad()``; "fwd+bwd" is the forward plus ``.backward()``
of BCE-with-logits against a target whose column 0 is positive ((c): the sum of the
outputs). Time: one warm-up batch, then the median of ``--repeats`` batches
(``--repeats-baseline`` for (b)). Memory: every variant runs in a fresh subprocess
(``--worker a|b|c``); the peak RSS (``ru_maxrss``, reset via /proc/self/clear_refs where
available) minus the RSS after data loading and model construction, in MiB.

Run:  python benchmarks/engine.py [--data-root DIR] [--queries 5] [--candidates 257]
                                  [--repeats 3] [--variants a,b,c] [--max-edges M]
      python benchmarks/engine.py --check    # (b) == (a) in float64, logits and grads
The data root defaults to $GRSNN_DATA_ROOT, else ../shared/datasets (from the repo root).
"""
from __future__ import annotations

import argparse, json, math, os, resource, statistics, subprocess, sys, time
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
        n, b, d, t = ctx.hist_shape
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
    """The GRSNN forward of METHOD section 3 with per-edge, full-history message passing."""

    def __init__(self, model: GRSNN):
        super().__init__()
        conv, R, D = model.conv, model.num_relations, model.hidden_dim
        self.R, self.D, self.T, self.tau = R, D, conv.time_steps, conv.tau
        self.vth, self.K, self.lam = conv.v_threshold, conv.delay_bound, conv.linear_scale
        self.query = nn.Embedding(R, D)
        self.delay_generator = nn.Linear(D, R * D)
        self.lin = nn.Linear(D, D)
        self.mlp = nn.Sequential(nn.Linear(2 * D, 2 * D), nn.ReLU(), nn.Linear(2 * D, 1))
        for mine, theirs in [(self.query, model.query), (self.lin, conv.lin), (self.mlp, model.mlp),
                             (self.delay_generator, model.delay_generator)]:
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
def load_graph(root: Path, max_edges: int = 0):
    """FB15k-237 train facts plus inverse edges: (edge_index [2, E], edge_type [E], N, 2R)."""
    ds = root / "FB15k-237"
    rows = [ln.rstrip("\n").split("\t") for ln in open(ds / "train.txt", encoding="utf-8")]
    if (ds / "entities.dict").exists() and (ds / "relations.dict").exists():
        ent = {k: int(i) for i, k in (ln.split() for ln in open(ds / "entities.dict"))}
        rel = {k: int(i) for i, k in (ln.split() for ln in open(ds / "relations.dict"))}
    else:
        ent = {k: i for i, k in enumerate(dict.fromkeys(x for h, _, t in rows for x in (h, t)))}
        rel = {k: i for i, k in enumerate(dict.fromkeys(r for _, r, _ in rows))}
    if max_edges:
        rows = rows[: max_edges // 2]
    trip = torch.tensor([[ent[h], rel[r], ent[t]] for h, r, t in rows], dtype=torch.long)
    R = len(rel)
    edge_index = torch.cat([trip[:, [0, 2]].t(), trip[:, [2, 0]].t()], dim=1)
    edge_type = torch.cat([trip[:, 1], trip[:, 1] + R])
    return edge_index.contiguous(), edge_type, len(ent), 2 * R, trip


def make_batch(trip, num_nodes, queries, candidates, seed):
    """[B, candidates, 3] of (head, tail, relation); column 0 is the true tail."""
    g = torch.Generator().manual_seed(seed)
    facts = trip[torch.randint(len(trip), (queries,), generator=g)]
    tails = torch.randint(num_nodes, (queries, candidates), generator=g)
    tails[:, 0] = facts[:, 2]
    return torch.stack([facts[:, :1].expand_as(tails), tails,
                        facts[:, 1:2].expand_as(tails)], dim=-1)


def rss_kib() -> int:
    try:
        return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# ---------------------------------------------------------------------------- worker
def worker(args) -> None:
    import warnings
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    root = Path(args.data_root)
    edge_index, edge_type, n, num_rel, trip = load_graph(root, args.max_edges)
    B = args.queries
    batch = make_batch(trip, n, B, args.candidates, args.seed)
    target = torch.zeros(B, args.candidates)
    target[:, 0] = 1
    torch.manual_seed(args.seed)
    model = GRSNN(num_rel, **CONFIG)
    data = Data(edge_index=edge_index, edge_type=edge_type, num_nodes=n)
    if args.worker == "a":
        run = lambda: model(data, batch)  # noqa: E731
    elif args.worker == "b":
        base = PerEdgeBaseline(model)
        run = lambda: base(edge_index, edge_type, n, batch)  # noqa: E731
    else:
        src, dst = edge_index
        order = torch.argsort(dst * n + src)
        crow = torch.zeros(n + 1, dtype=torch.long)
        crow[1:] = torch.cumsum(torch.bincount(dst, minlength=n), 0)
        A = torch.sparse_csr_tensor(crow, src[order], torch.ones(len(order)), (n, n),
                                    check_invariants=False)
        X = torch.randn(n, B * CONFIG["hidden_dim"], requires_grad=True)
        run = lambda: torch.stack([torch.sparse.mm(A, X) for _ in range(9)])  # noqa: E731
    params = list(model.parameters()) if args.worker != "c" else [X]
    if args.worker == "b":
        params = list(base.parameters())

    def fwd_bwd():
        for p in params:
            p.grad = None
        out = run()
        if args.worker == "c":
            loss = out.sum()
        else:
            loss = nn.functional.binary_cross_entropy_with_logits(out, target)
        loss.backward()
        return out

    def fwd():
        with torch.no_grad():
            return run()

    reps = args.repeats_baseline if args.worker == "b" else args.repeats
    try:
        open("/proc/self/clear_refs", "w").write("5")  # reset the peak RSS to now
    except OSError:
        pass
    base_rss = rss_kib()
    res = {"variant": args.worker, "N": n, "E": int(edge_index.size(1)), "types": num_rel,
           "B": B, "repeats": reps, "threads": torch.get_num_threads()}
    for name, fn in (("fwd", fwd), ("fwdbwd", fwd_bwd)):
        out = fn()  # warm-up
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
    print("RESULT " + json.dumps(res), flush=True)


# ----------------------------------------------------------------------------- check
def check() -> int:
    torch.set_default_dtype(torch.float64)
    ok = True
    for scale, gain in ((0.1, 1.0), (1.0, 1.0), (1.0, 4.0)):  # gain: boost W for more spikes
        g = torch.Generator().manual_seed(1)
        n, facts, R = 200, 500, 3
        trip = torch.stack([torch.randint(n, (facts,), generator=g),
                            torch.randint(R, (facts,), generator=g),
                            torch.randint(n, (facts,), generator=g)], dim=1)
        ei = torch.cat([trip[:, [0, 2]].t(), trip[:, [2, 0]].t()], dim=1).contiguous()
        et = torch.cat([trip[:, 1], trip[:, 1] + R])
        batch = make_batch(trip, n, 2, 17, 2)
        target = torch.zeros(2, 17)
        target[:, 0] = 1
        torch.manual_seed(0)
        model = GRSNN(2 * R, hidden_dim=32, time_steps=10, linear_scale=scale)
        with torch.no_grad():
            model.conv.lin.weight.mul_(gain)
        base = PerEdgeBaseline(model)
        data = Data(edge_index=ei, edge_type=et, num_nodes=n)
        outs, grads = [], []
        for run, mods in [(lambda: model(data, batch), (model.delay_generator, model.conv.lin)),
                          (lambda: base(ei, et, n, batch), (base.delay_generator, base.lin))]:
            out = run()
            nn.functional.binary_cross_entropy_with_logits(out, target).backward()
            outs.append(out.detach())
            grads.append([p.grad for m in mods for p in m.parameters()])
        st = model.spike_trains(data, batch[:, 0, 0], batch[:, 0, 2])
        rate, fired = st.double().mean().item(), int(st.any(0).any(-1).sum())
        dl = (outs[0] - outs[1]).abs().max().item()
        good = torch.allclose(outs[0], outs[1], rtol=0, atol=1e-8)
        for name, ga, gb in zip(["delay_generator.weight", "delay_generator.bias",
                                 "lin.weight", "lin.bias"], *grads):
            same = torch.allclose(ga, gb, rtol=1e-6, atol=1e-14)
            good &= same
            print(f"  grad {name:22s} |g| {ga.norm().item():.3e}  max diff "
                  f"{(ga - gb).abs().max().item():.2e}  {'ok' if same else 'MISMATCH'}")
        print(f"linear_scale {scale}, W x {gain}: firing rate {rate:.4f}, {fired} (node, query) "
              f"pairs fired, max |logit diff| {dl:.2e}: "
              f"{'PASS' if good else 'FAIL'}")
        ok &= good
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


# ------------------------------------------------------------------------------ main
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", default=os.environ.get("GRSNN_DATA_ROOT",
                                                          str(ROOT / ".." / "shared" / "datasets")))
    p.add_argument("--queries", type=int, default=5)
    p.add_argument("--candidates", type=int, default=257)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--repeats-baseline", type=int, default=1)
    p.add_argument("--variants", default="a,b,c")
    p.add_argument("--max-edges", type=int, default=0, help="use the first M/2 facts (quick runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", action="store_true")
    p.add_argument("--worker", choices=["a", "b", "c"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.check:
        return check()
    if args.worker:
        worker(args)
        return 0
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"torch.get_num_threads() = {torch.get_num_threads()}, load average {os.getloadavg()}")
    names = {"a": "(a) grsnn engine", "b": "(b) per-edge baseline", "c": "(c) 9x sparse.mm floor"}
    res = {}
    for v in args.variants.split(","):
        cmd = [sys.executable, __file__, "--worker", v] + [
            f"--{k.replace('_', '-')}={getattr(args, k)}" for k in
            ("data_root", "queries", "candidates", "repeats", "repeats_baseline", "max_edges", "seed")]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not line:
            why = "killed by SIGKILL (out of memory?)" if proc.returncode == -9 else proc.stderr[-2000:]
            print(f"{names[v]}: worker failed (rc {proc.returncode}): {why}")
            continue
        res[v] = json.loads(line[0][7:])
        res[v]["wall"] = time.perf_counter() - t0
    print(f"load average after the workers: {os.getloadavg()}")
    if not res:
        return 1
    r0 = next(iter(res.values()))
    print(f"graph: FB15k-237 train + inverses, N = {r0['N']} nodes, E = {r0['E']} directed edges, "
          f"{r0['types']} edge types")
    print(f"config: B = {args.queries} queries x {args.candidates} candidates, D = 32, T = 10, "
          f"tau = 4, V_th = 2, K = 4, linear_scale 0.1, dependent delays, sum aggregation")
    print(f"\n{'variant':26s} {'forward s':>10s} {'fwd+bwd s':>10s} {'fwd peak MiB':>13s} "
          f"{'peak MiB':>10s}  repeats  worker wall s")
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
        print(f"\nmax |logit(a) - logit(b)| (float32, same batch and parameters): {diff:.2e}")
        print(f"(b)/(a): forward {b['fwd'] / a['fwd']:.1f}x, fwd+bwd {b['fwdbwd'] / a['fwdbwd']:.1f}x,"
              f" peak memory {b['fwdbwd_mib'] / max(a['fwdbwd_mib'], 1e-9):.1f}x"
              f" (forward-only peak {b['fwd_mib'] / max(a['fwd_mib'], 1e-9):.1f}x)")
    if "a" in res and "c" in res:
        a, c = res["a"], res["c"]
        print(f"(a)/(c): forward {a['fwd'] / c['fwd']:.1f}x, fwd+bwd {a['fwdbwd'] / c['fwdbwd']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
