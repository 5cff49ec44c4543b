"""`lineage-tools quarantine` / `release`: durable, verified, idempotent removal of a source.

Each test works in its own copy of the built pipeline (project files and DuckDB file).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from conftest import LINEAGE_TOOLS, copy_project, dbt_env, run_cli, run_dbt

SOURCE = "labels_vendor_quickmark"
REASON = "garbage batch: 40% of labels random, Nov 2026"


def _copy_built(built: Path, dest: Path) -> Path:
    shutil.copytree(built, dest, ignore=shutil.ignore_patterns("logs", "*.tmp"))
    return dest


def _registry_rows(project: Path) -> dict[str, dict[str, str]]:
    with open(project / "seeds" / "data_sources.csv", newline="") as fh:
        return {r["source_id"]: r for r in csv.DictReader(fh)}


def _tables(db: Path) -> list[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return sorted(r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main'").fetchall())
    finally:
        con.close()


def _differences(left_db: Path, right_db: Path, skip: set[str] = frozenset()) -> dict[str, int]:
    """Per table of `left_db`, rows in one database and not in the other (multiset)."""
    con = duckdb.connect()
    try:
        con.execute(f"attach '{left_db}' as l (read_only)")
        con.execute(f"attach '{right_db}' as r (read_only)")
        names = [t for t in _tables(left_db) if t not in skip]
        out = {}
        for t in names:
            a, b = f'select * from l.main."{t}"', f'select * from r.main."{t}"'
            n = con.execute(f"select (select count(*) from ({a} except all {b})) + "
                            f"(select count(*) from ({b} except all {a}))").fetchone()[0]
            if n:
                out[t] = n
        return out
    finally:
        con.close()


def _tainted(project: Path, source: str) -> dict[str, int | None]:
    proc = run_cli("impact", source, "--format", "json", "--project-dir", str(project), cwd=project)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["rows_counted"], data
    return {m["model"]: m["tainted_rows"] for m in data["models"]}


@pytest.mark.dbt
def test_dry_run_changes_nothing(built_pipeline: Path, tmp_path: Path) -> None:
    project = _copy_built(built_pipeline, tmp_path / "pipeline")
    before = (project / "seeds" / "data_sources.csv").read_bytes()
    proc = run_cli("quarantine", SOURCE, "--reason", REASON, "--dry-run", "--format", "json",
                   "--project-dir", str(project), cwd=project)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["dry_run"] is True and data["registry_changed"] == [SOURCE]
    assert data["commands"][0] == "dbt seed --select data_sources"
    assert data["commands"][1].startswith("dbt build --select stg_job_search_labels+ ")
    assert (project / "seeds" / "data_sources.csv").read_bytes() == before


@pytest.mark.dbt
def test_quarantine_then_release_round_trip(built_pipeline: Path, tmp_path: Path) -> None:
    project = _copy_built(built_pipeline, tmp_path / "pipeline")
    db = project / "target" / "pipeline.duckdb"
    baseline = tmp_path / "baseline.duckdb"
    shutil.copy2(db, baseline)
    csv_before = (project / "seeds" / "data_sources.csv").read_text().splitlines()

    proc = run_cli("quarantine", SOURCE, "--reason", REASON, "--format", "json",
                   "--project-dir", str(project), cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert data["source_ids"] == [SOURCE]
    assert data["remaining_tainted_rows"] == 0
    rows = {m["model"]: m for m in data["models"]}
    assert rows["stg_job_search_labels"]["rows_after"] < rows["stg_job_search_labels"]["rows_before"]
    assert set(rows) >= {"stg_job_search_labels", "int_labels_resolved", "training_examples"}

    # durable and reviewable: only the three status cells of one registry row changed
    csv_after = (project / "seeds" / "data_sources.csv").read_text().splitlines()
    changed = [(a, b) for a, b in zip(csv_before, csv_after) if a != b]
    assert len(csv_after) == len(csv_before) and len(changed) == 1
    row = _registry_rows(project)[SOURCE]
    assert (row["status"], row["status_reason"]) == ("quarantined", REASON)
    assert row["status_changed_on"]

    # a later plain `dbt build` cannot bring the source back
    run_dbt(project, "build")
    assert set(_tainted(project, SOURCE).values()) <= {0, None}

    # running it again is a no-op that still verifies
    again = run_cli("quarantine", SOURCE, "--reason", REASON, "--format", "json",
                    "--project-dir", str(project), cwd=project)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["registry_changed"] == []

    proc = run_cli("release", SOURCE, "--format", "json", "--project-dir", str(project), cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    released = json.loads(proc.stdout)
    assert released["tainted_rows"] > 0
    assert _registry_rows(project)[SOURCE]["status"] == "active"

    run_dbt(project, "build")
    # every model and raw seed is as before the quarantine; the registry keeps the date of the release
    assert _differences(baseline, db, skip={"data_sources"}) == {}
    assert _tables(baseline) == _tables(db)


@pytest.mark.dbt
def test_bad_input(built_pipeline: Path, tmp_path: Path) -> None:
    project = _copy_built(built_pipeline, tmp_path / "pipeline")
    proc = run_cli("quarantine", "labels_nobody", "--reason", "x", "--project-dir", str(project), cwd=project)
    assert proc.returncode == 2 and "registered:" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("quarantine", SOURCE, "--reason", "  ", "--project-dir", str(project), cwd=project)
    assert proc.returncode == 2 and "--reason" in proc.stderr


@pytest.mark.dbt
def test_killed_quarantine_can_be_run_again(built_pipeline: Path, tmp_path: Path) -> None:
    """Kill `quarantine` (and its dbt) mid-rebuild; the rerun completes and the tables are
    those of a clean build with the source quarantined; no table is left half-written."""
    project = _copy_built(built_pipeline, tmp_path / "pipeline")
    proc = subprocess.Popen(
        [LINEAGE_TOOLS, "quarantine", SOURCE, "--reason", REASON, "--project-dir", str(project)],
        cwd=project, env=dbt_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    killed_at = None
    try:
        assert proc.stderr is not None
        in_build = False
        for line in proc.stderr:
            if "running:" in line and " build " in line:
                in_build = True
            if in_build and "START sql table model" in line:
                killed_at = line.strip()
                os.killpg(proc.pid, signal.SIGKILL)
                break
    finally:
        if proc.poll() is None and killed_at is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert killed_at, "the rebuild never started"
    assert proc.returncode == -signal.SIGKILL
    time.sleep(0.5)  # let the killed dbt release the DuckDB file
    assert _registry_rows(project)[SOURCE]["status"] == "quarantined"  # recorded before the rebuild

    rerun = run_cli("quarantine", SOURCE, "--reason", REASON, "--format", "json",
                    "--project-dir", str(project), cwd=project)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert json.loads(rerun.stdout)["remaining_tainted_rows"] == 0

    db = project / "target" / "pipeline.duckdb"
    assert not [t for t in _tables(db) if "__dbt_tmp" in t or "__dbt_backup" in t]
    # the same tables as a from-scratch build with the source quarantined
    reference = copy_project(tmp_path / "reference")
    shutil.copy2(project / "seeds" / "data_sources.csv", reference / "seeds" / "data_sources.csv")
    run_dbt(reference, "build")
    assert _differences(reference / "target" / "pipeline.duckdb", db) == {}


# ---- provenance the proof cannot read ------------------------------------------------------

BROKEN_MODELS = Path(__file__).parent / "fixtures" / "broken_models"
# rule-5 fixtures: provenance-named columns holding changed ids, in models that read the raw
# labels directly (outside staging), so a quarantine's rebuild keeps their rows
TRANSFORMED = (
    "broken_upper_source_id", "broken_concat_source_id", "broken_string_agg_source_ids",
    "broken_any_value_source_id", "broken_max_source_id", "broken_first_value_source_id",
    "broken_coalesce_join_source_id",
)
NESTED = "clean_nested_source_lists"  # a list of lists of ids: readable, counted exactly


@pytest.fixture(scope="module")
def transformed_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pipeline with the rule-5 fixture models and a nested-list model, built once."""
    project = copy_project(tmp_path_factory.mktemp("transformed") / "pipeline")
    dest = project / "models" / "broken"
    dest.mkdir()
    for name in (*TRANSFORMED, NESTED):
        shutil.copy2(BROKEN_MODELS / f"{name}.sql", dest / f"{name}.sql")
    run_dbt(project, "build")
    return project


