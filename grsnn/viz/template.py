"""The HTML of a :class:`~grsnn.viz.page.SpikePage`: the page template (inline plotly.js,
``window.grsnnPage`` and ``window.grsnnErrors`` for the browser tests) and its rendering."""
from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING

from .figures import FLIGHT_TRACE, NODE_TRACE, PLOT_ID

if TYPE_CHECKING:
    from .page import SpikePage


def page_html(page: SpikePage) -> str:
    """``page`` as one HTML string (plotly.js inlined, no network needed)."""
    from plotly.offline import get_plotlyjs

    config = {"displaylogo": False, "responsive": True}
    rendered = ("requestAnimationFrame(function(){requestAnimationFrame(function(){"
                "window.grsnnRendered = performance.now();});});")
    main = page.movie().to_html(full_html=False, include_plotlyjs=False, div_id=PLOT_ID,
                                config=config, post_script=rendered, auto_play=False)
    side = [f.to_html(full_html=False, include_plotlyjs=False, config=config,
                      div_id=f"side-{i}") for i, f in enumerate(page.side_figures())]
    rows = "".join(f"<tr><td>{i}</td><td>{score:+.4f}</td><td>{html.escape(text)}</td></tr>"
                   for i, (text, score) in enumerate(page.paths, 1))
    table = (f"<h3>{html.escape(page.paths_title)}</h3><table><tr><th>#</th><th>value</th>"
             f"<th>path</th></tr>{rows}</table>")
    meta = json.dumps({"plot": PLOT_ID, "nodeTrace": NODE_TRACE,
                       "flightTrace": FLIGHT_TRACE, "steps": page.steps,
                       "neurons": page.neurons, "nodes": len(page.names),
                       "query": page.query})
    return _PAGE.format(
        title=html.escape(page.title), description=html.escape(page.description),
        plotlyjs=get_plotlyjs(), main=main, answers=side[0], table=table,
        delays=side[1], spike=side[2], meta=meta)


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
