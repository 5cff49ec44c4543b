"""A model whose lineage FAILED is not a model without columns: `diff` and `impact` say
"lineage FAILED (reason, line)" instead of reporting its columns removed or its provenance
unknown for no stated reason. Real records, no dbt (the dbt path is in test_check.py)."""

from __future__ import annotations

from lineage_tools.diff import diff_lineage
from lineage_tools.graph import LineageGraph, lineage_failure
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
from lineage_tools.render.diff import render_text

SEED = Node("seed.p.raw", "raw", "seed", "db.main.raw", "db", "main", "raw",
            columns=(("id", None), ("v", None), ("source_id", None)))
MODEL = Node("model.p.m", "m", "model", "db.main.m", "db", "main", "m", original_file_path="models/m.sql",
             depends_on=("seed.p.raw",))
GOOD = StatementLineage(("id", "v", "source_id"), tuple(
    ColumnEdge(c, ColumnRef("seed.p.raw", c), Subtype.IDENTITY) for c in ("id", "v", "source_id")))
BAD = StatementLineage((), (), status=Status.FAILED,
                       reasons=(Reason(ReasonCode.PARSE_ERROR, "Expecting ). Line 9, Col: 30.", 9),))


def project(lineage: StatementLineage) -> ProjectLineage:
    return ProjectLineage("p", "duckdb", "duckdb", (SEED, MODEL), (ModelLineage(MODEL, lineage),))


def test_lineage_failure_names_the_reason_and_line() -> None:
    assert lineage_failure(ModelLineage(MODEL, BAD)) == "lineage FAILED (parse_error, line 9): Expecting ). Line 9, Col: 30."
    assert lineage_failure(ModelLineage(MODEL, GOOD)) is None


def test_diff_does_not_read_a_parse_failure_as_removed_columns() -> None:
    d = diff_lineage(project(GOOD), project(BAD))
    (m,) = d.models
    assert m.failure.startswith("lineage FAILED (parse_error, line 9)")
    assert m.columns_removed == () and m.columns == ()
    text = render_text(d)
    assert "lineage FAILED (parse_error, line 9)" in text
    assert "removed" not in text.replace("0 removed", "")


def test_a_column_of_a_failed_model_can_be_traced() -> None:
    graph = LineageGraph(project(BAD))
    col = graph.column("m.is_job_seeker")  # not "m has no column": its columns are unknown
    assert col == ColumnRef("model.p.m", "is_job_seeker")
    assert graph.failure("model.p.m").startswith("lineage FAILED (parse_error, line 9)")


def test_impact_names_the_failure_as_the_reason_to_rebuild() -> None:
    from lineage_tools.provenance import Provenance, _modes

    prov = Provenance(LineageGraph(project(BAD)))
    modes = _modes(prov, {"model.p.m": {"seed.p.raw"}}, ["model.p.m"])
    mode, reason = modes["model.p.m"]
    assert mode == "rebuild"
    assert "lineage FAILED (parse_error, line 9)" in reason
