"""The dbt boundary: one loader, dbt run in one place, the target and the warehouse known.

Each test reproduces a defect found on the landed code (the issue's words in its docstring) on
real dbt builds and compiles of the pipeline or the mini fixture project.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from conftest import PROJECT_ROOT, copy_mini_project, run_cli, run_dbt

from lineage_tools import project as P
from lineage_tools.dbt import runner
from lineage_tools.dbt.branches import match
from lineage_tools.dbt.config import DbtConfig
from lineage_tools.dbt.manifest import manifest_problem, read_manifest, target_problem
from lineage_tools.records import ReasonCode, Status
from lineage_tools.registry import set_status

SOURCE = "labels_vendor_quickmark"


def _copy_built(built: Path, dest: Path) -> Path:
    shutil.copytree(built, dest, ignore=shutil.ignore_patterns("logs", "*.tmp", "lineage_cache", "lineage_tools"))
    return dest


@contextmanager
def duckdb_held_for_writing(path: Path) -> Iterator[None]:
    """Another process holds the DuckDB file open read-write (as a running `dbt build` does)."""
    code = ("import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
            "c.execute('create table if not exists _held (x int)'); print('held', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(path), read_only=True).close()
        yield
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=60)


def _json(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(proc.stdout)


def _count(db: Path, sql: str) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


# ---- the layer itself -------------------------------------------------------------------------


def test_only_the_dbt_layer_imports_dbt() -> None:
    """One way into dbt: no module outside lineage_tools/dbt/ imports dbt or runs it."""
    pkg = PROJECT_ROOT / "lineage_tools"
    pattern = re.compile(r"^\s*(from\s+dbt[\s.]|import\s+dbt\b)|dbtRunner|subprocess\.(run|Popen)\([^)]*dbt",
                         re.M)
    offenders = [str(p.relative_to(pkg)) for p in pkg.rglob("*.py")
                 if "dbt" not in p.relative_to(pkg).parts[:1] and pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_a_branch_is_derived_only_from_a_unique_match() -> None:
    """dbt's compiled SQL fills the holes of the model's template only when there is one way."""
    assert match("select \x000\x00 from t", "select a, b from t") == {0: "a, b"}
    # a literal that also occurs inside a value: two readings, none is chosen
    assert match("select \x000\x00 from t where \x001\x00", "select a from t where b from t where c") is None
    assert match("\x000\x00\x001\x00", "ab") is None  # side by side: where one ends is unknown
    assert match("\x000\x00 = \x000\x00", "a = b") is None  # one expression, one value
    assert match("select 1", "select 2") is None


# ---- the target, the project and the adapter of a manifest ------------------------------------


@pytest.mark.dbt
def test_a_manifest_of_another_target_or_project_is_stale(built_pipeline: Path, compiled_mini: Path,
                                                          tmp_path: Path) -> None:
    """After `dbt build --target spark`, `impact X` (default target) said the DuckDB warehouse was
    not built: target/ held Spark's manifest and nothing noticed. A manifest of another project
    copied into target/ was used silently (`check` reported that project's models)."""
    project = _copy_built(built_pipeline, tmp_path / "pipeline")
    cfg = DbtConfig(project)
    duck = read_manifest(cfg.manifest_path)
    assert target_problem(cfg, duck) is None
    # what `dbt compile --target spark` leaves in target/: the spark adapter, no database, the
    # spark target's schema
    spark = json.loads(json.dumps(duck))
    spark["metadata"]["adapter_type"] = "spark"
    for n in [*spark["nodes"].values(), *spark["sources"].values()]:
        n["database"] = None
        n["schema"] = "provenance_pipeline" if n.get("schema") else n.get("schema")
        if n.get("relation_name"):
            n["relation_name"] = "`provenance_pipeline`.`" + n["relation_name"].split('"."')[-1].rstrip('"') + "`"
    cfg.manifest_path.write_text(json.dumps(spark))
    assert "compiled for a spark target, not for target duckdb (duckdb)" in manifest_problem(cfg, spark)
    data = _json(run_cli("impact", SOURCE, "--format", "json", "--project-dir", str(project), cwd=project))
    assert data["rows_counted"] is True and data["models"], data.get("note")
    assert read_manifest(cfg.manifest_path)["metadata"]["adapter_type"] == "duckdb"

    # a DuckDB target on another file (another database) is another target too
    other = json.loads(json.dumps(duck))
    for n in other["nodes"].values():
        if n.get("database"):
            n["database"] = "elsewhere"
    assert "compiled for database 'elsewhere'" in target_problem(cfg, other)

    # another project's manifest: stale, recompiled, never read as this project's
    shutil.copy2(compiled_mini / "target" / "manifest.json", cfg.manifest_path)
    proc = run_cli("check", "--project-dir", str(project), cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "is the manifest of project 'mini', not of 'provenance_pipeline'" in proc.stderr
    assert "19 models checked" in proc.stdout and "user_activity" not in proc.stdout
    # without compiling, it is an error naming the problem, not the other project's lineage
    shutil.copy2(compiled_mini / "target" / "manifest.json", cfg.manifest_path)
    with pytest.raises(Exception, match="manifest of project 'mini'"):
        P.load_project(project, compile=False, cache=False)


# ---- vars at every scope; seeds as dbt reads them ----------------------------------------------


@pytest.mark.dbt
def test_package_scoped_var_is_kept_in_the_rebuild_command(built_pipeline: Path, tmp_path: Path) -> None:
    """`excluded_sources` set as a package-scoped var (`vars: {provenance_pipeline: {...}}`) was not
    seen: `impact` printed a rebuild command that dropped it, bringing labels_crowd_acme back."""
    project = _copy_built(built_pipeline, tmp_path / "pipeline")
    yml = project / "dbt_project.yml"
    text = yml.read_text()
    assert "  excluded_sources: []\n" in text
    yml.write_text(text.replace("  excluded_sources: []\n", "  excluded_sources: []\n  provenance_pipeline:\n"
                                "    excluded_sources: [labels_crowd_acme]\n", 1))
    data = _json(run_cli("impact", SOURCE, "--no-rows", "--format", "json", "--project-dir", str(project),
                         cwd=project))
    build_vars = json.loads(data["rebuild_command"].split("--vars ", 1)[1].strip("'"))
    assert build_vars == {"excluded_sources": ["labels_crowd_acme", SOURCE]}
    # dbt sees the same var (the compiled staging SQL drops the source; the pipeline checks the
    # ids against the registry when it compiles: dbt compiled it, with the warehouse)
    stg = read_manifest(project / "target" / "manifest.json")["nodes"][
        "model.provenance_pipeline.stg_job_search_labels"]["compiled_code"]
    assert "labels_crowd_acme" in stg
    # the printed command names both, so running it keeps labels_crowd_acme out (the walk-through
    # test below runs such a command)
    assert shlex.split(data["rebuild_command"])[:2] == ["dbt", "build"]


@pytest.mark.dbt
def test_seed_delimiter_is_read_as_dbt_reads_it(built_pipeline: Path, tmp_path: Path) -> None:
    """A seed configured with `delimiter: ";"` builds and checks fine, but `impact` read the CSV with
    commas and said "nothing to do", and `quarantine` could never complete."""
    project = _copy_built(built_pipeline, tmp_path / "pipeline")
    seed = project / "seeds" / "raw_job_search_labels.csv"
    seed.write_text(seed.read_text().replace(",", ";"))
    yml = project / "dbt_project.yml"
    yml.write_text(yml.read_text().replace(
        "seeds:\n  provenance_pipeline:\n",
        "seeds:\n  provenance_pipeline:\n    raw_job_search_labels:\n      +delimiter: \";\"\n", 1))
    run_dbt(project, "build")
    data = _json(run_cli("impact", SOURCE, "--format", "json", "--project-dir", str(project), cwd=project))
    assert data["rows_counted"] and "raw_job_search_labels" in data["roots"], data
    assert {m["model"] for m in data["models"]} >= {"stg_job_search_labels", "training_examples"}
    proc = run_cli("quarantine", SOURCE, "--reason", "bad batch", "--format", "json",
                   "--project-dir", str(project), cwd=project)
    assert _json(proc)["remaining_tainted_rows"] == 0


# ---- what the warehouse was built with ---------------------------------------------------------


@pytest.mark.dbt
def test_readme_walk_through_keeps_the_exclusions_in_force(built_pipeline: Path, tmp_path: Path) -> None:
    """README top to bottom: `dbt build --vars '{excluded_sources: [labels_crowd_acme,
    users_mobile_app]}'`, then `quarantine labels_vendor_quickmark`. The quarantine rebuilt without
    those vars: stg_job_search_labels went from 455 to 1,112 rows, labels_crowd_acme was back in
    training_examples, and nothing warned. `impact`'s rebuild command dropped them too."""
    project = _copy_built(built_pipeline, tmp_path / "pipeline")
    db = project / "target" / "pipeline.duckdb"
    stg = 'select count(*) from "main"."stg_job_search_labels"'
    run_dbt(project, "build", "--vars", "{excluded_sources: [labels_crowd_acme, users_mobile_app]}")
    before = _count(db, stg)
    quickmark = _count(db, stg + f" where source_id = '{SOURCE}'")
    assert quickmark > 0 and _count(db, stg + " where source_id = 'labels_crowd_acme'") == 0

    proc = run_cli("check", "--project-dir", str(project), cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    proc = run_cli("impact", SOURCE, "--format", "json", "--project-dir", str(project), cwd=project)
    data = _json(proc)
    assert "the warehouse was last built with excluded_sources ['labels_crowd_acme', 'users_mobile_app']" \
        in proc.stderr
    build_vars = json.loads(data["rebuild_command"].split("--vars ", 1)[1].strip("'"))
    assert build_vars == {"excluded_sources": ["labels_crowd_acme", "users_mobile_app", SOURCE]}

    proc = run_cli("quarantine", SOURCE, "--reason", "garbage batch", "--format", "json",
                   "--project-dir", str(project), cwd=project)
    result = _json(proc)
    assert result["remaining_tainted_rows"] == 0
    assert any("--vars" in c and "labels_crowd_acme" in c for c in result["commands"]), result["commands"]
    assert _count(db, stg) == before - quickmark  # rows go down, never up
    for excluded in ("labels_crowd_acme", "users_mobile_app"):
        assert _count(db, f"select count(*) from \"main\".\"source_inventory\" where source_id = '{excluded}'") == 0

    proc = run_cli("release", SOURCE, "--format", "json", "--project-dir", str(project), cwd=project)
    _json(proc)
    assert _count(db, stg) == before
    assert _count(db, stg + " where source_id = 'labels_crowd_acme'") == 0


# ---- never hold the warehouse ------------------------------------------------------------------


@pytest.mark.dbt
def test_static_commands_give_the_same_answer_while_the_warehouse_is_held(built_pipeline: Path,
                                                                         tmp_path: Path) -> None:
    """A command that needs no rows runs to the same answer while another process holds the DuckDB
    file open for writing; counting says in one line that the warehouse is busy."""
    project = _copy_built(built_pipeline, tmp_path / "pipeline")
    db = project / "target" / "pipeline.duckdb"
    commands = [("check", "--format", "json"), ("export", "--format", "json"),
                ("trace", "training_examples.is_job_seeker", "--format", "json"),
                ("impact", SOURCE, "--no-rows", "--format", "json")]
    free = [run_cli(*c, "--project-dir", str(project), cwd=project) for c in commands]
    model = project / "models" / "marts" / "label_quality.sql"
    with duckdb_held_for_writing(db):
        os.utime(model)  # stale manifest: the tool compiles without the warehouse
        held = [run_cli(*c, "--project-dir", str(project), cwd=project) for c in commands]
        counted = run_cli("impact", SOURCE, "--format", "json", "--project-dir", str(project), cwd=project)
    assert "compiling with dbt" in held[0].stderr
    for c, a, b in zip(commands, free, held):
        assert (a.returncode, a.stdout) == (b.returncode, b.stdout), c
    data = _json(counted)
    assert data["rows_counted"] is False
    assert re.fullmatch(r"rows were not counted: the warehouse \S+pipeline\.duckdb is busy: another process "
                        r"holds a write lock on it \(a dbt run\?\); retry when it is done", data["note"])
    assert "Could not set lock" not in counted.stderr + counted.stdout


@pytest.mark.dbt
def test_counting_through_dbt_equals_reading_the_duckdb_file(built_pipeline: Path) -> None:
    """The dbt-backed count (kept for adapters DuckDB cannot read, e.g. Spark) and the read-only
    DuckDB count agree."""
    from lineage_tools import warehouse as wh
    from lineage_tools.provenance import Provenance

    cfg = DbtConfig(built_pipeline)
    graph = P.load_graph(cfg)
    prov = Provenance(graph)
    rels = [wh.Relation(n.unique_id, f"{{{{ ref('{n.name}') }}}}", n.schema, n.identifier,
                        (prov.roots[n.unique_id],) if n.unique_id in prov.roots else prov.provenance_columns(n.unique_id),
                        n.relation_name)
            for n in graph.project.nodes if n.resource_type in ("seed", "model") and n.materialized != "ephemeral"]
    start = len(runner.invocations())
    direct = wh.count_rows(cfg, "duckdb", rels, [SOURCE])
    assert runner.invocations()[start:] == ()  # DuckDB itself, no dbt
    via_dbt = wh.count_rows(cfg, "duckdb", rels, [SOURCE], through_dbt=True)
    assert [c.how for c in runner.invocations()[start:]] == ["child"]
    assert direct == via_dbt and direct.built and direct.rows[
        "model.provenance_pipeline.stg_job_search_labels"].tainted_rows > 0


@pytest.mark.dbt
def test_report_does_not_lock_itself_out(built_pipeline: Path, tmp_path: Path) -> None:
    """With a built warehouse, a quarantined source and a stale manifest, `report` wrote
    rows_counted: false with "Could not set lock on file ...": it compiled in-process and then
    counted rows from a child process."""
    project = _copy_built(built_pipeline, tmp_path / "pipeline")
    registry = project / "seeds" / "data_sources.csv"
    text = registry.read_text()
    set_status(registry, [SOURCE], "quarantined", "a bad batch")  # as a hand edit would: no rebuild
    assert registry.read_text() != text
    out = tmp_path / "report"
    proc = run_cli("report", "-o", str(out), "--project-dir", str(project), cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "compiling with dbt" in proc.stderr
    doc = json.loads((out / "lineage.json").read_text())
    quarantined = [s for s in doc["sources"] if s["status"] == "quarantined"]
    assert SOURCE in {s["source_id"] for s in quarantined}
    for s in quarantined:
        assert s["impact"]["rows_counted"] is True, s["impact"].get("note")
    assert "Could not set lock" not in proc.stderr


# ---- incremental models: both branches, one dbt invocation, no warehouse -----------------------


INCREMENTAL = """\
{{{{ config(materialized='incremental', unique_key='event_id') }}}}

with events as (
    select * from {{{{ ref('stg_events') }}}}
),

final as (
    select event_id, user_id, event_type, occurred_at, source_id
    from events
    where event_type <> '{n}'
    {{% if is_incremental() %}}
    and {condition}
    {{% endif %}}
)

select * from final
"""
PLAIN = "occurred_at > (select max(occurred_at) from {{ this }})"
THROUGH_A_MACRO = "{{ newer_than_this('occurred_at') }}"  # only dbt can say what this renders to
NEWER = """\
{% macro newer_than_this(column) -%}
{{ column }} > (select max({{ column }}) from {{ this }})
{%- endmacro %}
"""


def _mini_with_incrementals(dest: Path, plain: int = 3, through_macro: int = 0) -> Path:
    project = copy_mini_project(dest)
    (project / "macros" / "newer_than_this.sql").write_text(NEWER)
    for i in range(plain + through_macro):
        condition = PLAIN if i < plain else THROUGH_A_MACRO
        (project / "models" / "intermediate" / f"int_events_{i}.sql").write_text(
            INCREMENTAL.format(n=i, condition=condition))
    return project


def _incremental_only(ml) -> set[tuple[str | None, str, str]]:
    return {(e.target, e.source.qualified, e.subtype.value) for e in ml.lineage.edges if e.incremental_only}


@pytest.mark.dbt
def test_incremental_branches_take_at_most_one_dbt_invocation(tmp_path: Path) -> None:
    """A cold export ran one `dbt parse` plus two `dbt compile --inline` per incremental model,
    each writing the whole manifest: all branches now take at most one dbt invocation (none when
    dbt's compiled SQL shows what the other branch is, as for most models)."""
    project = _mini_with_incrementals(tmp_path / "mini", plain=4, through_macro=2)
    run_dbt(project, "compile")
    start = len(runner.invocations())
    proj = P.load_project(project, cache=False)
    calls = runner.invocations()[start:]
    assert [c.how for c in calls] == ["in-process"], calls  # one, for the two the macro hides
    models = {m.node.name: m for m in proj.models}
    names = ["int_user_events", *(f"int_events_{i}" for i in range(6))]
    for name in names:
        assert models[name].status == Status.FULL, (name, models[name].lineage.reasons)
        assert (None, f"model.mini.{name}.occurred_at", "FILTER") in _incremental_only(models[name]), name
    # every branch is the SQL dbt's own compiler renders (dbt rendered only the macro ones)
    with runner.DbtProject(DbtConfig(project)) as dbt:
        dbt.load(read_manifest(project / "target" / "manifest.json"))
        for name in names:
            node = models[name].node
            assert node.compiled_sql == dbt.render(node.unique_id, is_incremental=False), name
            assert node.incremental_sql == dbt.render(node.unique_id, is_incremental=True), name
    # the renders are kept: the next run of the lineage itself runs dbt no more
    start = len(runner.invocations())
    again = P.load_project(project, cache=False)
    assert runner.invocations()[start:] == ()
    assert [m.lineage for m in again.models] == [m.lineage for m in proj.models]
    # a stale manifest: compiled and rendered in the same single invocation
    os.utime(project / "models" / "intermediate" / "int_events_5.sql")
    shutil.rmtree(project / "target" / "lineage_tools")
    start = len(runner.invocations())
    P.load_project(project, cache=False)
    assert [c.how for c in runner.invocations()[start:]] == ["in-process"]


@pytest.mark.dbt
def test_incremental_lineage_while_the_warehouse_is_held(tmp_path: Path) -> None:
    """With the DuckDB file held by another writer, the incremental render failed ("Could not set
    lock on file"), the model silently fell back to PARTIAL with misleading reasons ("missing
    source schemas", "not in the catalog") and its FILTER edges lost `incremental_only`."""
    project = copy_mini_project(tmp_path / "mini")
    run_dbt(project, "build", "--exclude", "broken_report")
    run_dbt(project, "build", "--exclude", "broken_report")  # now incremental: compiled SQL reads {{ this }}
    run_dbt(project, "compile")
    expected = run_cli("export", "--format", "json", "--project-dir", str(project), cwd=project)
    assert expected.returncode == 0, expected.stderr
    shutil.rmtree(project / "target" / "lineage_tools")
    shutil.rmtree(project / "target" / "lineage_cache")
    with duckdb_held_for_writing(project / "target" / "mini.duckdb"):
        held = run_cli("export", "--format", "json", "--project-dir", str(project), cwd=project)
    assert held.returncode == 0, held.stderr
    assert held.stdout == expected.stdout
    node = next(n for n in json.loads(held.stdout)["nodes"] if n["id"] == "model.mini.int_user_events")
    assert node["status"] == "FULL", node["reasons"]
    assert node["flags"]["incremental_only_edges"] is True


@pytest.mark.dbt
def test_a_session_renders_one_edited_model_without_a_manifest_or_the_warehouse(compiled_mini: Path,
                                                                              tmp_path: Path) -> None:
    """What a language server needs: dbt's parsed project held in memory, one model rendered again
    after an edit, no manifest written, no warehouse connection (the file is held meanwhile)."""
    project = copy_mini_project(tmp_path / "mini")
    shutil.copytree(compiled_mini / "target", project / "target")
    cfg = DbtConfig(project)
    stamp = cfg.manifest_path.stat().st_mtime_ns
    model = project / "models" / "marts" / "user_activity.sql"
    with runner.DbtProject(cfg) as dbt:
        dbt.load(read_manifest(cfg.manifest_path))
        first = dbt.render(model)
        assert '"mini"."main"."int_user_events"' in first and "{{" not in first
        model.write_text(model.read_text().replace("count(*) as n_events", "count(*) as n_events_total"))
        with duckdb_held_for_writing(project / "target" / "mini.duckdb"):
            second = dbt.render(model)
            branch = dbt.render("model.mini.int_user_events", is_incremental=True)
    assert "n_events_total" in second and "n_events_total" not in first
    assert 'from "mini"."main"."int_user_events")' in branch
    assert cfg.manifest_path.stat().st_mtime_ns == stamp


# ---- introspective macros ----------------------------------------------------------------------


STAR_LIKE = """\
{# Like dbt_utils.star: the columns of a relation from the warehouse; a bare * when it finds none. #}
{% macro star_like(relation, except=[]) -%}
    {%- if not execute -%}{{ return('*') }}{%- endif -%}
    {%- set cols = adapter.get_columns_in_relation(relation) -%}
    {%- set kept = [] -%}
    {%- for col in cols if col.name | lower not in except -%}{%- do kept.append(col.name) -%}{%- endfor -%}
    {%- if kept | length == 0 -%}
*
/* No columns were returned. Maybe the relation doesn't exist yet
or all columns were excluded. This star is only output during
dbt compile, and exists to keep SQL valid. */
    {%- else -%}
{{ kept | join(', ') }}
    {%- endif -%}
{%- endmacro %}
"""

STAR_MODEL = """\
select {{ star_like(ref('stg_users'), except=['email']) }}
from {{ ref('stg_users') }}
"""


@pytest.mark.dbt
def test_introspective_macro_after_compile_alone_has_a_reason_of_its_own(tmp_path: Path) -> None:
    """In a real project using dbt_utils.star, after `dbt compile` alone the macro emitted a bare `*`
    and "No columns were returned": the model came out PARTIAL with every column of its input,
    and nothing said why."""
    project = copy_mini_project(tmp_path / "mini")
    (project / "macros" / "star_like.sql").write_text(STAR_LIKE)
    (project / "models" / "marts" / "users_star.sql").write_text(STAR_MODEL)
    run_dbt(project, "compile")
    proj = P.load_project(project, cache=False)
    star = next(m for m in proj.models if m.node.name == "users_star")
    assert star.status == Status.PARTIAL
    (reason,) = [r for r in star.lineage.reasons if r.code == ReasonCode.INTROSPECTIVE]
    assert "star_like" in reason.message and "dbt run --select +users_star" in reason.message
    # after a build, dbt's compile finds the columns: the lineage is complete, no such reason
    run_dbt(project, "build", "--exclude", "broken_report")
    run_dbt(project, "compile")
    built = P.load_project(project, cache=False)
    star = next(m for m in built.models if m.node.name == "users_star")
    assert star.lineage.columns == ("user_id", "signup_date", "source_id")
    assert star.status == Status.FULL, star.lineage.reasons
    # the tool's own compile (a stale manifest) cannot introspect in-process: dbt compiles in a
    # child process instead, with the warehouse, and gets the same SQL
    os.utime(project / "models" / "marts" / "users_star.sql")
    start = len(runner.invocations())
    again = P.load_project(project, cache=False)
    assert [c.how for c in runner.invocations()[start:]][-1] == "child"
    assert next(m for m in again.models if m.node.name == "users_star").lineage == star.lineage
