"""The report page in a real browser: Debian's Chromium, headless, driven by Playwright.

As a person would: open `lineage.html` from a file:// URL, type a column in the search box,
click it, and check that the nodes and edges of its upstream and downstream paths are the ones
highlighted (computed independently by `graph.LineageGraph`), that edge types are styled apart,
that picking a source shows its impact, that names are shown as text, that a 1,000-model page
works, and that the page logged no error and fetched nothing. Screenshots are saved (set
LINEAGE_SCREENSHOT_DIR to keep them).

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
from lineage_tools.records import ColumnRef
from lineage_tools.render import html
from test_report import EVIL_COLUMN, report_doc, synthetic_project

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium; .ci/run installs it): "
                             "the report page was not opened in a browser")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Page:
    """A page with its console errors, uncaught exceptions, dialogs and requests recorded."""

    def __init__(self, browser, path: Path):
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page = browser.new_page(viewport={"width": 1600, "height": 1000})
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))

        def on_dialog(d):
            self.dialogs.append(d.message)
            d.dismiss()

        self.page.on("dialog", on_dialog)
        self.url = path.resolve().as_uri()
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready]")

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

    def check_clean(self) -> None:
        assert self.errors == [], f"the page logged errors: {self.errors}"
        assert self.dialogs == [], f"the page opened dialogs (script ran from a name?): {self.dialogs}"
        assert [u for u in self.requests if not u.startswith(("file:", "data:"))] == [], "the page fetched from the network"

    def screenshot(self, tmp_path: Path, name: str) -> Path:
        out = Path(os.environ.get("LINEAGE_SCREENSHOT_DIR") or tmp_path)
        out.mkdir(parents=True, exist_ok=True)
        path = out / name
        self.page.screenshot(path=str(path))
        assert path.stat().st_size > 10_000
        return path


def expected_path(graph: LineageGraph, start: ColumnRef) -> tuple[set[str], set[tuple[str, str, str, str]]]:
    """Nodes and edges (source node, source column, target node, subtype) on a column's paths."""
    up, down = graph.upstream(start), graph.downstream(start)
    edges = set()
    for col in {start} | up:
        edges |= {(e.source.relation, e.source.column, e.target.relation, e.subtype.value)
                  for e in graph.upstream_edges(col)}
    for col in {start} | down:
        edges |= {(e.source.relation, e.source.column, e.target.relation, e.subtype.value)
                  for e in graph.downstream_edges(col)}
    nodes = {start.relation} | {c.relation for c in up | down}
    return nodes, edges


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


def _pick_column(doc: dict, graph: LineageGraph) -> ColumnRef:
    """A staging column with a path both ways (stg_users_web.email when the pipeline has it)."""
    names = {n["id"]: n["name"] for n in doc["nodes"]}
    for n in doc["nodes"]:
        if n["name"] == "stg_users_web" and any(c["name"] == "email" for c in n["columns"]):
            return ColumnRef(n["id"], "email")
    for n in doc["nodes"]:
        if n.get("layer") == "staging":
            for c in n["columns"]:
                ref = ColumnRef(n["id"], c["name"])
                if graph.upstream(ref) and graph.downstream(ref):
                    return ref
    raise AssertionError(f"no staging column with paths both ways among {sorted(names.values())}")


@pytest.mark.dbt
def test_pick_a_column_highlights_its_paths(browser, pipeline_report: Path, tmp_path: Path):
    doc = json.loads((pipeline_report / "lineage.json").read_text(encoding="utf-8"))
    graph = _graph_of(doc)
    start = _pick_column(doc, graph)
    name = graph.display_name(start.relation)
    want_nodes, want_edges = expected_path(graph, start)
    assert len(want_nodes) >= 3 and want_edges

    page = Page(browser, pipeline_report / "lineage.html")
    assert page.page.locator("g.node").count() == len(doc["nodes"])  # a small project: every node drawn
    page.search_and_click(f"{name}.{start.column}", start.relation, start.column)
    nodes, edges = page.highlighted()
    assert nodes == want_nodes
    assert edges == want_edges
    # the picked column is selected, in its node, and the details name it with the model's status
    assert page.page.locator(f'g.node.selected[data-id="{start.relation}"] rect.colrow.selected').count() == 1
    assert page.page.text_content("#details h2") == f"{name}.{start.column}"
    status = next(n["status"] for n in doc["nodes"] if n["id"] == start.relation)
    assert page.page.text_content("#detail-status") == status
    # DIRECT edges solid, INDIRECT dashed; one colour per subtype, as the legend shows
    styles = page.page.eval_on_selector_all(
        "path.edge.hl", "els => els.map(e => [e.dataset.type, e.dataset.subtype, getComputedStyle(e).strokeDasharray,"
                        " getComputedStyle(e).stroke])")
    for etype, subtype, dash, colour in styles:
        assert (dash == "none") == (etype == "DIRECT"), (etype, subtype, dash)
        legend = page.page.eval_on_selector(f'#legend [data-subtype="{subtype}"] path', "e => getComputedStyle(e).stroke")
        assert colour == legend
    assert {s[1] for s in styles} >= {"TRANSFORMATION", "IDENTITY", "FILTER"} or len({s[1] for s in styles}) >= 2
    assert page.page.locator("#legend .item").count() == 9
    shot = page.screenshot(tmp_path, "lineage-column.png")
    print(f"screenshot: {shot}")
    page.check_clean()

    # "values only" follows DIRECT edges: fewer edges, all DIRECT
    page.page.check("#direct-only")
    _, direct_edges = page.highlighted()
    _, want_direct = expected_path_direct(graph, start)
    assert direct_edges == want_direct and direct_edges < edges
    page.check_clean()


