"""The project layer on real dbt artifacts: the mini fixture project compiled (and built) by dbt."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from conftest import copy_mini_project, run_dbt
from lineage_tools import project as P
from lineage_tools.errors import DialectError, ManifestError, ProjectError
from lineage_tools.records import ColumnRef, ReasonCode, RowEffect, Status

pytestmark = pytest.mark.dbt


def edges(ml, target=...):
    """{(target, 'node.column', SUBTYPE, incremental_only)} of a model's lineage."""
    return {
        (e.target, e.source.qualified, e.subtype.value, e.incremental_only)
        for e in ml.lineage.edges
        if target is ... or e.target == target
    }


@pytest.fixture(scope="module")
def mini(compiled_mini: Path):
    return P.load_project(compiled_mini)


def by_name(project, name):
    return next(m for m in project.models if m.node.name == name)


def test_nodes_come_in_dag_order_with_seed_and_source_columns(mini):
    order = [n.unique_id for n in mini.nodes]
    for n in mini.nodes:
        for dep in n.depends_on:
            assert order.index(dep) < order.index(n.unique_id), (dep, n.unique_id)
    nodes = {n.unique_id: n for n in mini.nodes}
    assert nodes["seed.mini.raw_users"].columns == (
        ("user_id", "integer"), ("email", None), ("signup_date", "date"), ("source_id", None))
    assert nodes["source.mini.raw.events"].columns[0] == ("event_id", "integer")
    assert nodes["source.mini.raw.events"].source_name == "raw"
    assert mini.registry == "seed.mini.data_sources"
    assert mini.adapter_type == "duckdb" and mini.dialect == "duckdb"


def test_staging_model_lineage_maps_relations_to_unique_ids(mini):
    stg = by_name(mini, "stg_users")
    assert stg.status == Status.FULL
    assert stg.lineage.columns == ("user_id", "email", "signup_date", "source_id")
    assert ("email", "seed.mini.raw_users.email", "TRANSFORMATION", False) in edges(stg)
    assert ("source_id", "seed.mini.raw_users.source_id", "IDENTITY", False) in edges(stg)
    # the registry is only read to filter: dataset-wide INDIRECT edges, no values
    assert (None, "seed.mini.data_sources.status", "FILTER", False) in edges(stg)
    assert all(e.source.relation.startswith(("seed.", "model.", "source.")) for e in stg.lineage.edges)


def test_lineage_goes_through_the_ephemeral_model_as_a_node(mini):
    eph = by_name(mini, "stg_events")
    assert eph.node.materialized == "ephemeral"
    assert ("event_id", "source.mini.raw.events.event_id", "IDENTITY", False) in edges(eph)
    inc = by_name(mini, "int_user_events")
    assert ("source_id", "model.mini.stg_events.source_id", "IDENTITY", False) in edges(inc)
    assert not any(e.source.relation == "source.mini.raw.events" for e in inc.lineage.edges)


def test_incremental_model_flags_lineage_of_its_incremental_branch(mini):
    inc = by_name(mini, "int_user_events")
    assert inc.status == Status.FULL
    flagged = {e for e in edges(inc) if e[3]}
    assert flagged == {
        (None, "model.mini.int_user_events.occurred_at", "FILTER", True),
        (None, "model.mini.stg_events.occurred_at", "FILTER", True),
    }
    assert [r.code for r in inc.lineage.reasons] == [ReasonCode.INCREMENTAL_ONLY]
    # the full-refresh lineage itself is unflagged
    assert (None, "model.mini.stg_users.user_id", "JOIN", False) in edges(inc)


def test_snapshot_gets_its_select_lineage_and_dbt_columns(mini):
    snap = next(m for m in mini.models if m.node.resource_type == "snapshot")
    assert snap.lineage.columns == ("user_id", "email", "source_id", "dbt_scd_id", "dbt_updated_at",
                                    "dbt_valid_from", "dbt_valid_to")
    assert ("email", "model.mini.stg_users.email", "IDENTITY", False) in edges(snap)
    scd = [e for e in snap.lineage.edges if e.target == "dbt_scd_id"]
    assert [(e.source.qualified, e.masking) for e in scd] == [("model.mini.stg_users.user_id", True)]


def test_python_model_is_partial_with_yaml_columns(mini):
    py = by_name(mini, "user_scores")
    assert py.status == Status.PARTIAL
    assert py.lineage.columns == ("user_id", "score", "source_id")
    assert [r.code for r in py.lineage.reasons] == [ReasonCode.PYTHON_MODEL]


