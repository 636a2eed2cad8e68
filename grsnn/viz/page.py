"""The :class:`SpikePage` dataclass: what one spike page shows (the figures are built in
:mod:`grsnn.viz.figures`, the HTML in :mod:`grsnn.viz.template`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import figures
from .template import page_html


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
        return figures.movie(self)

    def side_figures(self):
        """The answers, the delays and the first-spike-vs-hops figures."""
        return figures.side_figures(self)

    def html(self) -> str:
        """The page as one HTML string (plotly.js inlined, no network needed)."""
        return page_html(self)

    def write(self, path: str | Path) -> Path:
        """Write :meth:`html` to ``path`` (folders created) and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.html(), encoding="utf-8")
        return path
