"""The plotly figures of a :class:`~grsnn.viz.page.SpikePage`: the animated spike movie
(one frame per step) and the three side figures (answers, delays, first spike against hops)."""
from __future__ import annotations

import html
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import numpy as np

if TYPE_CHECKING:
    from .page import SpikePage

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


def movie(page: SpikePage):
    """The animated figure of ``page``: edges, path edges, edge hover points, spikes in
    flight and nodes, one frame per step."""
    import plotly.graph_objects as go

    traces = _movie_traces(page)
    frames = [go.Frame(name=str(t), traces=[FLIGHT_TRACE, NODE_TRACE],
                       data=[go.Scatter(**flight_frame(page, t)),
                             go.Scatter(**node_frame(page, t))])
              for t in range(page.steps)]
    fig = go.Figure(data=traces, frames=frames)
    _movie_layout(fig, page)
    return fig


def _movie_traces(page: SpikePage) -> list:
    """The five traces of the first frame (edges, path edges, edge names, spikes in flight,
    nodes)."""
    import plotly.graph_objects as go

    pos = page.pos
    ex, ey = _segments(pos, page.src, page.dst, range(len(page.src)))
    px, py = _segments(pos, page.src, page.dst, page.path_edges)
    mx, my, mtext = edge_hover(page)
    hover = [f"<b>{html.escape(n)}</b>" + (f"<br>{_ROLE_TEXT[r]}" if r else "")
             + f"<br>{html.escape(note)}"
             for n, r, note in zip(page.names, page.roles, page.notes)]
    d = page.neurons
    start = node_frame(page, 0)
    start_marker = start.pop("marker")
    assert isinstance(start_marker, dict)
    node = go.Scatter(
        x=_r(pos[:, 0]), y=_r(pos[:, 1]), mode="markers", name="nodes",
        ids=[str(i) for i in page.ids], text=hover,
        hovertemplate="%{text}<br>neurons firing at this step: %{customdata} of "
                      f"{d}<extra></extra>",
        marker=dict(symbol=[_ROLE_SYMBOL[r] for r in page.roles],
                    size=[_ROLE_SIZE[r] for r in page.roles],
                    line=dict(width=[1.5 if r else 0.5 for r in page.roles],
                              color="#dee2e6"),
                    cmin=-1, cmax=d, colorscale=_colorscale(d), showscale=True,
                    colorbar=dict(title=dict(text="neurons<br>firing"), x=1.0,
                                  tickvals=sorted({0, d // 2, d}), len=0.6),
                    **start_marker),
        **start)
    flight = flight_frame(page, 0)
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
    return traces


def _movie_layout(fig, page: SpikePage) -> None:
    """The layout of the movie: dark background, labels of the source and the target, the
    play and pause buttons and the step slider."""
    pos = page.pos
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
            _short(page.names[i], 30)), showarrow=True, arrowcolor="#adb5bd",
            ax=-50 if r == "source" else 50, ay=-36, font=dict(size=12))
            for i, r in enumerate(page.roles) if r in ("source", "target")],
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
                             for t in range(page.steps)])])


def node_frame(page: SpikePage, t: int) -> Dict[str, object]:
    lit = page.lit(t)
    now = page.fire[t]
    color = np.where(lit, now, -1)
    return dict(customdata=now.tolist(),
                marker=dict(color=color.tolist(),
                            opacity=np.where(lit, _LIT, _UNLIT).tolist()))


def flight_frame(page: SpikePage, t: int) -> Dict[str, object]:
    rows = page.flights[t] if t < len(page.flights) else np.zeros((0, 4), dtype=np.int64)
    if len(rows) == 0:
        return dict(x=[], y=[], customdata=[], marker=dict(size=[]))
    e, sent, travel, count = rows.T
    frac = (t - sent + 0.5) / np.maximum(travel, 1)
    a, b = page.pos[page.src[e]], page.pos[page.dst[e]]
    vec = b - a
    length = np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-9)
    normal = np.stack([-vec[:, 1], vec[:, 0]], 1) / length * (0.006 * span(page))
    xy = a + frac[:, None] * vec + normal      # two directions of an edge: two sides
    size = 4 + 8 * np.sqrt(count / max(page.neurons, 1))
    custom = np.stack([count, travel - page.extra_step, sent,
                       sent + travel], 1)
    return dict(x=_r(xy[:, 0]), y=_r(xy[:, 1]), customdata=custom.tolist(),
                marker=dict(size=np.round(size, 1).tolist()))


def span(page: SpikePage) -> float:
    span = page.pos.max(0) - page.pos.min(0) if len(page.pos) else np.ones(2)
    return float(max(span.max(), 1e-6))


