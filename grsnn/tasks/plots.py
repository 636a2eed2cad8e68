"""Pictures of a run: learning curve and per-relation delay histogram (matplotlib, PNG)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List

import torch

__all__ = ["learning_curve", "delay_histogram"]


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def learning_curve(run_dir: str | Path, out: str | Path, metrics: List[str] | None = None) -> Path:
    """Validation metrics per epoch from ``run_dir/metrics.jsonl`` (plus the mean training
    loss per epoch from ``log.txt``) as a PNG.

    Example:
        >>> learning_curve("runs/demo", "runs/demo/curve.png")  # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    rows = [r for r in rows if r.get("split") == "valid"]
    if metrics is None:
        metrics = [m for m in ("mrr", "hits@10", "hits@10_50", "auroc", "ap") if rows and m in rows[0]]
    losses = []
    log = run_dir / "log.txt"
    if log.exists():
        for line in log.read_text().splitlines():
            if ": mean loss " in line:
                losses.append(float(line.split(": mean loss ")[1].split()[0]))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in metrics:
        ax.plot([r["epoch"] for r in rows], [r[m] for r in rows], marker="o", label=f"valid {m}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation metric")
    if losses:
        ax2 = ax.twinx()
        ax2.plot(range(1, len(losses) + 1), losses, color="gray", linestyle="--", label="train loss")
        ax2.set_ylabel("mean training loss")
        ax2.legend(loc="lower right")
    ax.legend(loc="upper left")
    ax.set_title(run_dir.name)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


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
    num = len(relation_names)
    labels = [relation_names[i % num] + ("^-1" if i >= num else "") for i in order.tolist()]
    ax.set_yticks(range(len(order)), [lab[-40:] for lab in labels], fontsize=7)
    ax.set_xlabel("share of neurons (over the sampled queries)")
    ax.legend(fontsize=7, ncol=bound + 1, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax.set_title("integer synaptic delays per relation (most varied)")
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
