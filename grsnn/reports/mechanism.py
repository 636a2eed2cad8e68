"""How far a query's spikes carry, side by side for two checkpoints.

For each checkpoint, on one split: the share of node-query pairs at each hop distance
from the source that the query *informs* (their spike train differs from the one the
same circuit produces without the source's current), their first-spike step, the firing
rate per step, and the evaluation by distance (the tie share and the task's metric per
group: Hits@10 against 50 negatives for knowledge graphs, the AUROC of the group's
positives against all negatives for link prediction). ``grsnn compare A B`` prints it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

__all__ = ["mechanism_report", "compare_reports", "format_comparison"]

# per-group columns of the evaluation breakdown, by task kind: (metric, tie share)
_KG = ("hits@10_50", "tied_fraction")
_LP = ("auroc_vs_all_negatives", "tied_with_a_negative")


def mechanism_report(path: str | Path, split: str = "test", queries: int = 64,
                     progress: bool = False) -> Dict[str, Any]:
    """The measurements of one checkpoint: ``metrics`` (the evaluation's first row),
    ``groups`` (one dict per hop-distance group: ``share``, ``informed``,
    ``first_spike``, ``fired``, ``metric``, ``tied``), ``firing_rate_per_step``,
    ``firing_rate``, ``time_steps`` and the names of the metric columns."""
    from ..tasks.build import load_trained
    from .firing_stats import circuit_stats

    task, model = load_trained(path, compiled=False)
    model.eval()
    graph, h, r = task.circuit_queries(split, queries)
    stats = circuit_stats(model, graph, h, r)
    rows = task.breakdown(model, split, progress=progress)
    metric, tie = _LP if "auroc" in rows[0] else _KG
    reach = {row["group"]: row for row in stats["reach_by_distance"]}
    groups: List[Dict[str, Any]] = []
    for row in rows[1:]:
        g = str(row["group"])
        share = row.get("share", row.get("positives"))
        rc = reach.get(g, {})
        groups.append({"group": g, "share": share, "metric": row.get(metric),
                       "tied": row.get(tie), "informed": rc.get("informed"),
                       "first_spike": rc.get("first_spike"), "fired": rc.get("fired")})
    overall = {k: v for k, v in rows[0].items() if isinstance(v, float)}
    return {"metrics": overall, "groups": groups, "metric_name": metric, "tie_name": tie,
            "firing_rate_per_step": stats["firing_rate_per_step"],
            "firing_rate": stats["firing_rate"], "time_steps": stats["time_steps"]}


def _fmt(x) -> str:
    return "-" if x is None or x != x else f"{x:.3f}"


def _table(head: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    table = [list(head)] + [list(line) for line in lines]
    widths = [max(len(line[i]) for line in table) for i in range(len(head))]
    return "\n".join("  ".join(x.rjust(w) for x, w in zip(line, widths)) for line in table)


def compare_reports(a: Dict[str, Any], b: Dict[str, Any]) -> Tuple[str, str, str]:
    """Three plain-text tables, A beside B: overall metrics, the groups by hop distance
    and the firing rate per step."""
    keys = [k for k in ("mrr", "hits@1", "hits@10", "hits@10_50", "pessimistic.hits@10_50",
                        "tied_fraction", "auroc", "ap")
            if k in a["metrics"] and k in b["metrics"]]
    overall = _table(["metric", "A", "B", "B - A"],
                     [[k, _fmt(a["metrics"][k]), _fmt(b["metrics"][k]),
                       f"{b['metrics'][k] - a['metrics'][k]:+.3f}"] for k in keys]
                     + [["firing rate", f"{a['firing_rate']:.4f}", f"{b['firing_rate']:.4f}",
                         f"{b['firing_rate'] - a['firing_rate']:+.4f}"]])
    ga = {g["group"]: g for g in a["groups"]}
    gb = {g["group"]: g for g in b["groups"]}
    order = list(ga) + [g for g in gb if g not in ga]
    order.sort(key=lambda g: (not g.isdigit(), int(g) if g.isdigit() else 0, g == "unreachable"))
    cols = ("share", "informed", "first_spike", "tied", "metric")
    head = ["hops"] + [f"{c} {s}" for c in cols for s in ("A", "B")]
    lines = [[g] + [_fmt(side.get(g, {}).get(c)) for c in cols for side in (ga, gb)]
             for g in order]
    groups = _table(head, lines)
    steps = max(len(a["firing_rate_per_step"]), len(b["firing_rate_per_step"]))
    rate = _table(["step", "A", "B"],
                  [[str(t)] + [f"{x['firing_rate_per_step'][t]:.4f}"
                               if t < len(x["firing_rate_per_step"]) else "-" for x in (a, b)]
                   for t in range(steps)])
    return overall, groups, rate


def format_comparison(a: Dict[str, Any], b: Dict[str, Any], name_a: str,
                      name_b: str) -> str:
    """The whole before/after report as text."""
    overall, groups, rate = compare_reports(a, b)
    return (f"A: {name_a} (T = {a['time_steps']})\nB: {name_b} (T = {b['time_steps']})\n\n"
            f"{overall}\n\nby hop distance from the query's source (share of the evaluated "
            f"targets; informed: share of the nodes whose spike train the query changes; "
            f"first_spike: mean first-spike step of those that fire; tied: "
            f"{a['tie_name']}; metric: {a['metric_name']}):\n{groups}\n\n"
            f"firing rate per time step:\n{rate}")
