"""Quarantine and release under pressure: concurrent runs, a busy warehouse, a held registry, a
killed run, a failed rebuild. Nothing is lost, nothing reports success for a change that is not
there, and every failure says what state the registry and the warehouse are in.

Each test works in its own copy of the built pipeline; everything runs for real (dbt, DuckDB,
the installed command, real processes and signals).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from conftest import LINEAGE_TOOLS, copy_project, dbt_env, run_cli, run_dbt
from test_quarantine import REASON, SOURCE, _copy_built, _differences, _registry_rows

pytestmark = pytest.mark.dbt


def _registry_bytes(project: Path) -> bytes:
    return (project / "seeds" / "data_sources.csv").read_bytes()


def _warehouse_statuses(project: Path) -> dict[str, str]:
    con = duckdb.connect(str(project / "target" / "pipeline.duckdb"), read_only=True)
    try:
        return dict(con.execute('select source_id, status from "pipeline"."main"."data_sources"').fetchall())
    finally:
        con.close()


def _pending(project: Path) -> list:
    path = project / "target" / "lineage_tools" / "pending-rebuilds.json"
    return json.loads(path.read_text()) if path.exists() else []


def _requests_left(project: Path) -> list[str]:
    folder = project / "target" / "lineage_tools" / "registry-requests"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_nothing_to_do_runs_no_dbt(built_pipeline: Path, tmp_path: Path) -> None:
    project = _copy_built(built_pipeline, tmp_path / "pipeline")
    before = _registry_bytes(project)
    proc = run_cli("release", SOURCE, "--project-dir", str(project), cwd=project)  # active already
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"nothing to do: {SOURCE} is already active"), proc.stdout
    assert "running:" not in proc.stderr  # no dbt seed, no dbt build
    proc = run_cli("quarantine", "spam_model_v1", "--reason", "x", "--format", "json",
                   "--project-dir", str(project), cwd=project)  # quarantined in the demo registry
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["nothing_to_do"] is True and data["remaining_tainted_rows"] == 0
    assert "running:" not in proc.stderr
    assert _registry_bytes(project) == before


HOLD_WAREHOUSE = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])  # read-write: the lock a running `dbt build` holds
    print("held", flush=True)
    time.sleep(120)
""")


def test_busy_warehouse_changes_nothing(built_pipeline: Path, tmp_path: Path) -> None:
    project = _copy_built(built_pipeline, tmp_path / "pipeline")
    before = _registry_bytes(project)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WAREHOUSE, str(project / "target" / "pipeline.duckdb")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = run_cli("quarantine", SOURCE, "--reason", REASON, "--project-dir", str(project), cwd=project)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "busy" in last and "nothing was changed" in last, last
    assert "Traceback" not in proc.stderr and "running:" not in proc.stderr
    assert _registry_bytes(project) == before and _pending(project) == []


HOLD_REGISTRY = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from lineage_tools.registry import locked
    with locked(Path(sys.argv[1])):
        print("held", flush=True)
        time.sleep(120)
