"""The catalogue of bad inputs (docs/trust.md): each is fed to the installed command, and the
test asserts what a user sees: the message and the exit code (0 ok, 1 findings, 2 bad input).

Items already tested elsewhere are referenced in docs/trust.md, not repeated here:
non-UTF-8 SQL file for `sql` (test_cli_sql.py::test_not_utf8_file), unknown `--dialect`
(test_cli_sql.py::test_unknown_dialect), quarantine killed mid-rebuild
(test_quarantine.py::test_killed_quarantine_can_be_run_again), library-level manifest errors
(test_project.py::test_bad_manifest_is_a_one_line_manifest_error_naming_the_file).
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import LINEAGE_TOOLS, dbt_env, run_cli

MANIFEST_V12 = "https://schemas.getdbt.com/dbt/manifest/v12.json"


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("logs", "*.tmp", "lineage_cache", "lineage_tools"))
    return dest


def _one_line_error(proc: subprocess.CompletedProcess, *words: str) -> str:
    """The last stderr line is the error; it names what is at fault."""
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), proc.stderr
    for w in words:
        assert w in last, (w, last)
    return last


def _graph(proc: subprocess.CompletedProcess) -> dict[str, dict]:
    assert proc.returncode == 0, proc.stderr
    return {n["name"]: n for n in json.loads(proc.stdout)["nodes"]}


# ---- manifest ------------------------------------------------------------------------------

BAD_MANIFESTS = {
    "not_json": ("this is not json {", "not JSON or truncated"),
    "truncated": ('{"metadata": {"dbt_schema_version": "' + MANIFEST_V12 + '", "adapter_type": "duckdb"}, "nod',
                  "not JSON or truncated"),
    "other_schema_version": (json.dumps({"metadata": {"dbt_schema_version":
                                                      "https://schemas.getdbt.com/dbt/manifest/v9.json"},
                                         "nodes": {}}), "v9.json is not supported"),
}


@pytest.mark.dbt
@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_bad_manifest_exits_2_naming_the_file(compiled_mini: Path, tmp_path: Path, case: str) -> None:
    """A manifest this tool cannot rebuild (diff's base: never compiled) is an error naming it."""
    content, message = BAD_MANIFESTS[case]
    project = _copy(compiled_mini, tmp_path / "mini")
    manifest = tmp_path / "base" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text(content, encoding="utf-8")
    proc = run_cli("diff", "--base", str(manifest), "--project-dir", str(project), cwd=project)
    assert proc.returncode == 2 and proc.stdout == ""
    _one_line_error(proc, str(manifest), message)
    assert "Traceback" not in proc.stderr


@pytest.mark.dbt
def test_commands_recompile_over_an_unreadable_manifest(compiled_mini: Path, tmp_path: Path) -> None:
    """Every command reads the project through one loader: an unreadable manifest in target/ is
    compiled again by dbt (saying why), whatever the command."""
    project = _copy(compiled_mini, tmp_path / "mini")
    for command in ("check", "export"):
        (project / "target" / "manifest.json").write_text(BAD_MANIFESTS["truncated"][0], encoding="utf-8")
        proc = run_cli(command, "--project-dir", str(project), cwd=project)
        assert proc.returncode in (0, 1), proc.stderr
        assert "not JSON or truncated" in proc.stderr and "compiling with dbt" in proc.stderr
        json.loads((project / "target" / "manifest.json").read_text(encoding="utf-8"))  # whole again


@pytest.mark.dbt
def test_manifest_without_compiled_sql_is_compiled_first(compiled_mini: Path, tmp_path: Path) -> None:
    project = _copy(compiled_mini, tmp_path / "mini")
    manifest = project / "target" / "manifest.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    for node in data["nodes"].values():
        node.pop("compiled_code", None)
    manifest.write_text(json.dumps(data), encoding="utf-8")
    proc = run_cli("export", "--project-dir", str(project), "--format", "json", cwd=project)
    nodes = _graph(proc)
    assert "has no compiled SQL" in proc.stderr and "compiling with dbt" in proc.stderr
    assert nodes["user_activity"]["status"] == "FULL"


@pytest.mark.dbt
def test_unknown_adapter_dialect_exits_2(compiled_mini: Path, tmp_path: Path) -> None:
    """A manifest of an adapter sqlglot has no dialect for (as diff's base: in target/ it would be
    the manifest of another target, compiled again for this one)."""
    project = _copy(compiled_mini, tmp_path / "mini")
    data = json.loads((project / "target" / "manifest.json").read_text(encoding="utf-8"))
    data["metadata"]["adapter_type"] = "nosuchdb"
    manifest = tmp_path / "base" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text(json.dumps(data), encoding="utf-8")
    proc = run_cli("diff", "--base", str(manifest), "--project-dir", str(project), cwd=project)
    assert proc.returncode == 2
    _one_line_error(proc, "nosuchdb")


# ---- models --------------------------------------------------------------------------------


@pytest.mark.dbt
def test_model_file_that_is_not_utf8_exits_2_naming_it(compiled_mini: Path, tmp_path: Path) -> None:
    project = _copy(compiled_mini, tmp_path / "mini")
    bad = project / "models" / "marts" / "latin1_model.sql"
    bad.write_bytes("select 'caf\u00e9' as x, user_id from {{ ref('stg_users') }}\n".encode("latin-1"))
    proc = run_cli("export", "--project-dir", str(project), cwd=project)
    assert proc.returncode == 2 and proc.stdout == ""
    _one_line_error(proc, "latin1_model.sql", "UTF-8")


@pytest.mark.dbt
def test_time_budget_marks_models_partial_and_the_run_goes_on(compiled_mini: Path, tmp_path: Path) -> None:
    project = _copy(compiled_mini, tmp_path / "mini")
    proc = run_cli("export", "--project-dir", str(project), "--format", "json", "--time-budget", "0.000000001",
                   cwd=project)
    nodes = _graph(proc)
    sql_models = [n for n in nodes.values() if n["type"] == "model" and n["language"] == "sql"
                  and n["name"] != "broken_report"]
    assert len(sql_models) >= 4  # every model is there: one cut short does not stop the others
    for n in sql_models:
        assert n["status"] == "PARTIAL", n
        assert any(r["code"] == "time_budget_exceeded" for r in n["reasons"]), n["reasons"]
        assert [c["name"] for c in n["columns"]]  # its columns are still known


def test_python_model_is_partial_with_a_reason(compiled_mini: Path) -> None:
    proc = run_cli("export", "--project-dir", str(compiled_mini), "--format", "json", cwd=compiled_mini)
    py = _graph(proc)["user_scores"]
    assert py["status"] == "PARTIAL" and py["flags"]["python"]
    assert [r["code"] for r in py["reasons"]] == ["python_model"]


def test_duplicate_output_column_names_are_partial(tmp_path: Path) -> None:
    sql = tmp_path / "dup.sql"
    sql.write_text("select id, name as id from users", encoding="utf-8")
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"users": ["id", "name"]}), encoding="utf-8")
    proc = run_cli("sql", str(sql), "--schema", str(schema), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    text = json.dumps(doc)
    assert "PARTIAL" in text and "duplicate_column" in text and "appears more than once" in text


# ---- the warehouse -------------------------------------------------------------------------


class _Locker:
    """Another process holding the DuckDB file open for writing (as a running dbt does)."""

    def __init__(self, db: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-c",
             "import duckdb, sys, time\n"
             f"c = duckdb.connect({str(db)!r})\n"
             "print('locked', flush=True)\n"
             "time.sleep(600)\n"],
            stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.dbt
def test_locked_duckdb_file_clear_message_and_nothing_changed(built_pipeline: Path, tmp_path: Path) -> None:
    project = _copy(built_pipeline, tmp_path / "pipeline")
    db = project / "target" / "pipeline.duckdb"
    registry = project / "seeds" / "data_sources.csv"
    source = next(csv.DictReader(registry.open(newline="")))["source_id"]
    before_db, before_registry = _sha(db), registry.read_bytes()
    locker = _Locker(db)
    try:
        verify = run_cli("verify", "--project-dir", str(project), "--select", "stg_users_web", cwd=project)
        assert verify.returncode == 2
        _one_line_error(verify, str(db), "locked by another process", "nothing was changed")

        quarantine = run_cli("quarantine", source, "--reason", "test", "--project-dir", str(project), cwd=project)
        assert quarantine.returncode == 2
        _one_line_error(quarantine, "lock")
        assert registry.read_bytes() == before_registry  # the registry is untouched

        impact = run_cli("impact", source, "--project-dir", str(project), cwd=project)
        assert impact.returncode == 0  # the lineage answer stands; the counts are said to be missing
        assert "rows were not counted" in impact.stdout and "lock" in impact.stdout
    finally:
        locker.release()
    assert _sha(db) == before_db


# ---- two reports at once -------------------------------------------------------------------


@pytest.mark.dbt
def test_two_reports_written_at_once_are_both_whole(compiled_mini: Path, tmp_path: Path) -> None:
    project = _copy(compiled_mini, tmp_path / "mini")
    out = tmp_path / "report"
    argv = [LINEAGE_TOOLS, "report", "--project-dir", str(project), "-o", str(out), "--rows", "none", "--quiet"]
    procs = [subprocess.Popen(argv, cwd=project, env=dbt_env(project), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (stdout, stderr) in zip(procs, results):
        assert p.returncode == 0, stderr
    assert sorted(x.name for x in out.iterdir()) == ["lineage.html", "lineage.json", "lineage.md"]  # no temp left
    json.loads((out / "lineage.json").read_text(encoding="utf-8"))
    assert (out / "lineage.html").read_text(encoding="utf-8").rstrip().endswith("</html>")
    assert (out / "lineage.md").read_text(encoding="utf-8").startswith("#")
