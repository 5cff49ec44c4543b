"""`verify`: lineage checked by execution in a scratch in-memory DuckDB.

Library tests run real SQL on real DuckDB with real static lineage (`lineage.analyze`); the
command tests run the installed `lineage-tools verify` on real dbt projects (built or compiled).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conftest import copy_mini_project, run_cli, run_dbt
from lineage_tools.lineage import analyze
from lineage_tools.records import ColumnEdge, ColumnRef, RowEffect, RowInfluence, Subtype
from lineage_tools.sql import Catalog
from lineage_tools.verify import Scratch, compare, generate_rows, observe, verify_statement

T = "db.main.t"
COLS = [("k", "INTEGER"), ("a", "INTEGER"), ("b", "VARCHAR"), ("c", "DOUBLE")]


@pytest.fixture
def scratch():
    with Scratch() as s:
        s.add_rows(T, ("db", "main", "t"), COLS, generate_rows(COLS, 10, seed=3))
        yield s


def _static(sql: str):
    return analyze(sql, dialect="duckdb", catalog=Catalog("duckdb", {T: dict(COLS)}))


def _pairs(edges) -> set[tuple[str | None, str]]:
    return {(e.target, e.source.column) for e in edges}


def test_real_edges_are_confirmed_and_nothing_is_missing(scratch: Scratch) -> None:
    sql = "select k, upper(b) as b2, a + 1 as a1 from db.main.t where c > 0.5"
    res = _static(sql)
    check = verify_statement(scratch, sql, res.edges, [T], row_influences=res.row_influences)
    assert check.outcome == "verified" and not check.missing
    assert _pairs(check.confirmed) == {("k", "k"), ("b2", "b"), ("a1", "a"), (None, "c")}
    assert check.output_rows > 0 and check.input_rows == ((T, 10),)
    # 2 baseline runs + 4 columns x 2 perturbations
    assert check.runs == 10 and check.failed_runs == 0


def test_a_dropped_edge_is_a_false_negative(scratch: Scratch) -> None:
    sql = "select k, upper(b) as b2 from db.main.t where c > 0.5"
    res = _static(sql)
    without = [e for e in res.edges if not (e.target == "b2" and e.source.column == "b")]
    check = compare("m", "m", without, observe(scratch, sql, [T]))
    assert [(m.target, m.source) for m in check.missing] == [("b2", ColumnRef(T, "b"))]
    assert set(check.missing[0].perturbations) == {"replace", "rotate"}


def test_a_dropped_filter_edge_shows_as_a_row_count_change(scratch: Scratch) -> None:
    sql = "select k from db.main.t where c > 0.5"
    res = _static(sql)
    without = [e for e in res.edges if e.target is not None]
    check = compare("m", "m", without, observe(scratch, sql, [T]))
    assert (None, ColumnRef(T, "c")) in {(m.target, m.source) for m in check.missing}


def test_an_edge_that_never_matters_is_unexercised(scratch: Scratch) -> None:
    sql = "select k, b from db.main.t"
    res = _static(sql)
    extra = ColumnEdge("b", ColumnRef(T, "c"), Subtype.TRANSFORMATION)
    check = compare("m", "m", [*res.edges, extra], observe(scratch, sql, [T]))
    assert check.unexercised == (extra,) and not check.missing


def test_distinct_dependence_is_explained_by_the_row_effect(scratch: Scratch) -> None:
    # `select distinct a, b`: how many times a value of `a` appears depends on `b`
    sql = "select distinct a, b from db.main.t"
    res = _static(sql)
    assert RowInfluence(T, RowEffect.DISTINCT) in res.row_influences
    observed = observe(scratch, sql, [T])
    # the engine's dataset-wide GROUP_BY edges on the DISTINCT keys confirm it on their own
    assert not compare("m", "m", res.edges, observed, row_influences=()).missing
    # without them (lineage from a tool that has only field-level edges), the row effect explains it
    field_level = [e for e in res.edges if e.target is not None]
    check = compare("m", "m", field_level, observed, row_influences=res.row_influences)
    assert not check.missing
    no_effect = compare("m", "m", field_level, observed, row_influences=())
    assert no_effect.missing and {m.source.column for m in no_effect.missing} <= {"a", "b"}
    assert {(m.target, m.source) for m in check.by_row_effect} == {(m.target, m.source) for m in no_effect.missing}


def test_perturbation_is_undone_after_each_run(scratch: Scratch) -> None:
    before = scratch.run('select * from "db"."main"."t"').rows
    with scratch.perturbed(T, "b", "replace"):
        during = scratch.run('select * from "db"."main"."t"').rows
    assert during != before
    assert scratch.run('select * from "db"."main"."t"').rows == before


def test_sql_that_fails_is_an_error_not_a_crash(scratch: Scratch) -> None:
    check = verify_statement(scratch, "select nope from db.main.t", [], [T])
    assert check.outcome == "error" and "nope" in check.message


def test_unstable_output_columns_are_not_compared(scratch: Scratch) -> None:
    sql = "select k, random() as r from db.main.t"
    observed = observe(scratch, sql, [T])
    assert observed.unstable == ("r",)
    assert all(o.target != "r" for o in observed.observations)


# --------------------------------------------------------------------------------------------
# The command, on real dbt projects


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.dbt
def test_verify_finds_no_false_negative_on_the_built_pipeline(built_pipeline: Path) -> None:
    db = built_pipeline / "target" / "pipeline.duckdb"
    before = _sha(db)
    proc = run_cli("verify", "--project-dir", str(built_pipeline), "--format", "json", "--quiet", cwd=built_pipeline)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    doc = json.loads(proc.stdout)
    assert doc["summary"]["false_negatives"] == 0
    assert "read-only" in doc["inputs"] and "from warehouse" in doc["inputs"]
    outcomes = {m["name"]: m["outcome"] for m in doc["models"]}
    assert set(outcomes.values()) == {"verified"}, outcomes
    assert {"int_users_merged", "training_examples", "source_inventory"} <= set(outcomes)
    assert doc["summary"]["confirmed"] > 300
    assert _sha(db) == before  # never touches the real tables


@pytest.mark.dbt
def test_verify_generated_inputs_on_a_compiled_pipeline(compiled_pipeline: Path) -> None:
    proc = run_cli("verify", "--project-dir", str(compiled_pipeline), "--generated", "--select",
                   "+int_users_merged", "--rows", "80", "--format", "json", "--quiet", cwd=compiled_pipeline)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    doc = json.loads(proc.stdout)
    assert doc["inputs"].startswith("no warehouse")
    names = {m["name"] for m in doc["models"]}
    assert "int_users_merged" in names and "training_examples" not in names
    for m in doc["models"]:
        assert m["outcome"] == "verified" and m["false_negatives"] == []
        assert all(n <= 80 for n in m["input_rows"].values())


@pytest.mark.dbt
def test_a_false_negative_exits_1_and_names_the_edge(tmp_path: Path) -> None:
    """DuckDB COLUMNS(...) picks columns at run time: static lineage is PARTIAL and has no edges
    for them; execution sees the dependency."""
    project = copy_mini_project(tmp_path / "mini")
    (project / "models" / "marts" / "dynamic_columns.sql").write_text(
        "select user_id, columns('^(email|country)$') from {{ ref('stg_users') }}\n", encoding="utf-8")
    run_dbt(project, "compile")
    proc = run_cli("verify", "--project-dir", str(project), "--generated", "--select", "dynamic_columns",
                   cwd=project)
    assert proc.returncode == 1, proc.stderr + proc.stdout
    assert "FALSE NEGATIVE email <- stg_users.email" in proc.stdout, proc.stdout
    assert "static lineage is PARTIAL" in proc.stdout


@pytest.mark.dbt
def test_verify_skips_python_and_unparseable_models_and_follows_ephemerals(compiled_mini: Path) -> None:
    proc = run_cli("verify", "--project-dir", str(compiled_mini), "--generated", "--format", "json", "--quiet",
                   cwd=compiled_mini)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    models = {m["name"]: m for m in json.loads(proc.stdout)["models"]}
    assert models["user_scores"]["outcome"] == "skipped" and "python" in models["user_scores"]["message"]
    assert models["broken_report"]["outcome"] == "skipped"
    # int_user_events reads the ephemeral stg_events, inlined: edges are checked against the source
    ie = models["int_user_events"]
    assert ie["outcome"] == "verified" and not ie["false_negatives"]
    assert any(e["source"] == "source.mini.raw.events" for e in ie["confirmed"])


@pytest.mark.dbt
def test_verify_bad_options_exit_2(compiled_mini: Path) -> None:
    proc = run_cli("verify", "--project-dir", str(compiled_mini), "--rows", "0", cwd=compiled_mini)
    assert proc.returncode == 2 and "--rows 0" in proc.stderr
    proc = run_cli("verify", "--project-dir", str(compiled_mini), "--warehouse", "nope.duckdb", cwd=compiled_mini)
    assert proc.returncode == 2 and "no such file" in proc.stderr
