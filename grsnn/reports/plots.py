"""Pictures of a run: learning curve and per-relation delay histogram (matplotlib, PNG)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

import torch

from ..training.run_dir import epoch_log_lines

__all__ = ["learning_curve", "compare_runs", "delay_histogram", "training_losses"]


def _save(fig, out: str | Path) -> Path:
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=120)
    _pyplot().close(fig)
    return out


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def training_losses(log_text: str) -> Dict[int, float]:
    """Mean training loss per epoch from a run's ``log.txt``: the ``epoch N: mean loss X``
    lines (``grsnn.training.run_dir.epoch_log_lines``; a resumed epoch's line averages its
    batches before the resume too).

    Example:
        >>> training_losses("t epoch 1 batch 50/99: mean loss 0.7\\nt epoch 1: mean loss 0.6 ...")
        {1: 0.6}
    """
    return {epoch: line["loss"] for epoch, line in epoch_log_lines(log_text).items()}


def learning_curve(run_dir: str | Path, out: str | Path, metrics: List[str] | None = None) -> Path:
    """Validation metrics per epoch from ``run_dir/metrics.jsonl`` (plus the mean training
    loss per epoch from ``log.txt``) as a PNG.

    Example:
        >>> learning_curve("runs/demo", "runs/demo/curve.png")  # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    rows = _valid_rows(run_dir)
    if metrics is None:
        metrics = [m for m in ("mrr", "hits@10", "hits@10_50", "auroc", "ap")
                   if rows and m in rows[0]]
    log = run_dir / "log.txt"
    losses = training_losses(log.read_text(encoding="utf-8")) if log.exists() else {}
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in metrics:
        ax.plot([r["epoch"] for r in rows], [r[m] for r in rows], marker="o", label=f"valid {m}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation metric")
    if losses:
        ax2 = ax.twinx()
        ax2.plot(list(losses), list(losses.values()), color="gray", linestyle="--",
                 label="train loss")
        ax2.set_ylabel("mean training loss")
        ax2.legend(loc="lower right")
    ax.legend(loc="upper left")
    ax.set_title(run_dir.name)
    return _save(fig, out)


def _valid_rows(run_dir: Path) -> List[dict]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    return [r for r in rows if r.get("split") == "valid"]


def compare_runs(run_dirs: List[str | Path], out: str | Path, metric: str | None = None,
                 labels: List[str] | None = None) -> Path:
    """One validation metric per epoch of several runs in one PNG (default: the first of
    ``mrr``, ``auroc`` the first run has).

    Example:
        >>> compare_runs(["runs/cora", "runs/cora_T20"], "compare.png")  # doctest: +SKIP
    """
    runs = [Path(r) for r in run_dirs]
    rows = [_valid_rows(r) for r in runs]
    if metric is None:
        first = rows[0][0] if rows and rows[0] else {}
        metric = next((m for m in ("mrr", "auroc") if m in first), "mrr")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for rr, label in zip(rows, labels or [r.name for r in runs]):
        pts = [(r["epoch"], r[metric]) for r in rr if metric in r]
        ax.plot([e for e, _ in pts], [v for _, v in pts], marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"valid {metric}")
    ax.legend()
    return _save(fig, out)


