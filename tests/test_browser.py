"""The report page in a real browser: Debian's Chromium, headless, driven by Playwright through
pytest-playwright's fixtures (`page`), never a downloaded browser.

As a person would: open `lineage.html` from a file:// URL at 1400x900, see the whole pipeline
inside the window, type a column in the search box, click it, and see its path (computed
independently by `graph.LineageGraph`) inside the window; tick INDIRECT and see the rows that
shape it, muted; drag to pan, wheel to zoom, Fit to come back; pick a source and read its impact;
and on a 1,000-model page, load and pick without a console error. The page must log no error and
fetch nothing. Screenshots are written as test artifacts to `LINEAGE_SCREENSHOT_DIR`, else to
`<pytest basetemp>/artifacts/` (the path is printed).

Skips only when Chromium is not installed (`.ci/run` installs Debian's `chromium`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from lineage_tools.graph import LineageGraph
from lineage_tools.records import ColumnRef, EdgeType
from lineage_tools.render import html
from test_report import EVIL_COLUMN, report_doc, synthetic_project

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 900}

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium; .ci/run installs it): "
                             "the report page was not opened in a browser")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright launches Debian's Chromium, headless, with no network side channels."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": ARGS, "headless": True}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": VIEWPORT}


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = Path(os.environ.get("LINEAGE_SCREENSHOT_DIR") or tmp_path_factory.getbasetemp() / "artifacts")
    out.mkdir(parents=True, exist_ok=True)
    return out


class Report:
    """The page opened in pytest-playwright's `page`, with errors, dialogs and requests recorded."""

    def __init__(self, page, path: Path):
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page = page
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))

        def on_dialog(d):
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", on_dialog)
        page.goto(path.resolve().as_uri())
        page.wait_for_selector("body[data-ready]")

    def search_and_click(self, text: str, node: str, column: str | None) -> None:
        """Type in the search box and click the result for (node, column), as a person would."""
        self.page.fill("#search", "")
        self.page.type("#search", text)
        results = self.page.locator("#results .result")
        for i in range(results.count()):
            r = results.nth(i)
            if r.get_attribute("data-node") == node and r.get_attribute("data-column") == column:
                r.click()
                return
        raise AssertionError(f"no search result for {node} {column} after typing {text!r}")

    def highlighted(self) -> tuple[set[str], set[tuple[str, str, str, str]]]:
        nodes = set(self.page.eval_on_selector_all("g.node.hl", "els => els.map(e => e.dataset.id)"))
        edges = self.page.eval_on_selector_all(
            "path.edge.hl", "els => els.map(e => [e.dataset.source, e.dataset.sourceColumn, e.dataset.target, e.dataset.subtype])")
        return nodes, {tuple(e) for e in edges}

    def outside_canvas(self) -> list[str]:
        """The drawn nodes not wholly inside the graph's canvas (and so the window)."""
        return self.page.evaluate("""() => {
            const c = document.getElementById('canvas').getBoundingClientRect();
            const w = window.innerWidth, h = window.innerHeight;
            return [...document.querySelectorAll('g.node')].filter(g => {
                const r = g.getBoundingClientRect();
                return r.left < c.left - 1 || r.top < c.top - 1 || r.right > c.right + 1 || r.bottom > c.bottom + 1
                    || r.right > w || r.bottom > h;
            }).map(g => g.dataset.id);
        }""")

    def name_px(self) -> float:
        """The on-screen height of a node name: 12 px at zoom 1."""
        return self.page.evaluate("() => document.querySelector('g.node text.name').getBoundingClientRect().height")

    def first_node_box(self, node_id: str) -> dict:
        return self.page.eval_on_selector(f'g.node[data-id="{node_id}"]', "e => e.getBoundingClientRect().toJSON()")

    def check_clean(self) -> None:
        assert self.errors == [], f"the page logged errors: {self.errors}"
        assert self.dialogs == [], f"the page opened dialogs (script ran from a name?): {self.dialogs}"
        assert [u for u in self.requests if not u.startswith(("file:", "data:"))] == [], "the page fetched from the network"

    def screenshot(self, artifacts: Path, name: str) -> Path:
        path = artifacts / name
        self.page.screenshot(path=str(path))
        assert path.stat().st_size > 10_000
        print(f"screenshot: {path}")
        return path


