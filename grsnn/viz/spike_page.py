"""One self-contained HTML page of a query's spike wave (plotly, everything inlined).

The page shows a subgraph around the query with a time slider and a play button over the
``T`` steps of the circuit. A node *lights up* once one of its neurons has fired (by step
``t``); its colour is the number of its neurons firing at step ``t``. A spike in flight is a
red dot on its edge: for GRSNN, neuron ``j`` of node ``u`` firing at step ``s`` reaches
``v`` along an edge of type ``rho`` at step ``s + 1 + d`` (``d`` = the query's integer delay
of ``rho`` for neuron ``j``); in the shortest-path circuit (one neuron per node) a spike
crosses an edge of weight ``w`` in ``w`` steps. Beside the movie: the ranked answers, the
top paths, the delays of this query and the first-spike step against the hop distance.

The page needs no network: plotly.js is inlined once (about 4.8 MB), and the data of a
150-node subgraph adds a few hundred kB.
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Hashable, List, Optional, Sequence, Tuple

import networkx as nx
import numpy as np
import torch
from torch import Tensor

__all__ = ["SpikePage", "query_page", "explanation_page", "shortest_paths_page",
           "write_explanation_html", "PLOT_ID", "NODE_TRACE", "FLIGHT_TRACE"]

#: the ``id`` of the animated plot's ``div``
PLOT_ID = "spike-movie"
#: index of the spikes-in-flight trace and of the node trace in the animated figure
FLIGHT_TRACE = 3
NODE_TRACE = 4

_UNLIT, _LIT = 0.35, 1.0           # node opacity before and after its first spike
_ROLE_TEXT = {"source": "query source", "target": "explained answer", "path": "on a top path",
              "candidate": "a top answer", "": ""}
_ROLE_SYMBOL = {"source": "diamond", "target": "star", "path": "circle", "candidate": "square",
                "": "circle"}
_ROLE_SIZE = {"source": 18, "target": 20, "path": 12, "candidate": 11, "": 8}


@dataclass
class SpikePage:
    """What one page shows; :meth:`html` renders it, :meth:`write` saves it.

    Node arrays are over the ``n`` displayed nodes, edge arrays over the displayed edges
    (``src``/``dst`` index the displayed nodes), and ``first``/``hops`` over the whole graph.
    ``fire[t, i]`` is the number of the ``neurons`` neurons of node ``i`` that fire at step
    ``t``; ``flights[t]`` holds one row ``(edge, sent, travel, count)`` per group of spikes
    in flight at step ``t``: ``count`` spikes sent at step ``sent`` that arrive at step
    ``sent + travel``; ``travel`` is the delay plus ``extra_step`` (1 in GRSNN's circuit,
    where a spike with delay ``d`` arrives ``1 + d`` steps after it is sent). ``query``
    (node and relation ids) is kept in the page's ``window.grsnnPage``.
    """

    title: str
    description: str
    names: List[str]
    ids: List[int]
    roles: List[str]
    notes: List[str]
    pos: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    edge_labels: List[str]
    path_edges: List[int]
    fire: np.ndarray
    neurons: int
    flights: List[np.ndarray]
    answers: List[Tuple[str, float, str]]
    answers_title: str
    paths: List[Tuple[str, float]]
    paths_title: str
    delay_rows: List[str]
    delays: np.ndarray
    delays_title: str
    first: np.ndarray
    hops: np.ndarray
    extra_step: int = 0
    query: Optional[Dict[str, int]] = None

    @property
    def steps(self) -> int:
        """Number of time steps ``T`` (frames of the movie)."""
        return int(self.fire.shape[0])

    def lit(self, t: int) -> np.ndarray:
        """Which displayed nodes have fired at some step ``<= t`` (bool ``[n]``)."""
        return np.asarray((self.fire[: t + 1] > 0).any(0))

    # ------------------------------------------------------------------ figures
    def movie(self):
        """The animated figure: edges, path edges, edge hover points, spikes in flight and
        nodes, one frame per step."""
        import plotly.graph_objects as go

        pos = self.pos
        ex, ey = _segments(pos, self.src, self.dst, range(len(self.src)))
        px, py = _segments(pos, self.src, self.dst, self.path_edges)
        mx, my, mtext = self._edge_hover()
        hover = [f"<b>{html.escape(n)}</b>" + (f"<br>{_ROLE_TEXT[r]}" if r else "")
                 + f"<br>{html.escape(note)}"
                 for n, r, note in zip(self.names, self.roles, self.notes)]
        d = self.neurons
        start = self._node_frame(0)
        start_marker = start.pop("marker")
        assert isinstance(start_marker, dict)
        node = go.Scatter(
            x=_r(pos[:, 0]), y=_r(pos[:, 1]), mode="markers", name="nodes",
            ids=[str(i) for i in self.ids], text=hover,
            hovertemplate="%{text}<br>neurons firing at this step: %{customdata} of "
                          f"{d}<extra></extra>",
            marker=dict(symbol=[_ROLE_SYMBOL[r] for r in self.roles],
                        size=[_ROLE_SIZE[r] for r in self.roles],
                        line=dict(width=[1.5 if r else 0.5 for r in self.roles],
                                  color="#dee2e6"),
                        cmin=-1, cmax=d, colorscale=_colorscale(d), showscale=True,
                        colorbar=dict(title=dict(text="neurons<br>firing"), x=1.0,
                                      tickvals=sorted({0, d // 2, d}), len=0.6),
                        **start_marker),
            **start)
        flight = self._flight_frame(0)
        flight_marker = flight.pop("marker")
        assert isinstance(flight_marker, dict)
        traces = [
            go.Scatter(x=ex, y=ey, mode="lines", name="edges", hoverinfo="skip",
                       line=dict(color="#495057", width=0.8)),
            go.Scatter(x=px, y=py, mode="lines", name="edges of the top paths",
                       hoverinfo="skip", line=dict(color="#f59f00", width=3)),
            go.Scatter(x=mx, y=my, mode="markers", name="edge names", text=mtext,
                       hovertemplate="%{text}<extra></extra>", showlegend=False,
                       marker=dict(size=7, color="rgba(0,0,0,0)")),
            go.Scatter(mode="markers", name="spikes in flight",
                       hovertemplate="%{customdata[0]} spike(s) in flight, delay "
                                     "%{customdata[1]}<br>sent at step %{customdata[2]}, "
                                     "arrive at step %{customdata[3]}<extra></extra>",
                       marker=dict(color="#ff6b6b", line=dict(width=0), **flight_marker),
                       **flight),
            node,
        ]
        frames = [go.Frame(name=str(t), traces=[FLIGHT_TRACE, NODE_TRACE],
                           data=[go.Scatter(**self._flight_frame(t)),
                                 go.Scatter(**self._node_frame(t))])
                  for t in range(self.steps)]
        fig = go.Figure(data=traces, frames=frames)
        # redraw=False: with a full redraw, a slider that was clicked no longer follows
        # the play button (the scatter traces update without one)
        anim = dict(mode="immediate", frame=dict(duration=0, redraw=False),
                    transition=dict(duration=0))
        fig.update_layout(
            height=700, margin=dict(l=10, r=10, t=40, b=10), paper_bgcolor="#0b0f14",
            plot_bgcolor="#0b0f14", font=dict(color="#dee2e6"), hovermode="closest",
            legend=dict(orientation="h", x=0, y=1.06, bgcolor="rgba(0,0,0,0)"),
            xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x"),
            annotations=[dict(x=float(pos[i, 0]), y=float(pos[i, 1]), text=html.escape(
                _short(self.names[i], 30)), showarrow=True, arrowcolor="#adb5bd",
                ax=-50 if r == "source" else 50, ay=-36, font=dict(size=12))
                for i, r in enumerate(self.roles) if r in ("source", "target")],
            updatemenus=[dict(
                type="buttons", direction="left", x=0, y=0, xanchor="left", yanchor="top",
                pad=dict(t=10, r=10), showactive=False, bgcolor="#343a40",
                font=dict(color="#f8f9fa"),
                buttons=[dict(label="play", method="animate",
                              args=[None, dict(frame=dict(duration=700, redraw=True),
                                               fromcurrent=True, mode="immediate",
                                               transition=dict(duration=0))]),
                         dict(label="pause", method="animate", args=[[None], anim])])],
            sliders=[dict(active=0, x=0.12, len=0.88, y=0, yanchor="top", pad=dict(t=10),
                          currentvalue=dict(prefix="step t = ", font=dict(size=14)),
                          steps=[dict(label=str(t), method="animate", args=[[str(t)], anim])
                                 for t in range(self.steps)])])
        return fig

    def _node_frame(self, t: int) -> Dict[str, object]:
        lit = self.lit(t)
        now = self.fire[t]
        color = np.where(lit, now, -1)
        return dict(customdata=now.tolist(),
                    marker=dict(color=color.tolist(),
                                opacity=np.where(lit, _LIT, _UNLIT).tolist()))

    def _flight_frame(self, t: int) -> Dict[str, object]:
        rows = self.flights[t] if t < len(self.flights) else np.zeros((0, 4), dtype=np.int64)
        if len(rows) == 0:
            return dict(x=[], y=[], customdata=[], marker=dict(size=[]))
        e, sent, travel, count = rows.T
        frac = (t - sent + 0.5) / np.maximum(travel, 1)
        a, b = self.pos[self.src[e]], self.pos[self.dst[e]]
        vec = b - a
        length = np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-9)
        normal = np.stack([-vec[:, 1], vec[:, 0]], 1) / length * (0.006 * self._span())
        xy = a + frac[:, None] * vec + normal      # two directions of an edge: two sides
        size = 4 + 8 * np.sqrt(count / max(self.neurons, 1))
        custom = np.stack([count, travel - self.extra_step, sent,
                           sent + travel], 1)
        return dict(x=_r(xy[:, 0]), y=_r(xy[:, 1]), customdata=custom.tolist(),
                    marker=dict(size=np.round(size, 1).tolist()))

    def _span(self) -> float:
        span = self.pos.max(0) - self.pos.min(0) if len(self.pos) else np.ones(2)
        return float(max(span.max(), 1e-6))

    def _edge_hover(self) -> Tuple[List[float], List[float], List[str]]:
        """One hover point per connected pair of nodes, listing its edges."""
        pairs: Dict[Tuple[int, int], List[str]] = {}
        for e, (u, v) in enumerate(zip(self.src.tolist(), self.dst.tolist())):
            pairs.setdefault((min(u, v), max(u, v)), []).append(
                f"{html.escape(_short(self.names[u], 40))} --[{html.escape(self.edge_labels[e])}]"
                f"--> {html.escape(_short(self.names[v], 40))}")
        xs, ys, text = [], [], []
        for (u, v), lines in pairs.items():
            xs.append(round(float(self.pos[u, 0] + self.pos[v, 0]) / 2, 4))
            ys.append(round(float(self.pos[u, 1] + self.pos[v, 1]) / 2, 4))
            text.append("<br>".join(lines[:6]) + (f"<br>+{len(lines) - 6} more"
                                                  if len(lines) > 6 else ""))
        return xs, ys, text

    def side_figures(self):
        """The answers, the delays and the first-spike-vs-hops figures."""
        import plotly.graph_objects as go

        style = dict(height=420, margin=dict(l=10, r=10, t=50, b=40), font=dict(size=11))
        names = [_short(a[0], 32) for a in self.answers][::-1]
        answers = go.Figure(go.Bar(
            x=[a[1] for a in self.answers][::-1], y=[f"{i}. {n}" for i, n in zip(
                range(len(names), 0, -1), names)], orientation="h",
            text=[html.escape(a[2]) for a in self.answers][::-1], textposition="auto",
            marker=dict(color=["#f76707" if "explained" in a[2] or "target" in a[2] else
                               "#2f9e44" if "known" in a[2] else "#868e96"
                               for a in self.answers][::-1]),
            hovertemplate="%{y}: %{x:.4f}<extra></extra>"))
        answers.update_layout(title=self.answers_title, yaxis=dict(automargin=True), **style)

        if self.delays.ndim == 2:
            full = [[f"{html.escape(row)}<br>neuron {j}" for j in range(self.delays.shape[1])]
                    for row in self.delay_rows]
            delays = go.Figure(go.Heatmap(
                z=self.delays.tolist(), y=[_short(r, 34) for r in self.delay_rows],
                text=full, colorscale="Viridis", colorbar=dict(title=dict(text="steps")),
                hovertemplate="%{text}<br>delay %{z} steps<extra></extra>"))
            delays.update_layout(xaxis=dict(title="neuron"),
                                 yaxis=dict(automargin=True, autorange="reversed"))
        else:
            delays = go.Figure(go.Bar(x=self.delay_rows, y=self.delays.tolist(),
                                      marker=dict(color="#4c6ef5")))
            delays.update_layout(xaxis=dict(title="delay (steps)", type="category"),
                                 yaxis=dict(title="synapses"))
        delays.update_layout(title=self.delays_title, **style)

        ok = (self.first >= 0) & (self.hops >= 0)
        pairs, counts = np.unique(np.stack([self.hops[ok], self.first[ok]], 1), axis=0,
                                  return_counts=True)
        pairs = pairs.reshape(-1, 2)
        spike = go.Figure(go.Scatter(
            x=pairs[:, 0].tolist(), y=pairs[:, 1].tolist(), mode="markers",
            customdata=counts.tolist(),
            marker=dict(size=(6 + 22 * np.sqrt(counts / max(counts.max(initial=1), 1))).round(1)
                        .tolist(), color="#4c6ef5", opacity=0.7),
            hovertemplate="%{customdata} node(s) at hop %{x} fire first at step %{y}"
                          "<extra></extra>"))
        silent = int((self.first < 0).sum())
        unreached = int((self.hops < 0).sum())
        spike.update_layout(
            title=f"first spike step against hop distance (all {len(self.first)} nodes; "
                  f"{silent} never fire, {unreached} unreachable)",
            xaxis=dict(title="hops from the source", dtick=1),
            yaxis=dict(title="first spike step"), **style)
        return answers, delays, spike

    def html(self) -> str:
        """The page as one HTML string (plotly.js inlined, no network needed)."""
        from plotly.offline import get_plotlyjs

        config = {"displaylogo": False, "responsive": True}
        rendered = ("requestAnimationFrame(function(){requestAnimationFrame(function(){"
                    "window.grsnnRendered = performance.now();});});")
        main = self.movie().to_html(full_html=False, include_plotlyjs=False, div_id=PLOT_ID,
                                    config=config, post_script=rendered, auto_play=False)
        side = [f.to_html(full_html=False, include_plotlyjs=False, config=config,
                          div_id=f"side-{i}") for i, f in enumerate(self.side_figures())]
        rows = "".join(f"<tr><td>{i}</td><td>{score:+.4f}</td><td>{html.escape(text)}</td></tr>"
                       for i, (text, score) in enumerate(self.paths, 1))
        table = (f"<h3>{html.escape(self.paths_title)}</h3><table><tr><th>#</th><th>value</th>"
                 f"<th>path</th></tr>{rows}</table>")
        meta = json.dumps({"plot": PLOT_ID, "nodeTrace": NODE_TRACE,
                           "flightTrace": FLIGHT_TRACE, "steps": self.steps,
                           "neurons": self.neurons, "nodes": len(self.names),
                           "query": self.query})
        return _PAGE.format(
            title=html.escape(self.title), description=html.escape(self.description),
            plotlyjs=get_plotlyjs(), main=main, answers=side[0], table=table,
            delays=side[1], spike=side[2], meta=meta)

    def write(self, path: str | Path) -> Path:
        """Write :meth:`html` to ``path`` (folders created) and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.html(), encoding="utf-8")
        return path


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<script>window.grsnnErrors = [];
window.addEventListener("error", function (e) {{ window.grsnnErrors.push(String(e.message)); }});
window.PlotlyConfig = {{MathJaxConfig: "local"}};
window.grsnnPage = {meta};</script>
<script>{plotlyjs}</script>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1400px; padding: 12px;
        color: #212529; }}