def delay_histogram(model, r_index: torch.Tensor, relation_names: List[str], out: str | Path,
                    top: int = 12) -> Path:
    """Histogram of the integer delays (over neurons and queries) of the ``top`` relations
    with the most spread, for queries with relations ``r_index``, as a PNG.

    Example:
        >>> delay_histogram(model, torch.arange(4), names, "delays.png")  # doctest: +SKIP
    """
    delays = model.integer_delays(r_index)                     # [B, R, D]
    bound = model.conv.delay_bound
    counts = torch.stack([(delays == k).float().mean(dim=(0, 2)) for k in range(bound + 1)], 1)
    spread = (delays.float().std(dim=(0, 2)))
    order = spread.argsort(descending=True)[:top]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(order) + 1.5))
    left = torch.zeros(len(order))
    for k in range(bound + 1):
        ax.barh(range(len(order)), counts[order, k].numpy(), left=left.numpy(), label=f"delay {k}")
        left += counts[order, k]
    names = list(relation_names) + [f"{n}^-1" for n in relation_names]
    labels = [names[i] for i in order.tolist()]
    ax.set_yticks(range(len(order)), [lab[-40:] for lab in labels], fontsize=7)
    ax.set_xlabel("share of neurons (over the sampled queries)")
    ax.legend(fontsize=7, ncol=bound + 1, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax.set_title("integer synaptic delays per relation (most varied)")
    return _save(fig, out)


def _short(name: str, width: int = 28) -> str:
    return name if len(name) <= width else "..." + name[-(width - 3):]


def spike_raster(spikes: torch.Tensor, nodes: List[int], names: List[str], out: str | Path
                 ) -> Path:
    """Spike rasters (neuron x time) of the nodes along a path, one panel per node.

    ``spikes``: ``[T, N, D]`` spike trains of one query.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(nodes), figsize=(1.9 * len(nodes) + 1, 3.6), squeeze=False)
    for ax, v, name in zip(axes[0], nodes, names):
        ax.imshow(spikes[:, v, :].t().float().numpy(), aspect="auto", cmap="Greys",
                  interpolation="nearest", vmin=0, vmax=1)
        ax.set_title(_short(name, 18), fontsize=7)
        ax.set_xlabel("time step")
    axes[0][0].set_ylabel("neuron")
    fig.suptitle("spikes along the explained path (source first)", fontsize=9)
    return _save(fig, out)


def delay_heatmap(delays: torch.Tensor, labels: List[str], highlight: List[int], out: str | Path
                  ) -> Path:
    """Integer delays ``[R, D]`` (relation x neuron) of one query as a heatmap; the
    relations in ``highlight`` (e.g. those on the explained paths) are labelled."""
    plt = _pyplot()
    rows = delays.size(0)
    fig, ax = plt.subplots(figsize=(6, min(0.12 * rows + 1.5, 30)))
    im = ax.imshow(delays.numpy(), aspect="auto", cmap="viridis", interpolation="nearest")
    shown = list(range(rows)) if rows <= 60 else sorted(set(highlight))
    ax.set_yticks(shown, [_short(labels[i], 40) for i in shown], fontsize=6)
    ax.set_xlabel("neuron")
    fig.colorbar(im, ax=ax, label="delay (steps)")
    ax.set_title("synaptic delays per relation for this query", fontsize=9)
    return _save(fig, out)


def first_spike_vs_hops(spikes: torch.Tensor, hops: torch.Tensor, out: str | Path) -> Path:
    """First spike time of every node (earliest neuron) against its hop distance from the
    source; nodes that never fire or are unreachable are left out."""
    plt = _pyplot()
    fired = spikes.bool().any(-1)                                  # [T, N]
    t = torch.arange(spikes.size(0)).unsqueeze(1).expand_as(fired)
    first = torch.where(fired, t, torch.full_like(t, 10**6)).min(0).values
    ok = (first < 10**6) & (hops >= 0)
    fig, ax = plt.subplots(figsize=(5, 4))
    jitter = (torch.rand(int(ok.sum())) - 0.5) * 0.3
    ax.scatter((hops[ok].float() + jitter).numpy(), first[ok].numpy(), s=8, alpha=0.4)
    for h in sorted(set(hops[ok].tolist())):
        sel = ok & (hops == h)
        ax.plot([h - 0.3, h + 0.3], [first[sel].float().mean().item()] * 2, "r-")
    ax.set_xlabel("hop distance from the source")
    ax.set_ylabel("first spike time (earliest neuron)")
    ax.set_title(f"{int(ok.sum())} firing nodes; red: mean", fontsize=9)
    return _save(fig, out)


def path_subgraph(paths, edge_index: torch.Tensor, node_names: List[str],
                  edge_names: List[str], out: str | Path) -> Path:
    """The union of the explained paths drawn with networkx (edge width = importance)."""
    import networkx as nx
    plt = _pyplot()
    G = nx.MultiDiGraph()
    widths: Dict[int, float] = {}
    for p in paths:
        for e in p.edges:
            u, v = int(edge_index[0, e]), int(edge_index[1, e])
            G.add_edge(u, v, key=e, label=_short(edge_names[e], 24))
            widths[e] = max(widths.get(e, 0.0), p.importance)
    fig, ax = plt.subplots(figsize=(8, 6))
    if G.number_of_nodes():
        pos = nx.spring_layout(G, seed=0)
        top = max(widths.values()) or 1.0
        nx.draw_networkx_nodes(G, pos, ax=ax, node_size=300, node_color="#cde")
        nx.draw_networkx_labels(G, pos, {v: _short(node_names[v], 16) for v in G}, ax=ax,
                                font_size=7)
        for u, v, e in G.edges(keys=True):
            nx.draw_networkx_edges(G, pos, [(u, v)], ax=ax, arrows=True,
                                   width=0.5 + 3 * max(widths[e], 0) / top)
        nx.draw_networkx_edge_labels(G, pos, {(u, v): d["label"] for u, v, d in G.edges(data=True)},
                                     ax=ax, font_size=6)
    ax.set_title("explained subgraph (union of the top paths)", fontsize=9)
    ax.axis("off")
    return _save(fig, out)
