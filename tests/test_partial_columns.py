"""Keep every edge the SQL states: a column missing from a partial column list (a source whose
YAML names some of its columns) keeps its edge, PARTIAL with `unknown_column` (a warning for
`check`); a column missing from a complete list (a seed's CSV header, a model's output,
catalog.json) does not exist: `unresolved_column`, a `check` error naming close names.
Real nodes through `project.analyze_project` and the real engine; no dbt needed."""

from __future__ import annotations

from lineage_tools.graph import LineageGraph
from lineage_tools.project import analyze_project
from lineage_tools.provenance import check
from lineage_tools.records import ColumnRef, Node, ReasonCode, Status

SOURCE = Node("source.p.raw.events", "events", "source", "db.raw.events", "db", "raw", "events",
              columns=(("event_id", "integer"), ("source_id", "varchar")), source_name="raw")
SEED = Node("seed.p.users", "users", "seed", "db.main.users", "db", "main", "users",
            columns=(("user_id", None), ("name", None), ("source_id", None)))


def model(name: str, sql: str, *deps: str) -> Node:
    return Node(f"model.p.{name}", name, "model", f"db.main.{name}", "db", "main", name,
                original_file_path=f"models/{name}.sql", compiled_sql=sql, raw_sql=sql,
                depends_on=deps)


STG = model("stg_events", "select event_id, kind, upper(payload) as payload_up, source_id\n"
                          "from db.raw.events\nwhere channel = 'web'", SOURCE.unique_id)
USERS = model("stg_users", "select user_id, nickname, source_id\nfrom db.main.users", SEED.unique_id)
STAR = model("stg_all", "select * from db.raw.events", SOURCE.unique_id)
DOWN = model("events_by_kind", "select kind, count(*) as n, list(source_id) as source_ids\n"
                               "from db.main.stg_all group by kind", STAR.unique_id)


def analyze(*models: Node, catalog_json: dict | None = None):
    return analyze_project((SOURCE, SEED, *models), project_name="p", adapter_type="duckdb",
                           dialect="duckdb", catalog_json=catalog_json)


def test_a_column_a_source_yaml_leaves_out_keeps_its_edge() -> None:
    project = analyze(STG)
    (ml,) = project.models
    assert ml.status == Status.PARTIAL
    assert {r.code for r in ml.lineage.reasons} == {ReasonCode.UNKNOWN_COLUMN}
    edges = {(e.target, e.source.column, e.subtype.value) for e in ml.lineage.edges}
    assert ("kind", "kind", "IDENTITY") in edges
    assert ("payload_up", "payload", "TRANSFORMATION") in edges
    assert (None, "channel", "FILTER") in edges
    findings = check(LineageGraph(project)).findings
    assert [f.severity for f in findings] == ["warning"]
    assert "traced as written" in findings[0].message


def test_a_column_a_complete_relation_lacks_is_a_check_error_with_did_you_mean() -> None:
    project = analyze(USERS)
    (ml,) = project.models
    (reason,) = ml.lineage.reasons
    assert reason.code is ReasonCode.UNRESOLVED_COLUMN
    assert reason.line == 1
    (finding,) = check(LineageGraph(project)).errors
    assert finding.column == "nickname" and finding.line == 1 and finding.path == "models/stg_users.sql"
    assert "not a column of db.main.users (did you mean: name?)" in finding.message


def test_catalog_json_makes_a_source_complete() -> None:
    catalog_json = {"sources": {SOURCE.unique_id: {"columns": {
        "event_id": {"name": "event_id", "index": 1, "type": "INTEGER"},
        "kind": {"name": "kind", "index": 2, "type": "VARCHAR"},
        "source_id": {"name": "source_id", "index": 3, "type": "VARCHAR"}}}}}
    project = analyze(STG, catalog_json=catalog_json)
    (ml,) = project.models
    codes = {r.column: r.code for r in ml.lineage.reasons}
    assert codes == {"payload": ReasonCode.UNRESOLVED_COLUMN, "channel": ReasonCode.UNRESOLVED_COLUMN}
    assert {f.column for f in check(LineageGraph(project)).errors} == {"payload", "channel"}


def test_a_star_over_a_partial_list_leaves_the_model_open_downstream() -> None:
    """`select *` from a source whose YAML lists two columns gives those two, and says the
    output may have more; a downstream model reading another column through it keeps its edge."""
    project = analyze(STAR, DOWN)
    star, down = project.models
    assert star.lineage.columns == ("event_id", "source_id")
    assert [r.code for r in star.lineage.reasons] == [ReasonCode.UNEXPANDED_STAR]
    assert down.status == Status.PARTIAL
    assert [r.code for r in down.lineage.reasons] == [ReasonCode.UNKNOWN_COLUMN]
    graph = LineageGraph(project)
    assert {e.source for e in graph.upstream_edges(ColumnRef(DOWN.unique_id, "kind"))} == {
        ColumnRef(STAR.unique_id, "kind")}
    assert not check(LineageGraph(project)).errors
