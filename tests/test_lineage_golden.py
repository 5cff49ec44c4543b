"""Golden cases: one YAML file per SQL construct under tests/golden/, each with hand-written
expected edges, row influences, status and reasons. `analyze` must give exactly those.

Edge notation: ``"<target> <- <relation>.<column> <SUBTYPE>[ masked]"``, target ``*`` for a
dataset-wide edge. Row influence notation: ``"<relation> <EFFECT>"``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lineage_tools.lineage import analyze
from lineage_tools.records import StatementLineage
from lineage_tools.sql import Catalog

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).resolve().parents[1]
CASES = sorted(p for p in GOLDEN.glob("*.yaml") if not p.name.startswith("_"))


def load_case(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def build_catalog(case: dict) -> Catalog:
    """The default catalog (complete column lists, as dbt models and seeds have), plus the
    case's `catalog:`; relations listed under `partial:` have partial column lists (a source
    whose YAML names some of its columns)."""
    dialect = case.get("dialect", "duckdb")
    tables = dict(yaml.safe_load((GOLDEN / "_catalog.yaml").read_text()))
    if case.get("replace_catalog"):
        tables = {}
    tables.update(case.get("catalog") or {})
    catalog = Catalog(dialect, tables)
    for relation in case.get("partial") or []:
        columns = tables[relation]
        pairs = list(columns.items()) if isinstance(columns, dict) else [(c, None) for c in columns]
        catalog.add(relation, pairs, complete=False)
    return catalog


def run_case(case: dict) -> StatementLineage:
    return analyze(
        case["sql"],
        dialect=case.get("dialect", "duckdb"),
        catalog=build_catalog(case),
        opaque_ctes=case.get("opaque_ctes"),
        time_budget=case.get("time_budget"),
    )


def edge_strings(result: StatementLineage) -> set[str]:
    return {
        f"{e.target or '*'} <- {e.source.qualified} {e.subtype.value}" + (" masked" if e.masking else "")
        for e in result.edges
    }


def row_strings(result: StatementLineage) -> set[str]:
    return {f"{r.relation} {r.effect.name}" for r in result.row_influences}


def test_golden_cases_exist():
    assert len(CASES) >= 30, "the golden suite lost cases"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden(path: Path):
    case = load_case(path)
    expect = case["expect"]
    result = run_case(case)
    assert result.status.value == expect["status"], result.reasons
    assert {r.code.value for r in result.reasons} == set(expect.get("reasons") or [])
    if "columns" in expect:
        assert list(result.columns) == expect["columns"]
    assert edge_strings(result) == set(expect.get("edges") or [])
    assert row_strings(result) == set(expect.get("row_influences") or [])
    if "target" in expect:
        assert result.target == expect["target"]
    if "column_lines" in expect:
        assert dict(result.column_lines) == expect["column_lines"]
    if "reason_lines" in expect:
        assert {r.code.value: r.line for r in result.reasons} == expect["reason_lines"]
    if "reason_messages" in expect:
        assert [r.message for r in result.reasons] == expect["reason_messages"]


def test_support_matrix_is_up_to_date():
    """docs/support-matrix.md is generated from the golden cases: regenerate it when they change."""
    script = ROOT / "scripts" / "support_matrix.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_truncated_sql_never_raises(path: Path):
    """Cut anywhere, a golden statement gives a result (FAILED / PARTIAL / FULL), never an error."""
    case = load_case(path)
    sql = case["sql"]
    catalog = build_catalog(case)
    step = max(1, len(sql) // 12)
    for end in range(1, len(sql), step):
        result = analyze(sql[:end], dialect=case.get("dialect", "duckdb"), catalog=catalog,
                         opaque_ctes=case.get("opaque_ctes"))
        assert result.status.value in ("FULL", "PARTIAL", "FAILED")
        if result.status.value == "FAILED":
            assert result.reasons and not result.edges


def test_time_budget_keeps_the_columns_already_traced(monkeypatch):
    """When the budget runs out part-way through the output columns, those done keep their edges."""
    from lineage_tools import lineage as engine

    checks = {"n": 0}

    def check_time(self):  # the budget runs out at the walk's 4th clock check
        checks["n"] += 1
        if checks["n"] > 3:
            raise engine._TimeBudget

    monkeypatch.setattr(engine._Walker, "check_time", check_time)
    catalog = Catalog("duckdb", {"t": ["a", "b", "c"]})
    result = analyze("select a, upper(b) as b, c from t", dialect="duckdb", catalog=catalog,
                     time_budget=60)
    assert result.status.value == "PARTIAL"
    assert [r.code.value for r in result.reasons] == ["time_budget_exceeded"]
    assert result.columns == ("a", "b", "c")
    assert edge_strings(result) == {"a <- t.a IDENTITY", "b <- t.b TRANSFORMATION"}
