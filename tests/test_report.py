"""`lineage-tools report`: lineage.html, lineage.md and lineage.json from one pass.

Also holds `synthetic_project`, a generated project of any size (the browser test uses it for
the 1,000-model page and for names that try to break out of HTML).
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

import pytest

from conftest import run_cli
from lineage_tools import progress
from lineage_tools.graph import LineageGraph
from lineage_tools.provenance import Env
from lineage_tools.records import (
    ColumnEdge,
    ColumnRef,
    ModelLineage,
    Node,
    ProjectLineage,
    Reason,
    ReasonCode,
    StatementLineage,
    Status,
    Subtype,
)
from lineage_tools.render import html, markdown, mdtext
from lineage_tools.report import build_report, render_all

EVIL_COLUMN = "</script><script>alert('column')</script>"
EVIL_MODEL = "m<img src=x onerror=alert(1)>"
PREFIX = {"staging": "stg", "intermediate": "int", "marts": "fct"}


def _node(uid: str, rtype: str, folder: str, deps=(), cols=()) -> Node:
    name = uid.split(".", 2)[-1]
    path = f"seeds/{name}.csv" if rtype == "seed" else f"models/{folder}/{name}.sql"
    return Node(uid, name, rtype, f"db.main.{name}", "db", "main", name, original_file_path=path,
                depends_on=tuple(deps), columns=tuple((c, None) for c in cols), package_name="synth",
                materialized="table" if rtype == "model" else None)


def synthetic_project(n_models: int = 30, *, seed: int = 7, evil: bool = False) -> ProjectLineage:
    """Seeds with `source_id`, then staging / intermediate / marts models that read the layer
    before (joins, aggregations, filters, windows), each carrying provenance.

    With `evil`, one model and one column have names made to break HTML and Markdown, and one
    model is FAILED and one PARTIAL.
    """
    rnd = random.Random(seed)
    seeds = [_node(f"seed.synth.raw_{i}", "seed", "", cols=("id", "value", "kind", "source_id"))
             for i in range(max(3, n_models // 50))]
    nodes: list[Node] = list(seeds)
    models: list[ModelLineage] = []
    n_stg, n_int = max(1, n_models * 3 // 10), max(1, n_models * 4 // 10)
    layers: dict[str, list[str]] = {"staging": [], "intermediate": [], "marts": []}
    for i in range(n_models):
        layer = "staging" if i < n_stg else "intermediate" if i < n_stg + n_int else "marts"
        name = f"{PREFIX[layer]}_{i:04d}"
        if evil and i == n_models - 1:
            name = EVIL_MODEL
        uid = f"model.synth.{name}"
        if layer == "staging":
            parents = [rnd.choice(seeds).unique_id]
            cols = ("id", "value", "kind", "source_id")
            edges = [ColumnEdge("id", ColumnRef(parents[0], "id"), Subtype.IDENTITY),
                     ColumnEdge("value", ColumnRef(parents[0], "value"), Subtype.TRANSFORMATION),
                     ColumnEdge("kind", ColumnRef(parents[0], "kind"), Subtype.IDENTITY),
                     ColumnEdge("source_id", ColumnRef(parents[0], "source_id"), Subtype.IDENTITY),
                     ColumnEdge(None, ColumnRef(parents[0], "kind"), Subtype.FILTER)]
        elif layer == "intermediate":
            pool = layers["staging"] + layers["intermediate"][-20:]
            parents = rnd.sample(pool, min(2, len(pool)))
            a, b = parents[0], parents[-1]
            prov_a = "source_id" if a in layers["staging"] else "source_ids"
            prov_b = "source_id" if b in layers["staging"] else "source_ids"
            cols = ("id", "total", "n_rows", "source_ids")
            edges = [ColumnEdge("id", ColumnRef(a, "id"), Subtype.IDENTITY),
                     ColumnEdge("total", ColumnRef(a, "value"), Subtype.AGGREGATION),
                     ColumnEdge("total", ColumnRef(b, "value" if b in layers["staging"] else "total"), Subtype.AGGREGATION),
                     ColumnEdge("source_ids", ColumnRef(a, prov_a), Subtype.AGGREGATION),
                     ColumnEdge("source_ids", ColumnRef(b, prov_b), Subtype.AGGREGATION),
                     ColumnEdge(None, ColumnRef(a, "id"), Subtype.JOIN),
                     ColumnEdge(None, ColumnRef(b, "id"), Subtype.JOIN),
                     ColumnEdge(None, ColumnRef(a, "id"), Subtype.GROUP_BY)]
        else:
            pool = layers["intermediate"]
            parents = rnd.sample(pool, min(2, len(pool)))
            a = parents[0]
            cols = ("id", "score", "rank", "source_ids") + ((EVIL_COLUMN,) if evil and i == n_models - 1 else ())
            edges = [ColumnEdge("id", ColumnRef(a, "id"), Subtype.IDENTITY),
                     ColumnEdge("score", ColumnRef(a, "total"), Subtype.TRANSFORMATION),
                     ColumnEdge("score", ColumnRef(parents[-1], "n_rows"), Subtype.CONDITIONAL),
                     ColumnEdge("rank", ColumnRef(a, "total"), Subtype.WINDOW),
                     ColumnEdge("source_ids", ColumnRef(a, "source_ids"), Subtype.IDENTITY),
                     ColumnEdge(None, ColumnRef(parents[-1], "id"), Subtype.JOIN),
                     ColumnEdge(None, ColumnRef(a, "total"), Subtype.SORT)]
            if evil and i == n_models - 1:
                edges.append(ColumnEdge(EVIL_COLUMN, ColumnRef(a, "total"), Subtype.IDENTITY))
        status, reasons = Status.FULL, ()
        if evil and i == n_stg:
            status, reasons = Status.PARTIAL, (Reason(ReasonCode.UNKNOWN_COLUMN, "column <x> not found", 3),)
        if evil and i == n_stg + 1:
            status, reasons = Status.FAILED, (Reason(ReasonCode.PARSE_ERROR, "cannot parse </script>", 6),)
            edges, cols = [], ()
        node = _node(uid, "model", layer, deps=sorted(set(parents)))
        nodes.append(node)
        models.append(ModelLineage(node, StatementLineage(cols, tuple(edges), status=status, reasons=reasons)))
        layers[layer].append(uid)
    return ProjectLineage("synth", "duckdb", "duckdb", tuple(nodes), tuple(models))


def report_doc(project: ProjectLineage, tmp_path: Path) -> dict:
    return build_report(LineageGraph(project), Env(tmp_path))


def embedded_data(page: str) -> dict:
    """The JSON the page draws, read back out of its <script type="application/json"> tag."""
    m = re.search(r'<script type="application/json" id="lineage-data">(.*?)</script>', page, re.S)
    assert m, "no data tag in the page"
    return json.loads(m.group(1))


# ---------------------------------------------------------------------------------------------


def test_document_adds_layers_provenance_and_findings(tmp_path: Path):
    doc = report_doc(synthetic_project(30, evil=True), tmp_path)
    by_name = {n["name"]: n for n in doc["nodes"]}
    assert by_name["stg_0000"]["layer"] == "staging" and by_name["stg_0000"]["depth"] == 1
    assert by_name["raw_0"]["layer"] == "seed" and by_name["raw_0"]["depth"] == 0
    assert by_name["stg_0000"]["provenance_columns"] == ["source_id"]
    assert by_name["fct_0028"]["provenance_columns"] == ["source_ids"]
    assert {n["status"] for n in doc["nodes"] if n["type"] == "model"} == {"FULL", "PARTIAL", "FAILED"}
    # the FAILED model's check finding is attached to it by unique_id
    failed = next(n for n in doc["nodes"] if n["status"] == "FAILED")
    assert any(f["node"] == failed["id"] for f in doc["findings"]) and failed["findings"] >= 1
    # no registry in this project: no sources, and the report says why
    assert doc["sources"] == [] and "no source impact" in doc["report"]["notes"][0]


def test_names_are_text_in_html(tmp_path: Path):
    doc = report_doc(synthetic_project(30, evil=True), tmp_path)
    page = html.render(doc)
    # the page's own two <script> tags and no other: no name closes or opens one
    assert page.count("<script") == 2 and page.count("</script>") == 2
    assert "<img" not in page
    data = embedded_data(page)
    assert data == json.loads(json.dumps(doc))  # the page draws exactly lineage.json's data
    assert any(c["name"] == EVIL_COLUMN for n in data["nodes"] for c in n["columns"])
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page


def test_names_are_text_in_markdown(tmp_path: Path):
    doc = report_doc(synthetic_project(30, evil=True), tmp_path)
    evil = next(n for n in doc["nodes"] if any(c["name"] == EVIL_COLUMN for c in n["columns"]))
    evil["status"] = "PARTIAL"  # in the diagram, which shows the models that need a look
    md = markdown.render(doc)
    outside_code = re.sub(r"(`+).*?\1", "", md)
    assert "<img" not in outside_code and "<script" not in outside_code
    assert "```mermaid" in md
    mermaid = md.split("```mermaid", 1)[1].split("```", 1)[0]
    assert "<" not in mermaid and "#lt;img src=x onerror=alert(1)#gt;" in mermaid
    assert "| models | 30 (27 FULL, 2 PARTIAL, 1 FAILED) |" in md


def _quarantined_source(doc: dict, tainted: int) -> dict:
    """A quarantined source reaching the first three models, `tainted` rows left in the first."""
    models = [n for n in doc["nodes"] if n["type"] == "model"][:3]
    shared = "rows reach it through row-preserving steps only"
    return {"source_id": "bad_feed", "status": "quarantined", "status_reason": "broken batch",
            "status_changed_on": "2026-01-01", "fields": {},
            "impact": {"roots": [models[0]["depends_on"][0]], "rows_counted": True, "note": None,
                       "root_rows": [{"node": models[0]["depends_on"][0], "tainted_rows": 40}],
                       "rebuild_command": "dbt build --select x --vars '{excluded_sources: [bad_feed]}'",
                       "models": [{"model": m["id"], "name": m["name"], "mode": "filter", "reasons": [shared],
                                   "columns": [], "provenance_columns": [], "tainted_rows": tainted if i == 0 else 0,
                                   "total_rows": 100} for i, m in enumerate(models)]}}


def test_quarantined_source_with_no_row_left_is_settled_not_damage(tmp_path: Path):
    doc = report_doc(synthetic_project(30), tmp_path)
    doc["sources"] = [_quarantined_source(doc, 0)]
    md = markdown.render(doc)
    assert "Quarantined, nothing left to do: 0 rows remain in the 3 models it reaches" in md
    assert "```sh" not in md and "dbt build" not in md  # nothing to rebuild
    mermaid = md.split("### What needs a look", 1)[1]
    assert "tainted" not in mermaid and "stg_" not in mermaid
    # the reason the three models share is said once, not on every row
    assert md.count("rows reach it through row-preserving steps only") == 1
    assert md.count("as above (filter)") == 3


def test_quarantined_rows_left_are_painted_and_rebuilt(tmp_path: Path):
    doc = report_doc(synthetic_project(30), tmp_path)
    doc["sources"] = [_quarantined_source(doc, 7)]
    md = markdown.render(doc)
    assert "**7 rows remain** in the models it reaches: rebuild them" in md
    assert "```sh\ndbt build --select x" in md
    mermaid = md.split("```mermaid", 1)[1].split("```", 1)[0]
    first = next(n for n in doc["nodes"] if n["type"] == "model")
    assert f"{first['name']} · quarantined rows left" in mermaid and "class n0 tainted" in mermaid
    assert mermaid.count("[") <= 2 + len(doc["findings"])  # the touched models only, not the DAG


def test_big_project_diagram_is_by_layer(tmp_path: Path):
    md = markdown.render(report_doc(synthetic_project(200), tmp_path))
    mermaid = md.split("```mermaid", 1)[1].split("```", 1)[0]
    assert '["staging (60)"]' in mermaid and '["marts (60)"]' in mermaid
    assert mermaid.count("\n") < 20


def test_render_all_is_one_document(tmp_path: Path):
    doc = report_doc(synthetic_project(20), tmp_path)
    files = render_all(doc)
    assert json.loads(files["lineage.json"]) == embedded_data(files["lineage.html"])


def test_progress_only_on_a_terminal():
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as tty:
            assert progress.enabled(False, tty)
            assert not progress.enabled(True, tty)
    finally:
        os.close(master)
        os.close(slave)
    with open(os.devnull, "w") as pipe:
        assert not progress.enabled(False, pipe)


# ---------------------------------------------------------------------------------------------
# The command, on the real pipeline


@pytest.mark.dbt
def test_report_command_on_the_pipeline(built_pipeline: Path, tmp_path: Path):
    out = tmp_path / "deep" / "report"
    proc = run_cli("report", "-o", str(out), "--project-dir", str(built_pipeline), cwd=built_pipeline)
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = [Path(line) for line in proc.stdout.split()]
    assert sorted(p.name for p in written) == ["lineage.html", "lineage.json", "lineage.md"]
    assert all(p.parent == out.resolve() for p in written)
    assert sorted(p.name for p in out.iterdir()) == ["lineage.html", "lineage.json", "lineage.md"]  # nothing else
    assert "━" not in proc.stderr  # no progress bar when stderr is not a terminal

    doc = json.loads((out / "lineage.json").read_text(encoding="utf-8"))
    assert embedded_data((out / "lineage.html").read_text(encoding="utf-8")) == doc
    models = [n for n in doc["nodes"] if n["type"] == "model"]
    assert len(models) >= 10 and all(n["status"] in ("FULL", "PARTIAL", "FAILED") for n in models)
    assert {n["layer"] for n in models} == {"staging", "intermediate", "marts"}
    quarantined = [s for s in doc["sources"] if s["status"] == "quarantined"]
    assert quarantined, "the pipeline's registry quarantines a source"
    imp = quarantined[0]["impact"]
    assert imp["rows_counted"] and imp["models"]
    assert {m["mode"] for m in imp["models"]} <= {"filter", "rebuild"}
    assert all(m["tainted_rows"] is not None for m in imp["models"] if m["total_rows"] is not None)

    md = (out / "lineage.md").read_text(encoding="utf-8")
    assert f"#### `{quarantined[0]['source_id']}`" in md
    assert "| model | mode | tainted rows | why |" in md and "```mermaid" in md
    # staging drops the quarantined source's rows: none remain, nothing is painted or rebuilt
    assert f"0 rows remain in the {len(imp['models'])} models it reaches" in md
    assert "```sh" not in md and "Nothing to point at" in md
    filter_why = next(m["reasons"][0] for m in imp["models"] if m["mode"] == "filter")
    assert md.count(mdtext.text(filter_why)) == 1
    # rows counted for quarantined sources only: the others say nothing about a --no-rows flag
    assert not any("--no-rows" in (s["impact"]["note"] or "") for s in doc["sources"])
    assert f"| models | {len(models)} (" in md


def test_output_dir_that_is_a_file_exits_2(tmp_path: Path):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    proc = run_cli("report", "-o", str(target), "--project-dir", str(tmp_path))
    assert proc.returncode == 2 and "not a folder" in proc.stderr
    assert target.read_text() == "keep me"


def _run_on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal, as in a person's shell; return its stderr."""
    import select
    import subprocess

    from conftest import LINEAGE_TOOLS, dbt_env

    master, slave = os.openpty()
    proc = subprocess.Popen([LINEAGE_TOOLS, *args], stdout=subprocess.DEVNULL, stderr=slave, cwd=cwd,
                            env=dbt_env(cwd, TERM="xterm"))
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=600), out.decode("utf-8", "replace")


@pytest.mark.dbt
def test_progress_bars_on_a_terminal_not_with_quiet(built_pipeline: Path, tmp_path: Path):
    rc, err = _run_on_a_terminal(["report", "--rows", "none", "-o", str(tmp_path / "a")], built_pipeline)
    assert rc == 0, err[-2000:]
    assert "Impact of" in err and "━" in err
    rc, err = _run_on_a_terminal(["report", "--rows", "none", "--quiet", "-o", str(tmp_path / "b")], built_pipeline)
    assert rc == 0, err[-2000:]
    assert "Impact of" not in err and "━" not in err