def test_unparseable_model_fails_with_its_file_line_and_others_still_get_lineage(mini):
    broken = by_name(mini, "broken_report")
    assert broken.status == Status.FAILED
    (reason,) = broken.lineage.reasons
    assert reason.code == ReasonCode.PARSE_ERROR
    assert reason.line == 6  # models/marts/broken_report.sql:6, the unclosed parenthesis
    assert "(" in broken.node.raw_sql.splitlines()[reason.line - 1]
    assert by_name(mini, "user_activity").status == Status.FULL


def test_aggregate_model(mini):
    ua = by_name(mini, "user_activity")
    assert ("source_ids", "model.mini.int_user_events.source_id", "AGGREGATION", False) in edges(ua)
    assert (None, "model.mini.int_user_events.user_id", "GROUP_BY", False) in edges(ua)
    assert any(r.relation == "model.mini.int_user_events" and r.effect == RowEffect.AGGREGATE
               for r in ua.lineage.row_influences)


def test_column_lines_point_into_the_model_file(mini):
    ua = by_name(mini, "user_activity")
    raw = ua.node.raw_sql.splitlines()
    lines = dict(ua.lineage.column_lines)
    assert "as source_ids" in raw[lines["source_ids"] - 1]
    assert "count(*) as n_events" in raw[lines["n_events"] - 1]
    stg = by_name(mini, "stg_users")
    assert "lower(email) as email" in stg.node.raw_sql.splitlines()[dict(stg.lineage.column_lines)["email"] - 1]


def test_compile_alone_equals_build(compiled_mini: Path, tmp_path: Path):
    """Lineage after `dbt compile` equals lineage after `dbt build` (run twice: the second run
    compiles the incremental model's incremental branch into the manifest)."""
    built = copy_mini_project(tmp_path / "built")
    run_dbt(built, "build", "--exclude", "broken_report")
    run_dbt(built, "build", "--exclude", "broken_report")
    run_dbt(built, "compile")  # the manifest of `build --exclude` lacks broken_report's SQL
    a = P.load_project(compiled_mini)
    b = P.load_project(built)
    assert [(m.node.unique_id, m.lineage) for m in a.models] == [(m.node.unique_id, m.lineage) for m in b.models]


def test_missing_manifest_is_compiled_in_process(mini_copy: Path, caplog):
    assert not (mini_copy / "target" / "manifest.json").exists()
    caplog.set_level("INFO")
    proj = P.load_project(mini_copy)
    assert (mini_copy / "target" / "manifest.json").exists()
    assert "manifest.json is missing; compiling with dbt" in caplog.text
    assert by_name(proj, "stg_users").status == Status.FULL


def test_stale_manifest_is_recompiled(compiled_mini: Path, tmp_path: Path, caplog):
    proj = copy_mini_project(tmp_path / "mini")
    (proj / "target").mkdir(exist_ok=True)
    for f in ("manifest.json",):
        (proj / "target" / f).write_bytes((compiled_mini / "target" / f).read_bytes())
    cfg = P.project_config(proj)
    manifest = P.read_manifest(cfg.manifest_path)
    assert P.manifest_problem(cfg, manifest) is None
    model = proj / "models" / "marts" / "user_activity.sql"
    model.write_text(model.read_text().replace("max(occurred_at) as last_seen_at", "min(occurred_at) as first_seen_at"))
    future = time.time() + 5
    os.utime(model, (future, future))
    assert "user_activity.sql is newer than" in P.manifest_problem(cfg, manifest)
    caplog.set_level("INFO")
    fresh = P.load_project(proj)
    assert "first_seen_at" in by_name(fresh, "user_activity").lineage.columns
    assert "compiling with dbt" in caplog.text


def test_manifest_without_compiled_sql_or_from_build_empty_is_recompiled(compiled_mini: Path, tmp_path: Path):
    proj = copy_mini_project(tmp_path / "mini")
    cfg = P.project_config(proj)
    manifest = json.loads((compiled_mini / "target" / "manifest.json").read_text())
    parsed = json.loads(json.dumps(manifest))
    for n in parsed["nodes"].values():
        n.pop("compiled_code", None)
    assert "has no compiled SQL" in P.manifest_problem(_with_manifest(cfg, parsed), parsed)
    run_dbt(proj, "build", "--empty", "--exclude", "broken_report", "user_scores")
    empty = P.read_manifest(cfg.manifest_path)
    assert "dbt build --empty" in P.manifest_problem(cfg, empty)
    lineage = P.load_project(proj)
    assert not P.looks_empty_compiled(by_name(lineage, "user_activity").node.compiled_sql)
    assert by_name(lineage, "user_activity").status == Status.FULL