def _count(db: Path, sql: str) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


@pytest.mark.dbt
def test_impact_does_not_count_changed_ids_as_provenance(transformed_build: Path) -> None:
    proc = run_cli("impact", SOURCE, "--format", "json", "--project-dir", str(transformed_build),
                   cwd=transformed_build)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["rows_counted"]
    models = {m["model"]: m for m in data["models"]}
    db = transformed_build / "target" / "pipeline.duckdb"
    for name in TRANSFORMED:
        m = models[name]
        # the rows are there (the ids only changed their spelling or some were dropped) ...
        assert _count(db, f"select count(*) from main.{name}") > 0
        # ... so no count of "tainted" rows is given as if the column could be read
        assert m["tainted_rows"] is None, (name, m)
        assert m["mode"] == "rebuild", (name, m)
        assert m["provenance_columns"] == [], (name, m)
        assert "not provenance" in m["reason"], (name, m["reason"])
    # a list of lists is read through: every row holding the source in some inner list
    truth = _count(db, f"select count(*) from main.{NESTED} where list_contains(flatten(source_ids), '{SOURCE}')")
    assert truth > 0
    assert models[NESTED]["tainted_rows"] == truth


@pytest.mark.dbt
def test_quarantine_refuses_to_certify_rows_it_cannot_read(transformed_build: Path, tmp_path: Path) -> None:
    """The issue's case: only models whose ids were respelled, so no row matches the id as
    written; the proof must not say "0 rows left" while the rows are there."""
    project = _copy_built(transformed_build, tmp_path / "pipeline")
    kept = ("broken_upper_source_id", "broken_concat_source_id")
    for path in (project / "models" / "broken").glob("*.sql"):
        if path.stem not in kept:
            path.unlink()
    run_dbt(project, "compile", "--select", "broken")  # the manifest without the deleted models
    proc = run_cli("quarantine", SOURCE, "--reason", REASON, "--format", "json",
                   "--project-dir", str(project), cwd=project)
    # the respelled rows are still there after the rebuild (these models skip staging)
    db = project / "target" / "pipeline.duckdb"
    raw = _count(db, f"select count(*) from main.raw_job_search_labels where source_id = '{SOURCE}'")
    assert raw > 0
    assert _count(db, f"select count(*) from main.broken_upper_source_id where source_id = upper('{SOURCE}')") == raw
    assert _count(db, f"select count(*) from main.broken_concat_source_id where source_id = 'src:{SOURCE}'") == raw
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1, proc.stderr[-3000:]
    for name in kept:
        assert f"{name}.source_id" in error[0], error[0]
    assert "cannot" in error[0] and "not provenance" in error[0], error[0]