def expected_path_direct(graph: LineageGraph, start: ColumnRef):
    from lineage_tools.records import EdgeType

    kinds = {EdgeType.DIRECT}
    up, down = graph.upstream(start, kinds), graph.downstream(start, kinds)
    edges = set()
    for col in {start} | up:
        edges |= {(e.source.relation, e.source.column, e.target.relation, e.subtype.value)
                  for e in graph.upstream_edges(col, kinds)}
    for col in {start} | down:
        edges |= {(e.source.relation, e.source.column, e.target.relation, e.subtype.value)
                  for e in graph.downstream_edges(col, kinds)}
    return {start.relation} | {c.relation for c in up | down}, edges


@pytest.mark.dbt
def test_pick_a_source_shows_its_impact(browser, pipeline_report: Path, tmp_path: Path):
    doc = json.loads((pipeline_report / "lineage.json").read_text(encoding="utf-8"))
    source = next(s for s in doc["sources"] if s["status"] == "quarantined")
    page = Page(browser, pipeline_report / "lineage.html")
    page.page.click(f'#sources .result[data-source="{source["source_id"]}"]')
    assert page.page.text_content("#details h2") == source["source_id"]
    assert page.page.text_content("#detail-source-status") == "quarantined"
    impact_models = source["impact"]["models"]
    table_text = page.page.text_content("#details")
    shown = page.page.eval_on_selector_all("#details .impact", "els => els.map(e => e.dataset.model)")
    assert shown == [m["model"] for m in impact_models]
    modes = page.page.eval_on_selector_all("#details .pill.filter, #details .pill.rebuild", "els => els.map(e => e.textContent)")
    assert sorted(modes) == sorted(m["mode"] for m in impact_models)
    nodes, _ = page.highlighted()
    roots = set(source["impact"]["roots"])
    assert nodes == {m["model"] for m in impact_models} | roots and roots
    counted = [m for m in impact_models if m["tainted_rows"] is not None]
    if counted:
        m = counted[0]
        assert f"{m['tainted_rows']} of {m['total_rows']} rows tainted" in table_text
    page.screenshot(tmp_path, "lineage-source.png")
    page.check_clean()


def test_names_show_as_text(browser, tmp_path: Path):
    doc = report_doc(synthetic_project(30, evil=True), tmp_path)
    path = tmp_path / "lineage.html"
    path.write_text(html.render(doc), encoding="utf-8")
    page = Page(browser, path)
    evil = next(n for n in doc["nodes"] if any(c["name"] == EVIL_COLUMN for c in n["columns"]))
    page.search_and_click("<script>alert", evil["id"], EVIL_COLUMN)
    assert page.page.text_content("#details h2") == f"{evil['name']}.{EVIL_COLUMN}"
    assert page.page.locator("script").count() == 2 and page.page.locator("img").count() == 0
    labels = page.page.eval_on_selector_all(f'g.node[data-id="{evil["id"]}"] text.col', "els => els.map(e => e.textContent)")
    assert any(label.startswith("</script>") for label in labels)
    # a FAILED model shows its status and why
    failed = next(n for n in doc["nodes"] if n["status"] == "FAILED")
    page.search_and_click(failed["name"], failed["id"], None)
    assert page.page.text_content("#detail-status") == "FAILED"
    assert "cannot parse </script>" in page.page.text_content("#details")
    page.check_clean()


def test_a_thousand_models(browser, tmp_path: Path):
    project = synthetic_project(1000)
    doc = report_doc(project, tmp_path)
    path = tmp_path / "lineage.html"
    path.write_text(html.render(doc), encoding="utf-8")
    page = Page(browser, path)
    assert page.page.locator("g.node").count() == len(doc["nodes"])  # all drawn, collapsed
    assert page.page.locator("rect.colrow").count() == 0
    graph = LineageGraph(project)
    fct = next(m.node for m in reversed(project.models) if m.node.name.startswith("fct_"))
    start = ColumnRef(fct.unique_id, "score")
    page.search_and_click(f"{fct.name}.score", fct.unique_id, "score")
    want_nodes, want_edges = expected_path(graph, start)
    nodes, edges = page.highlighted()
    assert nodes == want_nodes and edges == want_edges
    # a big project shows only the selected path, expanded
    assert page.page.locator("g.node").count() == len(want_nodes) < len(doc["nodes"])
    assert page.page.is_checked("#path-only")
    page.screenshot(tmp_path, "lineage-1000.png")
    page.page.uncheck("#path-only")
    assert page.page.locator("g.node").count() == len(doc["nodes"])
    page.check_clean()
