"""The editor loop's engine (`lineage_tools.lsp.state`) and `lineage-tools watch`.

* `LineageGraph.with_models` answers every query as a graph built anew would;
* an edit applied in memory (rendered by dbt in-process, the edited model and what it changes
  downstream analysed again) gives the lineage and the `check` findings that a fresh `dbt
  compile` and a full load of the same files give;
* `lineage-tools watch` prints the finding of a saved model at its line.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import LINEAGE_TOOLS, dbt_env, drop_provenance_of, run_dbt
from lineage_tools.graph import build_graph
from lineage_tools.records import (
    ColumnEdge,
    ColumnRef,
    EdgeType,
    ModelLineage,
    Node,
    ProjectLineage,
    StatementLineage,
    Subtype,
)


def _node(uid: str, rtype: str, cols: tuple[str, ...] = (), deps: tuple[str, ...] = ()) -> Node:
    name = uid.split(".")[-1]
    return Node(uid, name, rtype, "db.main." + name, "db", "main", name, depends_on=deps,
                columns=tuple((c, None) for c in cols))


def _queries(g) -> dict:
    out = {}
    for col in sorted(g.all_columns()):
        out[col] = (sorted(g.upstream(col)), sorted(g.downstream(col)), sorted(g.roots(col)),
                    sorted(g.roots(col, kinds={EdgeType.DIRECT, EdgeType.INDIRECT})),
                    sorted(map(repr, g.upstream_edges(col))), sorted(map(repr, g.downstream_edges(col))))
    return out


def test_with_models_answers_as_a_graph_built_anew() -> None:
    seed = _node("seed.p.raw", "seed", ("id", "v", "w", "source_id"))
    a = _node("model.p.a", "model", deps=("seed.p.raw",))
    b = _node("model.p.b", "model", deps=("model.p.a",))
    raw = lambda c: ColumnRef("seed.p.raw", c)  # noqa: E731
    la = StatementLineage(("id", "v2", "source_id"), (
        ColumnEdge("id", raw("id"), Subtype.IDENTITY),
        ColumnEdge("v2", raw("v"), Subtype.TRANSFORMATION),
        ColumnEdge("source_id", raw("source_id"), Subtype.IDENTITY),
        ColumnEdge(None, raw("w"), Subtype.FILTER)))
    lb = StatementLineage(("id", "v3"), (
        ColumnEdge("id", ColumnRef("model.p.a", "id"), Subtype.IDENTITY),
        ColumnEdge("v3", ColumnRef("model.p.a", "v2"), Subtype.AGGREGATION),
        ColumnEdge(None, ColumnRef("model.p.a", "id"), Subtype.GROUP_BY)))
    before = ProjectLineage("p", "duckdb", "duckdb", (seed, a, b), (ModelLineage(a, la), ModelLineage(b, lb)))
    g = build_graph(before)
    answers_before = _queries(g)
    # the edit: a drops its provenance column and its filter, and gains a column from w
    la2 = StatementLineage(("id", "v2", "w2"), (
        ColumnEdge("id", raw("id"), Subtype.IDENTITY),
        ColumnEdge("v2", raw("v"), Subtype.TRANSFORMATION),
        ColumnEdge("w2", raw("w"), Subtype.TRANSFORMATION, masking=True),
        ColumnEdge(None, ColumnRef("db.main.elsewhere", "k"), Subtype.JOIN)))
    a2 = Node(**{**a.__dict__, "raw_sql": "changed"})
    after = ProjectLineage("p", "duckdb", "duckdb", (seed, a2, b), (ModelLineage(a2, la2), ModelLineage(b, lb)))
    g2 = g.with_models(after, {"model.p.a"})
    assert _queries(g2) == _queries(build_graph(after))
    assert g2.columns("model.p.a") == ("id", "v2", "w2")
    assert g2.node("db.main.elsewhere").resource_type == "external"
    assert _queries(g) == answers_before  # the old graph (a reader's snapshot) did not change


def _summary(graph, findings) -> tuple[dict, list]:
    lineage = {uid: (ml.lineage.columns, frozenset(ml.lineage.edges), ml.lineage.status)
               for uid, ml in graph.models.items()}
    found = sorted((f.model, f.rule, f.column or "", f.root or "", f.line or 0, f.message) for f in findings)
    return lineage, found


@pytest.mark.dbt
def test_an_edit_in_memory_equals_a_fresh_compile_and_check(compiled_pipeline: Path, tmp_path: Path) -> None:
    from lineage_tools.lsp.state import Workspace
    from lineage_tools.project import load_project
    from lineage_tools.provenance import check

    edited = tmp_path / "edited"
    shutil.copytree(compiled_pipeline, edited, ignore=shutil.ignore_patterns("*.duckdb", "*.wal"))
    rel = "models/intermediate/int_users_merged.sql"
    # the merged users lose their merge provenance: training_examples, downstream, reads a
    # column that is gone; the model itself keeps only its records' provenance
    text, _ = drop_provenance_of((edited / rel).read_text(encoding="utf-8"), "rolled_up", "merge_")
    # the ephemeral blocklist (inlined by dbt into int_users_despammed) drops the spam scores
    eph = "models/intermediate/int_spam_blocklist.sql"
    eph_text = (edited / eph).read_text(encoding="utf-8")
    eph_new = re.sub(r"\n\s*union all\n(?:(?!union all).)*from spam_scores\n", "\n", eph_text, count=1, flags=re.S)
    assert eph_new != eph_text and "from spam_scores" not in eph_new
    ws = Workspace(edited)
    ws.load()
    snaps = list(ws.edit(rel, text))
    assert snaps[0].changed == {ws.uid_of(rel)} and not snaps[-1].pending
    assert "model.provenance_pipeline.training_examples" in set().union(*(s.changed for s in snaps))
    despammed = "model.provenance_pipeline.int_users_despammed"
    marker = "'spam_score' as block_reason"
    assert marker in ws.snapshot.graph.models[despammed].node.compiled_sql
    snaps = list(ws.edit(eph, eph_new))
    mem = snaps[-1]
    # dbt inlines the ephemeral model into its consumer: the consumer is rendered again
    assert marker not in mem.graph.models[despammed].node.compiled_sql
    blocklist = mem.graph.models[ws.uid_of(eph)].lineage
    assert not any(e.source.relation.endswith("stg_spam_scores") for e in blocklist.edges)
    in_memory = _summary(mem.graph, [f for fs in mem.findings.values() for f in fs])

    fresh = tmp_path / "fresh"
    shutil.copytree(compiled_pipeline, fresh, ignore=shutil.ignore_patterns("*.duckdb", "*.wal", "target"))
    (fresh / rel).write_text(text, encoding="utf-8")
    (fresh / eph).write_text(eph_new, encoding="utf-8")
    run_dbt(fresh, "compile")
    graph = build_graph(load_project(fresh, fresh, compile=False, cache=False))
    assert in_memory == _summary(graph, check(graph).findings)
    assert in_memory[1], "the edit should leave findings"


@pytest.mark.dbt
def test_watch_prints_the_finding_of_a_saved_model(compiled_pipeline: Path, tmp_path: Path) -> None:
    project = tmp_path / "pipeline"
    shutil.copytree(compiled_pipeline, project, ignore=shutil.ignore_patterns("*.duckdb", "*.wal"))
    rel = "models/marts/training_examples.sql"
    proc = subprocess.Popen([LINEAGE_TOOLS, "watch", "--project-dir", str(project)], cwd=project,
                            env=dbt_env(project), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            bufsize=1)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while not any(ln.startswith("watching ") for ln in lines):
            assert time.monotonic() < deadline and proc.poll() is None, lines
            lines.append(proc.stdout.readline().rstrip("\n"))
        time.sleep(0.5)  # the watcher is armed
        broken, _ = drop_provenance_of((project / rel).read_text(encoding="utf-8"), "labels")
        (project / rel).write_text(broken, encoding="utf-8")
        want = re.compile(rf"^  {re.escape(rel)}:(\d+): error \[rule 3\] training_examples: the origin of ")
        while not any(want.match(ln) for ln in lines):
            assert time.monotonic() < deadline and proc.poll() is None, lines
            lines.append(proc.stdout.readline().rstrip("\n"))
        hit = next(want.match(ln) for ln in lines if want.match(ln))
        body = broken.splitlines()
        assert re.match(r"\s*is_job_seeker,", body[int(hit.group(1)) - 1]), hit.group(0)  # via joined
        assert any(ln.startswith("  lineage: training_examples: - column ") for ln in lines), lines
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