""")


def test_a_run_that_waits_too_long_exits_2_naming_the_holder(built_pipeline: Path, tmp_path: Path) -> None:
    project = _copy_built(built_pipeline, tmp_path / "pipeline")
    before = _registry_bytes(project)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_REGISTRY, str(project / "seeds" / "data_sources.csv")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        proc = run_cli("quarantine", SOURCE, "--reason", REASON, "--project-dir", str(project), cwd=project,
                       env=dbt_env(project, LINEAGE_TOOLS_LOCK_WAIT="3"))
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert f"pid {holder.pid}" in last and "waited 3 s" in last and "nothing was changed" in last, last
    assert waited < 60
    assert _registry_bytes(project) == before and _requests_left(project) == []


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_killing_the_run_ends_its_dbt_and_the_rerun_finishes(built_pipeline: Path, tmp_path: Path) -> None:
    """`kill -9` of the quarantine's own process (not its group) while dbt rebuilds: its dbt
    child ends too (it used to run on, holding the warehouse), and running the command again
    finishes the job."""
    project = _copy_built(built_pipeline, tmp_path / "pipeline")
    proc = subprocess.Popen(
        [LINEAGE_TOOLS, "quarantine", SOURCE, "--reason", REASON, "--project-dir", str(project)],
        cwd=project, env=dbt_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    dbt_children: list[int] = []
    try:
        for line in proc.stderr:
            if "running:" in line and " build " in line:
                deadline = time.monotonic() + 60
                while not dbt_children and time.monotonic() < deadline:
                    dbt_children = _children(proc.pid)
                    time.sleep(0.05)
                os.kill(proc.pid, signal.SIGKILL)  # the parent only
                break
    finally:
        if proc.poll() is None and not dbt_children:
            proc.kill()
        proc.wait(timeout=60)
    assert dbt_children, "the rebuild never started"
    deadline = time.monotonic() + 60
    while any(_alive(c) for c in dbt_children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(c) for c in dbt_children), "dbt outlived the quarantine that started it"
    assert _registry_rows(project)[SOURCE]["status"] == "quarantined"
    assert [e["source_ids"] for e in _pending(project)] == [[SOURCE]]  # the unfinished rebuild is known

    rerun = run_cli("quarantine", SOURCE, "--reason", REASON, "--format", "json",
                    "--project-dir", str(project), cwd=project)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    data = json.loads(rerun.stdout)
    assert data["nothing_to_do"] is False and data["remaining_tainted_rows"] == 0  # rebuilt, not skipped
    assert _pending(project) == []


FAILS_WITHOUT_QUICKMARK = """\
-- fails once no row of labels_vendor_quickmark is left: a rebuild that trips a dbt test
select count(*) as n
from {{ ref('stg_job_search_labels') }}
where source_id = 'labels_vendor_quickmark'
having count(*) = 0
"""


def test_a_failed_rebuild_says_the_state_and_the_command_that_finishes(built_pipeline: Path, tmp_path: Path) -> None:
    project = _copy_built(built_pipeline, tmp_path / "pipeline")
    trap = project / "tests" / "dbt" / "singular" / "assert_quickmark_kept.sql"
    trap.write_text(FAILS_WITHOUT_QUICKMARK, encoding="utf-8")
    proc = run_cli("quarantine", SOURCE, "--reason", REASON, "--project-dir", str(project), cwd=project)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "failed (exit 1). State: the registry file data_sources.csv marks labels_vendor_quickmark quarantined" in last
    assert "warehouse's registry table" in last and "To finish, fix it, then: lineage-tools quarantine " in last, last
    assert _warehouse_statuses(project)[SOURCE] == "quarantined"
    command = last.split("To finish, fix it, then: ", 1)[1]
    trap.unlink()
    rerun = subprocess.run(command.replace("lineage-tools", LINEAGE_TOOLS, 1) + " --format json", shell=True,
                           cwd=project, env=dbt_env(project), capture_output=True, text=True, timeout=1800)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert json.loads(rerun.stdout)["remaining_tainted_rows"] == 0 and _pending(project) == []


# ---- twenty at once ------------------------------------------------------------------------------

EXTRA_SOURCES = [f"stress_vendor_{i:02d}" for i in range(1, 11)]  # registered, no rows anywhere


def _add_sources(project: Path) -> None:
    """Ten more registered sources with no rows: five active, five quarantined."""
    path = project / "seeds" / "data_sources.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    for i, sid in enumerate(EXTRA_SOURCES):
        row = dict.fromkeys(header, "")
        row.update({"source_id": sid, "status": "quarantined" if i >= 5 else "active"})
        if "status_reason" in row and i >= 5:
            row["status_reason"] = "set up quarantined"
        for column, value in zip(header, rows[-1]):  # other columns like the last real source
            if row[column] == "" and column not in ("status_reason", "status_changed_on"):
                row[column] = value
        if "source_bit" in row:
            row["source_bit"] = str(max(int(r[header.index("source_bit")]) for r in rows[1:]) + 1)
        rows.append([row[c] for c in header])
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def test_twenty_concurrent_runs_end_with_every_status_and_a_matching_warehouse(
        built_pipeline: Path, tmp_path: Path) -> None:
    project = _copy_built(built_pipeline, tmp_path / "pipeline")
    _add_sources(project)
    run_dbt(project, "seed", "--select", "data_sources")
    registry = _registry_rows(project)
    real_active = [s for s, r in registry.items() if r["status"] == "active" and s not in EXTRA_SOURCES]
    asks = ([("quarantine", s) for s in real_active[:9]] + [("release", "spam_model_v1")]
            + [("quarantine", s) for s in EXTRA_SOURCES[:5]] + [("release", s) for s in EXTRA_SOURCES[5:]])
    assert len(asks) == 20 and len({s for _, s in asks}) == 20
    env = dbt_env(project, LINEAGE_TOOLS_LOCK_WAIT="1800")
    started = time.monotonic()
    procs = []
    for action, sid in asks:
        argv = [LINEAGE_TOOLS, action, sid, "--format", "json", "--project-dir", str(project)]
        if action == "quarantine":
            argv += ["--reason", f"stress {sid}"]
        procs.append((action, sid, subprocess.Popen(argv, cwd=project, env=env, stdout=subprocess.PIPE,
                                                    stderr=subprocess.PIPE, text=True)))
    outcomes = {}
    for action, sid, p in procs:
        out, err = p.communicate(timeout=1800)
        outcomes[sid] = (action, p.returncode, out, err)
    wall = time.monotonic() - started
    passes = sum(err.count(" seed --select data_sources") for _, _, _, err in outcomes.values())
    print(f"\n20 concurrent quarantine/release runs: {wall:.0f} s wall, {passes} rebuild pass(es)")

    failed = {s: (rc, err.strip().splitlines()[-1:]) for s, (_, rc, _, err) in outcomes.items() if rc != 0}
    assert failed == {}, failed
    final = _registry_rows(project)
    for sid, (action, _, out, _) in outcomes.items():  # no run reports success for a change that is not there
        want = "quarantined" if action == "quarantine" else "active"
        assert final[sid]["status"] == want, (sid, action, final[sid])
        assert json.loads(out)["source_ids"] == [sid]
    assert _warehouse_statuses(project) == {s: r["status"] for s, r in final.items()}
    assert _pending(project) == [] and _requests_left(project) == []
    # the warehouse is what a clean build with this registry gives
    reference = copy_project(tmp_path / "reference")
    shutil.copy2(project / "seeds" / "data_sources.csv", reference / "seeds" / "data_sources.csv")
    run_dbt(reference, "build")
    assert _differences(reference / "target" / "pipeline.duckdb", project / "target" / "pipeline.duckdb") == {}