def walk(graph: LineageGraph, start: ColumnRef, kinds=None) -> tuple[set[str], set[tuple[str, str, str, str]]]:
    """Nodes and edges (source node, source column, target node, subtype) on a column's paths."""
    up, down = graph.upstream(start, kinds), graph.downstream(start, kinds)
    edges = set()
    for col in {start} | up:
        edges |= {(e.source.relation, e.source.column, e.target.relation, e.subtype.value)
                  for e in graph.upstream_edges(col, kinds)}
    for col in {start} | down:
        edges |= {(e.source.relation, e.source.column, e.target.relation, e.subtype.value)
                  for e in graph.downstream_edges(col, kinds)}
    return {start.relation} | {c.relation for c in up | down}, edges


@pytest.fixture(scope="module")
def pipeline_report(built_pipeline: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "report"
    proc = run_cli("report", "--quiet", "-o", str(out), "--project-dir", str(built_pipeline), cwd=built_pipeline)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _graph_of(doc: dict) -> LineageGraph:
    """The graph the page draws, rebuilt in Python from lineage.json by the library's records."""
    from lineage_tools.records import ColumnEdge, ModelLineage, Node, ProjectLineage, StatementLineage, Status, Subtype

    nodes, models = [], []
    edges_into: dict[str, list[ColumnEdge]] = {}
    for e in doc["edges"]:
        edges_into.setdefault(e["target"]["node"], []).append(ColumnEdge(
            e["target"]["column"], ColumnRef(e["source"]["node"], e["source"]["column"]), Subtype[e["subtype"]],
            e["masking"], e["incremental_only"]))
    for n in doc["nodes"]:
        if n["type"] == "external":
            continue
        node = Node(n["id"], n["name"], n["type"], n["relation"], None, None, n["name"],
                    depends_on=tuple(n["depends_on"]), columns=tuple((c["name"], None) for c in n["columns"]),
                    source_name=n["label"].split(".")[0] if n["type"] == "source" else None)
        nodes.append(node)
        if n["status"]:
            cols = tuple(c["name"] for c in n["columns"])
            models.append(ModelLineage(node, StatementLineage(cols, tuple(edges_into.get(n["id"], ())),
                                                              status=Status[n["status"]])))
    return LineageGraph(ProjectLineage("p", "duckdb", "duckdb", tuple(nodes), tuple(models)))


def _node_id(doc: dict, name: str) -> str:
    return next(n["id"] for n in doc["nodes"] if n["name"] == name)


@pytest.mark.dbt
def test_pipeline_fits_on_load_and_a_picked_path_fits(page, pipeline_report: Path, artifacts: Path):
    doc = json.loads((pipeline_report / "lineage.json").read_text(encoding="utf-8"))
    assert doc["layout"]["engine"] == "grandalf" and all(n["layout"] for n in doc["nodes"])
    graph = _graph_of(doc)
    report = Report(page, pipeline_report / "lineage.html")

    # on load: every node of the 19-model pipeline drawn, inside a 1400x900 window, names legible
    assert report.page.locator("g.node").count() == len(doc["nodes"]) >= 29
    assert report.outside_canvas() == []
    assert report.name_px() >= 8, "the pipeline fits only by shrinking its names below 8 px"
    report.screenshot(artifacts, "pipeline-load.png")

    # pick training_examples.is_job_seeker: its values' path (DIRECT), alone, fitted, nothing else
    start = ColumnRef(_node_id(doc, "training_examples"), "is_job_seeker")
    report.search_and_click("training_examples.is_job_seeker", start.relation, start.column)
    want_nodes, want_edges = walk(graph, start, {EdgeType.DIRECT})
    nodes, edges = report.highlighted()
    assert nodes == want_nodes and edges == want_edges
    assert len(want_nodes) >= 3, want_nodes
    assert set(report.page.eval_on_selector_all("g.node", "els => els.map(e => e.dataset.id)")) == want_nodes
    assert report.outside_canvas() == []
    assert report.name_px() >= 11, "a short path is drawn at (nearly) full size"
    assert report.page.text_content("#details h2") == "training_examples.is_job_seeker"
    assert report.page.text_content("#detail-status") == "FULL"
    assert report.page.locator(f'g.node.selected[data-id="{start.relation}"] rect.colrow.selected').count() == 1
    styles = report.page.eval_on_selector_all(
        "path.edge.hl", "els => els.map(e => [e.dataset.type, getComputedStyle(e).strokeDasharray])")
    assert styles and all(t == "DIRECT" and dash == "none" for t, dash in styles)
    report.screenshot(artifacts, "pipeline-pick.png")

    # one toggle away: the rows that shape it (INDIRECT), drawn muted, the whole path still fitted
    report.page.check("#indirect")
    all_nodes, all_edges = walk(graph, start)
    nodes, edges = report.highlighted()
    assert nodes == all_nodes and edges == all_edges and len(edges) > len(want_edges)
    muted = report.page.eval_on_selector_all(
        "path.edge.hl", "els => els.map(e => [e.dataset.type, e.classList.contains('muted'), "
                        "getComputedStyle(e).strokeDasharray, getComputedStyle(e).stroke])")
    assert all(m for t, m, _, _ in muted if t == "INDIRECT")
    assert all((dash == "none") == (t == "DIRECT") for t, _, dash, _ in muted)
    # one colour per subtype, as the legend shows
    subtypes = report.page.eval_on_selector_all("path.edge.hl", "els => els.map(e => [e.dataset.subtype, getComputedStyle(e).stroke])")
    for subtype, colour in subtypes:
        assert colour == report.page.eval_on_selector(f'#legend [data-subtype="{subtype}"] path', "e => getComputedStyle(e).stroke")
    assert report.page.locator("#legend .item").count() == 9
    assert report.outside_canvas() == []
    report.screenshot(artifacts, "pipeline-pick-indirect.png")
    report.check_clean()


@pytest.mark.dbt
def test_drag_pans_wheel_zooms_fit_comes_back(page, pipeline_report: Path):
    doc = json.loads((pipeline_report / "lineage.json").read_text(encoding="utf-8"))
    report = Report(page, pipeline_report / "lineage.html")
    uid = _node_id(doc, "int_user_accounts")
    before = report.first_node_box(uid)
    canvas = report.page.eval_on_selector("#canvas", "e => e.getBoundingClientRect().toJSON()")
    x, y = canvas["left"] + 40, canvas["bottom"] - 120  # an empty spot: no node there
    report.page.mouse.move(x, y)
    report.page.mouse.down()
    report.page.mouse.move(x + 60, y + 30, steps=5)
    report.page.mouse.move(x + 120, y + 50, steps=5)
    report.page.mouse.up()
    after = report.first_node_box(uid)
    assert (round(after["left"] - before["left"]), round(after["top"] - before["top"])) == (120, 50)
    assert report.page.text_content("#details") == ""  # a drag selects nothing

    report.page.mouse.move(after["left"] + 5, after["top"] + 5)
    report.page.mouse.wheel(0, -400)  # zoom in around the cursor: the node under it stays there
    zoomed = report.first_node_box(uid)
    assert zoomed["width"] > after["width"] * 1.5
    assert abs(zoomed["left"] - after["left"]) < 6 and abs(zoomed["top"] - after["top"]) < 6
    report.page.click("#zoom-out")
    assert report.first_node_box(uid)["width"] < zoomed["width"]
    report.page.click("#fit")
    assert report.first_node_box(uid) == pytest.approx(before, abs=0.5)
    assert report.outside_canvas() == []
    report.check_clean()


@pytest.mark.dbt
def test_text_reads_whole_at_1280(page, pipeline_report: Path, artifacts: Path):
    """No name cut off in search results, no word broken in the details, a one-line toolbar."""
    page.set_viewport_size({"width": 1280, "height": 800})
    report = Report(page, pipeline_report / "lineage.html")
    report.page.type("#search", "is_job")
    texts = report.page.eval_on_selector_all("#results .result", """els => els.map(e => [
        e.dataset.column, e.querySelector('.main').textContent, e.scrollWidth <= e.clientWidth + 1])""")
    assert len(texts) >= 3
    for column, shown, fits in texts:
        assert fits and (column is None or shown == column), (column, shown)
    report.page.locator('#results .result[data-column="is_job_seeker"]').first.click()
    toolbar = report.page.evaluate("""() => {
        const t = document.getElementById('toolbar');
        const mids = [...t.children].filter(c => c.offsetWidth).map(c => {
            const r = c.getBoundingClientRect(); return r.top + r.height / 2; });
        return [t.scrollWidth <= t.clientWidth + 1, Math.max(...mids) - Math.min(...mids), t.getBoundingClientRect().height];
    }""")
    assert toolbar[0] and toolbar[1] < 4 and toolbar[2] < 40, f"the toolbar wraps: {toolbar}"
    # every word of the details on one line: a cell may wrap between words, never inside one
    broken = report.page.evaluate("""() => {
        const out = [];
        const walker = document.createTreeWalker(document.getElementById('details'), NodeFilter.SHOW_TEXT);
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
            const words = n.textContent.split(/(\\s+)/);
            let at = 0;
            for (const w of words) {
                if (w.trim().length > 1) {
                    const r = document.createRange(); r.setStart(n, at); r.setEnd(n, at + w.length);
                    const lines = new Set([...r.getClientRects()].map(x => Math.round(x.top)));
                    if (lines.size > 1) out.push(w);
                }
                at += w.length;
            }
        }
        return out;
    }""")
    assert broken == [], f"words broken across lines: {broken}"
    report.screenshot(artifacts, "pipeline-1280.png")
    report.check_clean()


@pytest.mark.dbt
def test_pick_a_source_shows_its_impact(page, pipeline_report: Path, artifacts: Path):
    doc = json.loads((pipeline_report / "lineage.json").read_text(encoding="utf-8"))
    report = Report(page, pipeline_report / "lineage.html")

    # the quarantined source: staging drops its rows, none remain: it reads settled, not as damage
    source = next(s for s in doc["sources"] if s["status"] == "quarantined")
    assert source["impact"]["rows_counted"] and all(m["tainted_rows"] in (0, None) for m in source["impact"]["models"])
    report.page.click(f'#sources .result[data-source="{source["source_id"]}"]')
    assert report.page.text_content("#details h2") == source["source_id"]
    assert report.page.text_content("#detail-source-status") == "quarantined"
    models = source["impact"]["models"]
    assert report.page.text_content("#detail-source-summary") == (
        f"quarantined: 0 rows remain in the {len(models)} models it reaches; nothing to rebuild")
    assert "0 rows remain" in report.page.text_content(f'#sources .result[data-source="{source["source_id"]}"]')
    assert report.page.locator("#details details:not([open]) .impact").count() == len(models)
    assert "dbt build" not in report.page.text_content("#details")
    nodes, _ = report.highlighted()
    assert nodes == {m["model"] for m in models} | set(source["impact"]["roots"])
    assert report.page.locator("g.node.hl.settled").count() == len(nodes)
    assert report.outside_canvas() == []
    report.screenshot(artifacts, "pipeline-source-quarantined.png")

    # an active source: the reason several models share is said once, above them
    active = next(s for s in doc["sources"] if s["status"] == "active"
                  and sum(m["mode"] == "filter" for m in s["impact"]["models"]) >= 2)
    report.page.click(f'#sources .result[data-source="{active["source_id"]}"]')
    why = next(m["reasons"][0] for m in active["impact"]["models"] if m["mode"] == "filter")
    assert report.page.text_content("#details").count(why) == 1
    shown = report.page.eval_on_selector_all("#details .impact", "els => els.map(e => e.dataset.model)")
    assert sorted(shown) == sorted(m["model"] for m in active["impact"]["models"])
    modes = report.page.eval_on_selector_all("#details .group", "els => els.map(e => e.querySelector('.pill').textContent)")
    assert set(modes) == {m["mode"] for m in active["impact"]["models"]}
    assert report.page.locator("#details code.cmd").count() == 1
    report.check_clean()


def test_names_show_as_text(page, tmp_path: Path):
    doc = report_doc(synthetic_project(30, evil=True), tmp_path)
    path = tmp_path / "lineage.html"
    path.write_text(html.render(doc), encoding="utf-8")
    report = Report(page, path)
    evil = next(n for n in doc["nodes"] if any(c["name"] == EVIL_COLUMN for c in n["columns"]))
    report.search_and_click("<script>alert", evil["id"], EVIL_COLUMN)
    assert report.page.text_content("#details h2") == f"{evil['name']}.{EVIL_COLUMN}"
    assert report.page.locator("script").count() == 2 and report.page.locator("img").count() == 0
    labels = report.page.eval_on_selector_all(f'g.node[data-id="{evil["id"]}"] text.col', "els => els.map(e => e.textContent)")
    assert any(label.startswith("</script>") for label in labels)
    # a FAILED model shows its status and why
    failed = next(n for n in doc["nodes"] if n["status"] == "FAILED")
    report.search_and_click(failed["name"], failed["id"], None)
    assert report.page.text_content("#detail-status") == "FAILED"
    assert "cannot parse </script>" in report.page.text_content("#details")
    report.check_clean()


def test_a_thousand_models(page, tmp_path: Path, artifacts: Path):
    project = synthetic_project(1000)
    doc = report_doc(project, tmp_path)
    path = tmp_path / "lineage.html"
    path.write_text(html.render(doc), encoding="utf-8")
    report = Report(page, path)
    assert report.page.locator("g.node").count() == len(doc["nodes"])  # all drawn, collapsed
    assert report.page.locator("rect.colrow").count() == 0
    assert report.outside_canvas() == []
    report.screenshot(artifacts, "synthetic-1000-load.png")
    graph = LineageGraph(project)
    fct = next(m.node for m in reversed(project.models) if m.node.name.startswith("fct_"))
    start = ColumnRef(fct.unique_id, "score")
    report.search_and_click(f"{fct.name}.score", fct.unique_id, "score")
    want_nodes, want_edges = walk(graph, start, {EdgeType.DIRECT})
    nodes, edges = report.highlighted()
    assert nodes == want_nodes and edges == want_edges
    assert report.page.locator("g.node").count() == len(want_nodes) < len(doc["nodes"])
    assert report.page.is_checked("#path-only")
    assert report.outside_canvas() == []
    report.screenshot(artifacts, "synthetic-1000-pick.png")
    report.page.uncheck("#path-only")
    assert report.page.locator("g.node").count() == len(doc["nodes"])
    report.check_clean()


def test_a_quarantined_source_with_rows_left_reads_as_damage(page, tmp_path: Path):
    from test_report import _quarantined_source

    doc = report_doc(synthetic_project(30), tmp_path)
    doc["sources"] = [_quarantined_source(doc, 7), dict(_quarantined_source(doc, 0), source_id="done_feed")]
    path = tmp_path / "lineage.html"
    path.write_text(html.render(doc), encoding="utf-8")
    report = Report(page, path)
    assert report.page.text_content('#sources .result[data-source="bad_feed"] .sub') == "7 rows remain"
    assert report.page.text_content('#sources .result[data-source="done_feed"] .sub') == "0 rows remain"
    report.page.click('#sources .result[data-source="bad_feed"]')
    assert report.page.text_content("#detail-source-summary") == (
        "quarantined, but 7 rows remain in the models it reaches: rebuild them")
    assert "live" in report.page.get_attribute("#detail-source-status", "class")
    assert report.page.locator("g.node.hl").count() > 0 and report.page.locator("g.node.settled").count() == 0
    assert report.page.locator("#details code.cmd").count() == 1  # the rebuild to run
    assert report.page.locator("#details details .impact").count() == 0  # the models listed open
    report.page.click('#sources .result[data-source="done_feed"]')
    assert report.page.locator("g.node.settled").count() == report.page.locator("g.node.hl").count() > 0
    assert "live" not in report.page.get_attribute("#detail-source-status", "class")
    report.check_clean()
