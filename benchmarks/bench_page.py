"""Interaction times of the report page (lineage.html) on synthetic projects, in Chromium.

    .venv/bin/python benchmarks/bench_page.py [--models 1000,5000] [--workdir /tmp/lineage-bench] [--repeat 3]

For each size: the compiled synthetic project (benchmarks/synthetic_project.py, generated when
missing), `lineage-tools report --rows none` on it (wall seconds, and the grandalf layout's share
measured apart), then the page opened from a file:// URL in Debian's headless Chromium through
Playwright at 1400x900, as a person would use it. Each interaction is timed inside the page from
the event to the second animation frame after it (the page has drawn), median of `--repeat`:

* load: navigation start to the page ready (data parsed, indexes built, graph drawn and fitted);
* search: typing a column name, results listed;
* pick: clicking a mart column: its path computed, drawn alone and fitted, details written;
* indirect: ticking INDIRECT (every edge of the path, drawn muted);
* whole graph: unticking "path only" (every node drawn, the path highlighted);
* zoom: one wheel step on the whole graph; pan: one drag step (both only move a transform);
* fit: the Fit button.

Prints one Markdown table (benchmarks/README.md keeps the figures).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import synthetic_project  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

# the time from running `fn` (in the page) to the second animation frame after it, in ms
TIMED = """async (code) => {
    const t0 = performance.now();
    (new Function(code))();
    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
    return performance.now() - t0;
}"""


def report(project: Path, out: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "lineage-tools"), "report", "--quiet", "--rows", "none",
                    "-o", str(out), "--project-dir", str(project), "--profiles-dir", str(project)],
                   check=True, capture_output=True, env=dict(os.environ, DO_NOT_TRACK="1"))
    return time.perf_counter() - t0


def layout_seconds(doc: dict) -> float:
    from lineage_tools.render import layout

    t0 = time.perf_counter()
    layout.layout(doc["nodes"])
    return time.perf_counter() - t0


def pick_column(doc: dict) -> tuple[str, str, str]:
    """A column of the last mart with DIRECT inputs: (node id, label, column)."""
    fed = {(e["target"]["node"], e["target"]["column"]) for e in doc["edges"] if e["type"] == "DIRECT"}
    for n in reversed(doc["nodes"]):
        if n.get("layer") == "marts":
            for c in n["columns"]:
                if (n["id"], c["name"]) in fed and c["name"] != "source_ids":
                    return n["id"], n["label"], c["name"]
    raise SystemExit("no mart column with inputs")


def measure(page_path: Path, doc: dict, repeat: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    node, name, column = pick_column(doc)
    sel = f'#results .result[data-node="{node}"][data-column="{column}"]'
    times: dict[str, list[float]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        for _ in range(repeat):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(page_path.as_uri(), timeout=600_000)
            page.wait_for_selector("body[data-ready]", timeout=600_000)
            load = page.evaluate("""() => new Promise(r => requestAnimationFrame(() =>
                requestAnimationFrame(() => r(performance.now()))))""")
            times.setdefault("load", []).append(load)
            query = json.dumps(f"{name}.{column}")
            times.setdefault("search", []).append(page.evaluate(TIMED, f"""
                const s = document.getElementById('search'); s.value = {query};
                s.dispatchEvent(new Event('input'));"""))
            times.setdefault("pick", []).append(page.evaluate(TIMED, f"document.querySelector({json.dumps(sel)}).click();"))
            times.setdefault("indirect", []).append(page.evaluate(TIMED, "document.getElementById('indirect').click();"))
            times.setdefault("whole graph", []).append(page.evaluate(TIMED, "document.getElementById('path-only').click();"))
            times.setdefault("zoom", []).append(page.evaluate(TIMED, """
                const c = document.getElementById('canvas');
                c.dispatchEvent(new WheelEvent('wheel', {deltaY: -120, clientX: 600, clientY: 400, bubbles: true, cancelable: true}));"""))
            times.setdefault("pan", []).append(page.evaluate(TIMED, """
                const c = document.getElementById('canvas');
                const ev = (t, x) => c.dispatchEvent(new PointerEvent(t, {clientX: x, clientY: 400, button: 0, bubbles: true, pointerId: 1}));
                ev('pointerdown', 600); ev('pointermove', 640); ev('pointermove', 700); ev('pointerup', 700);"""))
            times.setdefault("fit", []).append(page.evaluate(TIMED, "document.getElementById('fit').click();"))
            nodes = page.locator("g.node").count()
            times.setdefault("nodes drawn", []).append(nodes)
            if errors:
                raise SystemExit(f"the page logged errors: {errors}")
            page.close()
        browser.close()
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="1000,5000")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/lineage-bench"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    if not shutil.which("chromium"):
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    rows = []
    for n in (int(x) for x in args.models.split(",")):
        project, _ = synthetic_project.ensure_project(n, args.workdir, args.seed)
        out = args.workdir / f"report{n}"
        report(project, out)  # warm the lineage cache: the second run is the one timed
        wall = report(project, out)
        doc = json.loads((out / "lineage.json").read_text(encoding="utf-8"))
        lay = layout_seconds(doc)
        size = (out / "lineage.html").stat().st_size / 1e6
        t = measure(out / "lineage.html", doc, args.repeat)
        rows.append((n, len(doc["nodes"]), len(doc["edges"]), size, wall, lay, t))
        print(f"{n} models done", file=sys.stderr, flush=True)
    print("| models | nodes | column edges | page MB | report s (warm) | of which layout s | load ms | search ms "
          "| pick ms | + INDIRECT ms | whole graph ms | zoom ms | pan ms | fit ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, nodes, edges, size, wall, lay, t in rows:
        print(f"| {n:,} | {nodes:,} | {edges:,} | {size:.1f} | {wall:.1f} | {lay:.2f} | {t['load']:.0f} | "
              f"{t['search']:.0f} | {t['pick']:.0f} | {t['indirect']:.0f} | {t['whole graph']:.0f} | "
              f"{t['zoom']:.0f} | {t['pan']:.0f} | {t['fit']:.0f} |")


if __name__ == "__main__":
    main()