h1 {{ font-size: 1.3em; margin: 4px 0; }} p.desc {{ margin: 4px 0 10px; max-width: 1100px; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr));
         gap: 12px; margin-top: 12px; }}
.grid > div {{ min-width: 0; }}
.paths {{ max-height: 420px; overflow: auto; font-size: 12px; }}
table {{ border-collapse: collapse; }} td, th {{ border-bottom: 1px solid #dee2e6;
         padding: 3px 6px; text-align: left; vertical-align: top; }}
</style></head>
<body>
<h1>{title}</h1>
<p class="desc">{description}</p>
{main}
<div class="grid">
<div>{answers}</div>
<div class="paths">{table}</div>
<div>{delays}</div>
<div>{spike}</div>
</div>
</body></html>
"""


# ---------------------------------------------------------------------- helpers
def _r(x: np.ndarray) -> List[float]:
    return np.round(np.asarray(x, dtype=np.float64), 4).tolist()


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else "\u2026" + text[-(width - 1):]


def _colorscale(neurons: int) -> List[List[object]]:
    """Grey for ``-1`` (not fired yet), then blue (fired before, silent now) to pale yellow
    (all neurons firing), over ``cmin=-1 .. cmax=neurons``."""
    span = neurons + 1
    zero = 1 / span
    return [[0.0, "#5c636a"], [zero * 0.999, "#5c636a"], [zero, "#3b5bdb"],
            [zero + (1 - zero) * 0.5, "#f76707"], [1.0, "#fff3bf"]]


def _segments(pos: np.ndarray, src: np.ndarray, dst: np.ndarray, edges: Sequence[int]
              ) -> Tuple[List[Optional[float]], List[Optional[float]]]:
    """Line coordinates of ``edges``, separated by ``None`` (one trace for all)."""
    xs: List[Optional[float]] = []
    ys: List[Optional[float]] = []
    for e in edges:
        u, v = int(src[e]), int(dst[e])
        xs += [round(float(pos[u, 0]), 4), round(float(pos[v, 0]), 4), None]
        ys += [round(float(pos[u, 1]), 4), round(float(pos[v, 1]), 4), None]
    return xs, ys


def _layout(n: int, src: np.ndarray, dst: np.ndarray, source: int,
            target: Optional[int]) -> np.ndarray:
    """Radial layout of the breadth-first tree from ``source``: ring ``k`` holds the nodes
    ``k`` hops away (undirected), every subtree gets an angle in proportion to its leaves,
    and the tree is turned so that ``target`` lies to the right of the source; nodes the
    tree does not reach sit on one more ring."""
    adj: List[List[int]] = [[] for _ in range(n)]
    for u, v in zip(src.tolist(), dst.tolist()):
        if u != v:
            adj[u].append(v)
            adj[v].append(u)
    depth = [-1] * n
    children: List[List[int]] = [[] for _ in range(n)]
    depth[source] = 0
    queue = [source]
    for u in queue:
        for v in sorted(set(adj[u])):
            if depth[v] < 0:
                depth[v] = depth[u] + 1
                children[u].append(v)
                queue.append(v)
    leaves = [1] * n
    for u in reversed(queue):
        if children[u]:
            leaves[u] = sum(leaves[c] for c in children[u])
    angle = [0.0] * n
    stack = [(source, 0.0, 2 * math.pi)]
    while stack:
        u, lo, hi = stack.pop()
        angle[u] = (lo + hi) / 2
        at = lo
        for c in children[u]:
            share = (hi - lo) * leaves[c] / leaves[u]
            stack.append((c, at, at + share))
            at += share
    rest = [v for v in range(n) if depth[v] < 0]
    outer = max(depth) + 1
    for i, v in enumerate(rest):
        depth[v], angle[v] = outer, 2 * math.pi * i / len(rest)
    turn = -angle[target] if target is not None and depth[target] > 0 else 0.0
    pos = np.array([[d * math.cos(a + turn), d * math.sin(a + turn)]
                    for d, a in zip(depth, angle)], dtype=np.float64)
    return pos.reshape(n, 2)


def _select(order: Sequence[int], must: Sequence[int], limit: int) -> List[int]:
    """``must`` first, then ``order``, without repeats, at most ``limit`` nodes."""
    chosen: List[int] = []
    seen = set()
    for v in list(must) + list(order):
        if v not in seen:
            seen.add(v)
            chosen.append(v)
            if len(chosen) == limit:
                break
    return chosen


def _induced(edge_index: Tensor, chosen: List[int], num_nodes: int, priority: Tensor,
             max_edges: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Edges between chosen nodes, best ``priority`` first (at most ``max_edges``):
    ``(edge ids, local src, local dst)``."""
    local = torch.full((num_nodes,), -1, dtype=torch.long)
    local[torch.tensor(chosen, dtype=torch.long)] = torch.arange(len(chosen))
    ls, ld = local[edge_index[0]], local[edge_index[1]]
    eid = ((ls >= 0) & (ld >= 0)).nonzero().flatten()
    eid = eid[torch.argsort(priority[eid], descending=True, stable=True)][:max_edges]
    return eid, ls[eid], ld[eid]