# ---- the registry edit itself (no dbt) ----------------------------------------------------

from datetime import date  # noqa: E402

from lineage_tools.errors import UnknownNodeError, UserError  # noqa: E402
from lineage_tools.registry import read_registry, set_status, validate_ids  # noqa: E402

REGISTRY = (
    "source_id,kind,vendor,cost_usd,status,status_reason,status_changed_on,description\r\n"
    'web,in_house,internal,0.00,active,,,"Web sign-ups, all countries"\r\n'
    "vendor_a,outsourced,\"Acme, Inc.\",10.50,active,,,Labels\r\n"
    "vendor_b,outsourced,B,1.00,quarantined,old,2026-01-02,More labels\r\n"
)


def test_set_status_changes_only_three_cells_and_keeps_formatting(tmp_path: Path) -> None:
    path = tmp_path / "data_sources.csv"
    path.write_bytes(REGISTRY.encode())
    changed = set_status(path, ["vendor_a"], "quarantined", 'bad batch, "v2"', on=date(2026, 11, 28))
    assert changed == ("vendor_a",)
    after = path.read_bytes().decode()
    before_lines, after_lines = REGISTRY.split("\r\n"), after.split("\r\n")
    assert [i for i, (a, b) in enumerate(zip(before_lines, after_lines)) if a != b] == [2]
    assert after_lines[2] == 'vendor_a,outsourced,"Acme, Inc.",10.50,quarantined,"bad batch, ""v2""",2026-11-28,Labels'
    assert read_registry(path).get("vendor_a").status_reason == 'bad batch, "v2"'
    assert not list(tmp_path.glob(".*.tmp"))


def test_set_status_is_idempotent_and_keeps_the_first_date(tmp_path: Path) -> None:
    path = tmp_path / "data_sources.csv"
    path.write_bytes(REGISTRY.encode())
    assert set_status(path, ["vendor_b"], "quarantined", "new reason", on=date(2026, 11, 28)) == ()
    assert path.read_bytes() == REGISTRY.encode()
    assert set_status(path, ["vendor_b"], "active", "", on=date(2026, 11, 28)) == ("vendor_b",)
    assert read_registry(path).get("vendor_b").status == "active"


def test_ids_are_validated_against_syntax_and_registry(tmp_path: Path) -> None:
    path = tmp_path / "data_sources.csv"
    path.write_bytes(REGISTRY.encode())
    reg = read_registry(path)
    assert validate_ids(["web", "web", "vendor_a"], reg) == ("web", "vendor_a")
    with pytest.raises(UnknownNodeError, match="registered: web, vendor_a, vendor_b"):
        validate_ids(["nope"], reg)
    with pytest.raises(UserError):
        set_status(path, ["web'; --"], "quarantined", "x")
    assert path.read_bytes() == REGISTRY.encode()
