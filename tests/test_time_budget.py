"""Time bounded everywhere: `--time-budget` on every command that analyses SQL, enforced even
inside sqlglot's parser and qualify() (a statement of 16 KB or more is analysed in a child process
killed at the deadline), the statement or model PARTIAL with reason `time_budget_exceeded`, the
rest unaffected; a default budget so that one pathological model cannot stall CI.

Before: `sql` had no budget (a 1.4 MB WHERE clause was still running after 300 s), a 6,000-term
model took 14 s under a 2 s budget, and check, impact and verify had no `--time-budget`.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from conftest import run_cli

# the message only the hard deadline gives: the child was stopped before it could answer
STOPPED = "was parsed and qualified: stopped"


def _where_clause(path: Path) -> Path:
    """One SELECT whose WHERE clause is 1.4 MB of OR-ed conditions (3.7 s just to parse)."""
    terms = " or ".join(f"(a = {i} and b like 'x{i}%')" for i in range(40_000))
    path.write_text(f"select a, b\nfrom t\nwhere {terms}\n", encoding="utf-8")
    assert path.stat().st_size > 1_400_000
    return path


def _sum_of(terms: int) -> str:
    return " + ".join(f"c{i % 50}" for i in range(terms))


def test_sql_stops_a_huge_statement_at_its_budget(tmp_path: Path) -> None:
    sql = _where_clause(tmp_path / "huge.sql")
    started = time.monotonic()
    proc = run_cli("sql", str(sql), "--time-budget", "5", "--format", "json")
    wall = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "PARTIAL"
    (st,) = doc["statements"]
    assert [r["code"] for r in st["reasons"]] == ["time_budget_exceeded"]
    assert "time budget of 5s" in st["reasons"][0]["message"] and STOPPED in st["reasons"][0]["message"]
    # the target is 10 s wall (see benchmarks/README.md); this bound only catches a
    # budget that is not enforced at all (the statement ran for more than 300 s)
    assert wall < 60, wall


def test_sql_has_a_default_budget_and_zero_means_no_limit(tmp_path: Path) -> None:
    help_text = run_cli("sql", "--help").stdout
    assert "--time-budget" in help_text and "60" in help_text
    small = tmp_path / "small.sql"
    small.write_text(f"select {_sum_of(300)} as s from t\n", encoding="utf-8")
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"t": [f"c{i}" for i in range(50)]}), encoding="utf-8")
    proc = run_cli("sql", str(small), "--schema", str(schema), "--time-budget", "0", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "FULL"
    proc = run_cli("sql", str(small), "--time-budget", "-1")
    assert proc.returncode == 2 and "--time-budget" in proc.stderr


def test_statements_after_a_stopped_one_are_still_traced(tmp_path: Path) -> None:
    script = tmp_path / "script.sql"
    script.write_text(f"create table big as select {_sum_of(6_000)} as s from t;\n"
                      "select a, b from u;\n", encoding="utf-8")
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"t": [f"c{i}" for i in range(50)], "u": ["a", "b"]}), encoding="utf-8")
    proc = run_cli("sql", str(script), "--schema", str(schema), "--time-budget", "1", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    first, second = json.loads(proc.stdout)["statements"]
    assert first["kind"] == "create" and first["status"] == "PARTIAL"
    assert STOPPED in first["reasons"][0]["message"]
    assert second["status"] == "FULL" and second["columns"] == ["a", "b"]


@pytest.mark.parametrize("command", ["sql", "export", "trace", "report", "diff", "check", "impact",
                                     "quarantine", "release", "verify"])
def test_every_command_that_analyses_sql_takes_a_budget(command: str) -> None:
    assert "--time-budget" in run_cli(command, "--help").stdout


@pytest.mark.dbt
def test_a_pathological_model_is_stopped_and_the_project_goes_on(compiled_mini: Path, tmp_path: Path) -> None:
    project = tmp_path / "mini"
    shutil.copytree(compiled_mini, project)
    (project / "models" / "marts" / "big_sum.sql").write_text(
        "select user_id, " + " + ".join(["user_id"] * 6_000) + " as s\nfrom {{ ref('stg_users') }}\n",
        encoding="utf-8")
    proc = run_cli("check", "--select", "big_sum", "--time-budget", "2", "--format", "json",
                   "--project-dir", str(project), cwd=project)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (finding,) = [f for f in json.loads(proc.stdout)["findings"] if f["severity"] == "error"]
    assert finding["model"] == "big_sum" and finding["rule"] == "lineage"
    assert "time_budget_exceeded" in finding["message"] and STOPPED in finding["message"]

    proc = run_cli("export", "--format", "json", "--time-budget", "2", "--project-dir", str(project), cwd=project)
    assert proc.returncode == 0, proc.stderr
    nodes = {n["name"]: n for n in json.loads(proc.stdout)["nodes"]}
    assert nodes["big_sum"]["status"] == "PARTIAL"
    others = [n for name, n in nodes.items() if n.get("type") == "model" and name != "big_sum"]
    assert others and not any(r["code"] == "time_budget_exceeded" for n in others for r in n.get("reasons", []))
