"""Interactive pages of the spiking circuit at work (self-contained HTML, plotly).

:func:`~grsnn.viz.query.explanation_page` shows one knowledge-graph query of a trained
model (``grsnn explain --html``), :func:`~grsnn.viz.waves.shortest_paths_page` the
spike wave of :func:`grsnn.shortest_paths` on a networkx graph.
"""
from __future__ import annotations

from .spike_page import (SpikePage, explanation_page, query_page, shortest_paths_page,
                         write_explanation_html)

__all__ = ["SpikePage", "query_page", "explanation_page", "shortest_paths_page",
           "write_explanation_html"]