def edge_hover(page: SpikePage) -> Tuple[List[float], List[float], List[str]]:
    """One hover point per connected pair of nodes, listing its edges."""
    pairs: Dict[Tuple[int, int], List[str]] = {}
    for e, (u, v) in enumerate(zip(page.src.tolist(), page.dst.tolist())):
        pairs.setdefault((min(u, v), max(u, v)), []).append(
            f"{html.escape(_short(page.names[u], 40))} --[{html.escape(page.edge_labels[e])}]"
            f"--> {html.escape(_short(page.names[v], 40))}")
    xs, ys, text = [], [], []
    for (u, v), lines in pairs.items():
        xs.append(round(float(page.pos[u, 0] + page.pos[v, 0]) / 2, 4))
        ys.append(round(float(page.pos[u, 1] + page.pos[v, 1]) / 2, 4))
        text.append("<br>".join(lines[:6]) + (f"<br>+{len(lines) - 6} more"
                                              if len(lines) > 6 else ""))
    return xs, ys, text


def side_figures(page: SpikePage):
    """The answers, the delays and the first-spike-vs-hops figures."""
    style = dict(height=420, margin=dict(l=10, r=10, t=50, b=40), font=dict(size=11))
    return (_answers_figure(page, style), _delays_figure(page, style),
            _first_spike_figure(page, style))


def _answers_figure(page: SpikePage, style: dict):
    """The ranked answers, best on top."""
    import plotly.graph_objects as go

    names = [_short(a[0], 32) for a in page.answers][::-1]
    answers = go.Figure(go.Bar(
        x=[a[1] for a in page.answers][::-1], y=[f"{i}. {n}" for i, n in zip(
            range(len(names), 0, -1), names)], orientation="h",
        text=[html.escape(a[2]) for a in page.answers][::-1], textposition="auto",
        marker=dict(color=["#f76707" if "explained" in a[2] or "target" in a[2] else
                           "#2f9e44" if "known" in a[2] else "#868e96"
                           for a in page.answers][::-1]),
        hovertemplate="%{y}: %{x:.4f}<extra></extra>"))
    answers.update_layout(title=page.answers_title, yaxis=dict(automargin=True), **style)
    return answers


def _delays_figure(page: SpikePage, style: dict):
    """The delays: a heatmap (rows by neurons) or a histogram (one row of counts)."""
    import plotly.graph_objects as go

    if page.delays.ndim == 2:
        full = [[f"{html.escape(row)}<br>neuron {j}" for j in range(page.delays.shape[1])]
                for row in page.delay_rows]
        delays = go.Figure(go.Heatmap(
            z=page.delays.tolist(), y=[_short(r, 34) for r in page.delay_rows],
            text=full, colorscale="Viridis", colorbar=dict(title=dict(text="steps")),
            hovertemplate="%{text}<br>delay %{z} steps<extra></extra>"))
        delays.update_layout(xaxis=dict(title="neuron"),
                             yaxis=dict(automargin=True, autorange="reversed"))
    else:
        delays = go.Figure(go.Bar(x=page.delay_rows, y=page.delays.tolist(),
                                  marker=dict(color="#4c6ef5")))
        delays.update_layout(xaxis=dict(title="delay (steps)", type="category"),
                             yaxis=dict(title="synapses"))
    delays.update_layout(title=page.delays_title, **style)
    return delays


def _first_spike_figure(page: SpikePage, style: dict):
    """The first spike step against the hop distance, one dot per pair (sized by count)."""
    import plotly.graph_objects as go

    ok = (page.first >= 0) & (page.hops >= 0)
    pairs, counts = np.unique(np.stack([page.hops[ok], page.first[ok]], 1), axis=0,
                              return_counts=True)
    pairs = pairs.reshape(-1, 2)
    spike = go.Figure(go.Scatter(
        x=pairs[:, 0].tolist(), y=pairs[:, 1].tolist(), mode="markers",
        customdata=counts.tolist(),
        marker=dict(size=(6 + 22 * np.sqrt(counts / max(counts.max(initial=1), 1))).round(1)
                    .tolist(), color="#4c6ef5", opacity=0.7),
        hovertemplate="%{customdata} node(s) at hop %{x} fire first at step %{y}"
                      "<extra></extra>"))
    silent = int((page.first < 0).sum())
    unreached = int((page.hops < 0).sum())
    spike.update_layout(
        title=f"first spike step against hop distance (all {len(page.first)} nodes; "
              f"{silent} never fire, {unreached} unreachable)",
        xaxis=dict(title="hops from the source", dtick=1),
        yaxis=dict(title="first spike step"), **style)
    return spike


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
