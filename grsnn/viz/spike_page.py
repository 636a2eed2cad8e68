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

This module gathers the public names; the code is split by role: :mod:`grsnn.viz.page` (the
:class:`~grsnn.viz.page.SpikePage` dataclass), :mod:`grsnn.viz.figures` (the plotly figures),
:mod:`grsnn.viz.template` (the HTML), :mod:`grsnn.viz.subgraph` (nodes, edges, layout and
spikes in flight), :mod:`grsnn.viz.query` (a knowledge-graph query) and
:mod:`grsnn.viz.waves` (the shortest-path wave).
"""
from __future__ import annotations

from .figures import FLIGHT_TRACE, NODE_TRACE, PLOT_ID
from .page import SpikePage
from .query import explanation_page, query_page, write_explanation_html
from .waves import shortest_paths_page

__all__ = ["SpikePage", "query_page", "explanation_page", "shortest_paths_page",
           "write_explanation_html", "PLOT_ID", "NODE_TRACE", "FLIGHT_TRACE"]