def _flights(sends: np.ndarray, travel: np.ndarray, steps: int, priority: np.ndarray,
             max_per_step: int) -> List[np.ndarray]:
    """Spikes in flight per step. ``sends[s, e, k]``: spikes sent at step ``s`` along edge
    ``e`` that travel ``travel[k]`` steps (rows ``(edge, sent, travel, count)``), shown
    at steps ``sent .. sent + travel - 1``; edges of higher ``priority`` first."""
    rank = np.empty_like(priority)
    rank[np.argsort(-priority, kind="stable")] = np.arange(len(priority))
    s_idx, e_idx, k_idx = np.nonzero(sends)
    counts = sends[s_idx, e_idx, k_idx]
    trav = travel[k_idx]
    out = []
    for t in range(steps):
        live = (s_idx <= t) & (t < s_idx + trav)
        rows = np.stack([e_idx[live], s_idx[live], trav[live], counts[live]], 1)
        rows = rows[np.argsort(rank[rows[:, 0]], kind="stable")][:max_per_step]
        out.append(rows.astype(np.int64))
    return out


# ---------------------------------------------------------------------- GRSNN query
def query_page(model, graph, head: int, relation: int, tail: int, *,
               entities: Optional[Sequence[str]] = None,
               edge_labels: Optional[Sequence[str]] = None,
               relation_name: Optional[str] = None, paths=None,
               importance: Optional[Tensor] = None,
               answers: Optional[Sequence[Tuple[int, float, str]]] = None,
               max_nodes: int = 150, max_edges: int = 4000, max_flights: int = 600,
               top: int = 10) -> SpikePage:
    """The page of query ``(head, relation, ?)`` of a :class:`~grsnn.nn.GRSNN` explained at
    answer ``tail`` (ids on ``graph``, a PyG ``Data`` with ``edge_type``).

    The subgraph holds the source, the answer, the nodes of the top paths and the top
    answers, then the nodes with the largest edge importance, then the nearest ones by hop,
    up to ``max_nodes``. ``paths`` and ``importance`` (from
    :func:`grsnn.reports.explain.explain_prediction`) and ``answers`` (``(node id, score,
    note)``, best first) are computed when not given.

    Example:
        >>> from torch_geometric.data import Data
        >>> from grsnn.nn import GRSNN
        >>> g = Data(edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]),
        ...          edge_type=torch.tensor([0, 1, 0, 1]), num_nodes=3)
        >>> page = query_page(GRSNN(2, hidden_dim=4), g, 0, 0, 2)
        >>> page.steps, page.ids[:2]
        (10, [0, 2])
    """
    from ..paths import hop_distances
    from ..reports.explain import explain_prediction

    model.eval()
    n_all = int(graph.num_nodes)
    names = list(entities) if entities is not None else [str(i) for i in range(n_all)]
    labels = (list(edge_labels) if edge_labels is not None
              else [f"r{i}" for i in range(model.num_relations)])
    rel_name = relation_name if relation_name is not None else labels[relation]
    if paths is None or importance is None:
        paths, importance, _ = explain_prediction(model, graph, head, relation, tail, top=top)
    h_t, r_t = torch.tensor([head]), torch.tensor([relation])
    with torch.no_grad():
        scores = model.score_all(graph, h_t, r_t)[0]
    if answers is None:
        best = scores.topk(min(top, n_all))
        answers = [(i, s, "") for i, s in zip(best.indices.tolist(), best.values.tolist())]
    spikes = model.spike_trains(graph, h_t, r_t)[:, :, 0]               # [T, N, D]
    delays = model.integer_delays(r_t)[0]                               # [R, D]
    steps, _, dim = spikes.shape
    ei, et = graph.edge_index, graph.edge_type

    imp = importance.detach().abs().double()
    node_score = torch.zeros(n_all, dtype=torch.float64).index_add_(0, ei[0], imp) \
        .index_add_(0, ei[1], imp)
    hops = hop_distances(ei, n_all, head)
    far = torch.where(hops >= 0, hops, torch.full_like(hops, n_all + 1)).double()
    order = torch.from_numpy(np.lexsort((np.arange(n_all), far.numpy(),
                                         -node_score.numpy()))).tolist()
    path_nodes = [v for p in paths for v in p.nodes]
    must = [head, tail] + path_nodes + [a[0] for a in answers]
    chosen = _select(order, must, max(max_nodes, 2))
    path_set = {e for p in paths for e in p.edges}
    priority = imp.clone()
    if path_set:
        priority[torch.tensor(sorted(path_set))] = float("inf")
    eid, src, dst = _induced(ei, chosen, n_all, priority, max_edges)
    eids = eid.tolist()

    sub = spikes[:, torch.tensor(chosen)]                                # [T, n, D]
    fire = sub.sum(-1).numpy().astype(np.int64)
    first_any = spikes.any(-1)                                           # [T, N]
    first = torch.where(first_any.any(0), first_any.float().argmax(0),
                        torch.full((n_all,), -1)).numpy().astype(np.int64)
    # spikes sent along every displayed edge, grouped by delay: [T, E', K + 1]
    k = int(delays.max()) + 1 if delays.numel() else 1
    onehot = torch.nn.functional.one_hot(delays[et[eid]], k).float()    # [E', D, K+1]
    sends = torch.einsum("sej,ejk->sek", sub[:, src].float(), onehot).round().long().numpy()
    flights = _flights(sends, np.arange(1, k + 1), steps, priority[eid].numpy(), max_flights)

    roles = []
    answer_ids = {a[0] for a in answers}
    path_node_set = set(path_nodes)
    for v in chosen:
        roles.append("source" if v == head else "target" if v == tail else
                     "path" if v in path_node_set else "candidate" if v in answer_ids else "")
    hops_np = hops.numpy().astype(np.int64)
    notes = [f"first spike: {'step ' + str(first[v]) if first[v] >= 0 else 'never'}, "
             f"hops from the source: {hops_np[v] if hops_np[v] >= 0 else 'unreachable'}"
             for v in chosen]
    edge_text = []
    for e in eids:
        d = delays[int(et[e])]
        edge_text.append(f"{labels[int(et[e])]} (delays {int(d.min())}-{int(d.max())}, "
                         f"mean {float(d.float().mean()):.1f})")
    local_e = {e: i for i, e in enumerate(eids)}

    types = [int(et[e]) for e in eids]
    on_path = {int(et[e]) for e in path_set}
    freq: Dict[int, int] = {}
    for x in types:
        freq[x] = freq.get(x, 0) + 1
    rows = sorted(freq, key=lambda x: (x not in on_path, -freq[x], x))[:30]
    path_text = []
    for p in paths:
        hops_txt = " ".join(f"--[{labels[int(et[e])]}]--> {names[v]}"
                            for e, v in zip(p.edges, p.nodes[1:]))
        path_text.append((f"{names[p.nodes[0]]} {hops_txt}", float(p.importance)))
    tail_score = float(scores[tail])
    return SpikePage(
        title=f"({names[head]}, {rel_name}, ?) explained at {names[tail]}: score "
              f"{tail_score:.4f}",
        description=(f"The query current enters {names[head]} at step 0. Every node holds "
                     f"{dim} LIF neurons; a spike of neuron j crosses an edge of relation r in "
                     f"1 + d steps, d being neuron j's delay of r for this query. A node lights "
                     f"up once it has fired; its colour counts its neurons firing at step t; red "
                     f"dots are spikes in flight. {len(chosen)} of {n_all} nodes and "
                     f"{len(eids)} edges are shown (the top paths, the top answers, then the "
                     f"nodes with the largest edge importance)."),
        names=[names[v] for v in chosen], ids=chosen, roles=roles, notes=notes,
        pos=_layout(len(chosen), src.numpy(), dst.numpy(), 0, 1 if tail != head else None),
        src=src.numpy(), dst=dst.numpy(), edge_labels=edge_text,
        path_edges=sorted(local_e[e] for e in path_set if e in local_e),
        fire=fire, neurons=dim, flights=flights,
        answers=[(names[i], float(s), "explained answer" if i == tail else note)
                 for i, s, note in answers],
        answers_title=f"top {len(answers)} answers of ({_short(names[head], 24)}, "
                      f"{_short(rel_name, 30)}, ?)",
        paths=path_text,
        paths_title=f"top {len(paths)} paths by average edge importance (gradient of the "
                    f"score)",
        delay_rows=[labels[x] + (" *" if x in on_path else "") for x in rows],
        delays=delays[torch.tensor(rows, dtype=torch.long)].numpy().astype(np.int64)
        if rows else np.zeros((0, dim), dtype=np.int64),
        delays_title="this query's integer delays (steps) per relation and neuron "
                     "(* = on a top path)",
        first=first, hops=hops_np, extra_step=1,
        query={"head": head, "relation": relation, "tail": tail})


