"""Size and rendering time of the interactive explain page (grsnn explain --html).

Builds the page of one fb237_v2 test query (results/fb237_v2/best.pt) for subgraphs of
several sizes and opens each in headless Chromium (Debian's chromium and chromedriver):
time to first paint (the browser's first-contentful-paint entry), the time at which the
animated plot has been drawn and painted, and the time to show one step (Plotly.animate to
the next frame, then a painted frame), median of all steps.

Run:  .venv/bin/python benchmarks/explain_page.py [--nodes 150 500]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEP_JS = """
const done = arguments[arguments.length - 1];
const gd = document.getElementById(window.grsnnPage.plot);
const t0 = performance.now();
Plotly.animate(gd, [arguments[0]], {mode: 'immediate', frame: {duration: 0, redraw: false},
                                    transition: {duration: 0}})
  .then(() => requestAnimationFrame(() => requestAnimationFrame(
        () => done(performance.now() - t0))));
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, nargs="+", default=[150, 500])
    p.add_argument("--checkpoint", default=str(ROOT / "results" / "fb237_v2" / "best.pt"))
    args = p.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from grsnn.tasks.build import load_trained
    from grsnn.reports.explain import explain_query
    from grsnn.viz import explanation_page

    task, model = load_trained(args.checkpoint, compiled=False)
    head, rel, tail = task.example_queries("test", 1)[0]
    expl = explain_query(task, model, head, rel, tail, "test", 5)
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--window-size=1400,1000"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"),
                           options=opts)
    print(f"query ({head}, {rel}, {tail}) on the fb237_v2 test graph")
    print("| nodes | edges | page (MB) | build (s) | first paint (ms) | plot painted (ms) "
          "| one step (ms, median) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.nodes:
            t0 = time.perf_counter()
            page = explanation_page(task, model, expl, max_nodes=n, top=10)
            path = page.write(Path(tmp) / f"page_{n}.html")
            build = time.perf_counter() - t0
            drv.get(path.as_uri())
            while not drv.execute_script("return window.grsnnRendered !== undefined"):
                time.sleep(0.05)
            rendered = drv.execute_script("return window.grsnnRendered")
            paint = {}
            while "first-contentful-paint" not in paint:
                paint = dict(drv.execute_script("return performance.getEntriesByType('paint')"
                                                ".map(e => [e.name, e.startTime])"))
            steps = [drv.execute_async_script(STEP_JS, str(t)) for t in range(page.steps)]
            print(f"| {len(page.names)} | {len(page.src)} | {path.stat().st_size / 1e6:.1f} | "
                  f"{build:.1f} | {paint['first-contentful-paint']:.0f} | {rendered:.0f} | "
                  f"{statistics.median(steps):.0f} |")
    drv.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