def _with_manifest(cfg: P.ProjectConfig, manifest: dict) -> P.ProjectConfig:
    cfg.manifest_path.parent.mkdir(parents=True, exist_ok=True)
    cfg.manifest_path.write_text(json.dumps(manifest))
    return cfg


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not JSON or truncated"),
        ('{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json"}, "nod', "not JSON or truncated"),
        ('{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v11.json"}, "nodes": {}}', "v11.json is not supported"),
        ("[]", "not a dbt manifest"),
    ],
)
def test_bad_manifest_is_a_one_line_manifest_error_naming_the_file(tmp_path: Path, content: str, message: str):
    path = tmp_path / "manifest.json"
    path.write_text(content)
    with pytest.raises(ManifestError) as info:
        P.read_manifest(path)
    assert message in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_no_way_to_compile_is_a_manifest_error(mini_copy: Path):
    with pytest.raises(ManifestError, match="manifest.json is missing"):
        P.load_project(mini_copy, compile=False)
    (mini_copy / "profiles.yml").write_text("other_profile:\n  target: dev\n  outputs: {}\n")
    with pytest.raises(ManifestError, match="dbt compile failed"):
        P.load_project(mini_copy, profiles_dir=mini_copy)


def test_not_a_dbt_project(tmp_path: Path):
    with pytest.raises(ProjectError, match="no dbt_project.yml"):
        P.load_project(tmp_path)


def test_profiles_dir_follows_dbt(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)
    assert P.resolve_profiles_dir(tmp_path) == Path.home() / ".dbt"
    (tmp_path / "profiles.yml").write_text("x: {}\n")
    assert P.resolve_profiles_dir(tmp_path) == tmp_path
    monkeypatch.setenv("DBT_PROFILES_DIR", "/somewhere")
    assert P.resolve_profiles_dir(tmp_path) == Path("/somewhere")
    assert P.resolve_profiles_dir(tmp_path, tmp_path / "p") == (tmp_path / "p").resolve()


def test_adapter_dialects():
    assert P.dialect_for_adapter("duckdb") == "duckdb"
    assert P.dialect_for_adapter("spark") == "spark"
    assert P.dialect_for_adapter("databricks") == "databricks"
    assert P.dialect_for_adapter("postgres") == "postgres"
    assert P.dialect_for_adapter("snowflake") == "snowflake"
    assert P.dialect_for_adapter("bigquery") == "bigquery"
    assert P.dialect_for_adapter("trino") == "trino"
    with pytest.raises(DialectError):
        P.dialect_for_adapter("nosuchwarehouse")


def test_catalog_json_gives_columns_of_sources_without_yaml(compiled_mini: Path, tmp_path: Path):
    proj = copy_mini_project(tmp_path / "mini")
    sources = proj / "models" / "staging" / "sources.yml"
    sources.write_text("version: 2\nsources:\n  - name: raw\n    schema: raw\n    tables:\n      - name: events\n")
    without = P.load_project(proj)
    assert by_name(without, "stg_events").status != Status.FULL or not by_name(without, "stg_events").lineage.edges
    cfg = P.project_config(proj)
    catalog = {"nodes": {}, "sources": {"source.mini.raw.events": {"columns": {
        c: {"name": c, "type": t, "index": i}
        for i, (c, t) in enumerate([("event_id", "INTEGER"), ("user_id", "INTEGER"), ("event_type", "VARCHAR"),
                                    ("occurred_at", "TIMESTAMP"), ("source_id", "INTEGER")], 1)}}}}
    cfg.catalog_path.write_text(json.dumps(catalog))
    with_catalog = P.load_project(proj)
    eph = by_name(with_catalog, "stg_events")
    assert eph.status == Status.FULL
    assert ("source_id", "source.mini.raw.events.source_id", "IDENTITY", False) in edges(eph)


def test_time_budget_is_passed_to_the_engine(compiled_mini: Path):
    proj = P.load_project(compiled_mini, time_budget=1e-9, cache=False)
    timed_out = [m for m in proj.models if any(r.code == ReasonCode.TIME_BUDGET for r in m.lineage.reasons)]
    assert timed_out, [(m.node.name, m.status) for m in proj.models]
    assert all(m.status != Status.FULL for m in timed_out)


def test_analyze_node_is_the_single_per_model_entry(compiled_mini: Path):
    """A wrapper (e.g. a cache) around analyze_node sees every model and snapshot exactly once."""
    seen: list[str] = []

    def counting(node, catalog, dialect, **kw):
        seen.append(node.unique_id)
        return P.analyze_node(node, catalog, dialect, **kw)

    proj = P.load_project(compiled_mini, analyze=counting, cache=False)
    assert sorted(seen) == sorted(m.node.unique_id for m in proj.models)
    assert ColumnRef("model.mini.stg_users", "email") in {
        ColumnRef(m.node.unique_id, c) for m in proj.models for c in m.lineage.columns}