def explanation_page(task, model, expl, max_nodes: int = 150, top: int = 10,
                     **kwargs) -> SpikePage:
    """The page of a :class:`~grsnn.reports.explain.QueryExplanation` of a knowledge-graph
    task (``grsnn explain --html``): names from the task, the ranked answers from
    ``task.predict`` (known true answers marked)."""
    from ..reports.explain import edge_importance

    sp = task.data.splits[expl.split]
    h, r, t = expl.ids
    index = {name: i for i, name in enumerate(sp.entities)}
    answers = [(index[name], score, "known true" if known else "")
               for name, score, known in task.predict(model, expl.head, expl.relation,
                                                      top=top, split=expl.split)]
    importance, _ = edge_importance(model, sp.graph, h, r, t)
    return query_page(model, sp.graph, h, r, t, entities=expl.entities,
                      edge_labels=expl.edge_labels, relation_name=expl.relation,
                      paths=expl.paths, importance=importance, answers=answers,
                      max_nodes=max_nodes, top=top, **kwargs)


def write_explanation_html(task, model, expl, out: str | Path, **kwargs) -> Path:
    """:func:`explanation_page` written to ``out``; returns the path."""
    return explanation_page(task, model, expl, **kwargs).write(out)


# ---------------------------------------------------------------------- shortest paths
def shortest_paths_page(G: nx.Graph, source: Hashable, weight: str = "weight",
                        resolution: float = 1.0, targets: Optional[Sequence[Hashable]] = None,
                        max_nodes: int = 300, max_flights: int = 3000) -> SpikePage:
    """The page of :func:`grsnn.shortest_paths` from ``source``: one neuron per node, one
    spike wave; a node lights up at its first spike, which is its distance.

    The subgraph holds the source, the ``targets`` and their shortest paths (default: the
    five farthest shown nodes), then the nodes in the order the wave reaches them, up to
    ``max_nodes``. The paths follow, from each node back, the synapse whose spike arrived
    first (the wave's tree, drawn in orange).

    Example:
        >>> page = shortest_paths_page(nx.path_graph(4), 0)
        >>> page.steps, int(page.lit(1).sum())
        (4, 2)
    """
    from ..paths import compile_circuit, first_spike_times, hop_distances

    if not isinstance(G, nx.Graph):
        raise TypeError(f"expected a networkx graph, got {type(G).__name__}")
    if source not in G:
        raise nx.NodeNotFound(f"source {source!r} is not in the graph")
    nodes, ptr, dst_all, delay = compile_circuit(G, weight, resolution)
    n_all = len(nodes)
    s = nodes.index(source)
    first_t, parent_t, _ = first_spike_times(ptr, dst_all, delay, s)
    src_all = torch.repeat_interleave(torch.arange(n_all), ptr[1:] - ptr[:-1])
    ei = torch.stack([src_all, dst_all])
    hops = hop_distances(ei, n_all, s).numpy().astype(np.int64)
    first = first_t.numpy().astype(np.int64)
    parent = parent_t.tolist()
    steps = int(first.max()) + 1
    names = [str(v) for v in nodes]

    def chain(v: int) -> List[int]:
        out = [v]
        while parent[out[-1]] >= 0:
            out.append(parent[out[-1]])
        return out[::-1]

    wave = sorted(range(n_all), key=lambda v: (first[v] < 0, first[v], v))
    if targets is None:
        shown = [v for v in wave if first[v] >= 0][:max_nodes]
        goal = sorted(shown, key=lambda v: (-first[v], v))[:5]
    else:
        index = {v: i for i, v in enumerate(nodes)}
        missing = [t for t in targets if t not in index]
        if missing:
            raise nx.NodeNotFound(f"targets {missing!r} are not in the graph")
        goal = [index[t] for t in targets]
    goal_paths = [chain(v) for v in goal if first[v] >= 0]
    chosen = _select(wave, [s] + [v for p in goal_paths for v in p] + goal, max(max_nodes, 1))
    tree = torch.zeros(ei.size(1), dtype=torch.float64)
    chosen_set = set(chosen)
    par = torch.tensor(parent)
    is_tree = (par[ei[1]] == ei[0]) & (first_t[ei[1]] == first_t[ei[0]] + delay)
    on_goal = {(p[i], p[i + 1]) for p in goal_paths for i in range(len(p) - 1)}
    for e in is_tree.nonzero().flatten().tolist():
        u, v = int(ei[0, e]), int(ei[1, e])
        tree[e] = 2.0 if (u, v) in on_goal else 1.0
    eid, src, dst = _induced(ei, chosen, n_all, tree, 10 * max_nodes)
    eids = eid.tolist()
    # one wave: every node fires once, at its distance
    cf = first[chosen]
    fire = (np.arange(steps)[:, None] == cf[None, :]).astype(np.int64)
    d_np = delay.numpy().astype(np.int64)
    k = int(d_np[eids].max()) + 1 if eids else 1
    sends = np.zeros((steps, len(eids), k), dtype=np.int64)
    src_np, e_np = src.numpy(), np.array(eids, dtype=np.int64)
    sent = cf[src_np] if len(eids) else np.zeros(0, dtype=np.int64)
    ok = (sent >= 0) & (d_np[e_np] > 0) if len(eids) else np.zeros(0, dtype=bool)
    sends[sent[ok], np.nonzero(ok)[0], d_np[e_np[ok]]] = 1
    flights = _flights(sends, np.arange(k), steps, tree[eid].numpy(), max_flights)

    goal_set = set(goal)
    path_nodes = {v for p in goal_paths for v in p}
    roles = ["source" if v == s else "target" if v in goal_set else
             "path" if v in path_nodes else "" for v in chosen]
    notes = [f"first spike = distance: {'step ' + str(first[v]) if first[v] >= 0 else 'never'}"
             f", hops: {hops[v] if hops[v] >= 0 else 'unreachable'}" for v in chosen]
    edge_text = [f"delay {int(d_np[e])}" + (" (the wave's tree)" if tree[e] > 0 else "")
                 for e in eids]
    local_e = {e: i for i, e in enumerate(eids)}
    nearest = [v for v in wave if first[v] > 0][:10]
    values, counts = np.unique(d_np, return_counts=True)
    unreached = int((first < 0).sum())
    return SpikePage(
        title=f"shortest paths from {names[s]} as one spike wave ({n_all} nodes, "
              f"{ei.size(1)} synapses)",
        description=(f"One neuron per node; an edge of weight w is a synapse of delay "
                     f"round(w / {resolution:g}) steps. The source fires at step 0 and every "
                     f"neuron fires once, on the first spike that reaches it: its first-spike "
                     f"step is its distance (Dijkstra's frontier, step by step). Red dots are "
                     f"spikes in flight; orange edges carried the first spike to their node. "
                     f"{len(chosen)} of {n_all} nodes are shown, in the order the wave reaches "
                     f"them; {unreached} nodes are never reached."),
        names=[names[v] for v in chosen], ids=chosen, roles=roles, notes=notes,
        pos=_layout(len(chosen), src.numpy(), dst.numpy(), 0,
                    chosen.index(goal[0]) if goal and goal[0] in chosen_set else None),
        src=src.numpy(), dst=dst.numpy(), edge_labels=edge_text,
        path_edges=sorted(local_e[e] for e in eids if tree[e] > 0),
        fire=fire, neurons=1, flights=flights,
        answers=[(names[v], float(first[v]), "target" if v in goal_set else "")
                 for v in nearest],
        answers_title="the nearest nodes: first spike step = distance",
        paths=[(" \u2192 ".join(names[v] for v in p), float(first[p[-1]])) for p in goal_paths],
        paths_title="shortest paths to the targets (value: length = first spike step)",
        delay_rows=[str(int(v)) for v in values], delays=counts.astype(np.int64),
        delays_title="synaptic delays of the circuit (edge weights in steps)",
        first=first, hops=hops, query={"source": s})
