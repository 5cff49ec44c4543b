"""The pipeline on Apache Spark (dbt-spark, `session` target) against DuckDB, from the same data.

`test_spark_matches_duckdb_model_by_model` is marked `spark`: it needs the `spark` extra and
Java 17+, starts Spark a few times (a few minutes), and runs in CI (where a missing extra or
Java fails it); locally it is skipped, with the reason, when they are missing, and
`pytest -m "not spark"` deselects it. It builds the pipeline on both targets from the same generated data and
shows, model by model, the same rows (so the same row counts and the same provenance per row),
the same `check` findings and the same `impact` answer for two sources.
`test_verify_on_the_spark_target_runs_the_translated_spark_sql` (also `spark`) only compiles on
Spark (one start, no build) and runs `verify --target spark` on the Spark SQL translated to DuckDB.

The other tests need neither Spark nor Java: a dispatched macro without a version for the
adapter fails at compile time naming itself, every engine-specific macro has a Spark version,
and a machine without Java gets one clear line.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT, copy_project, run_cli, run_dbt

MACROS = PROJECT_ROOT / "macros"
DISPATCH = re.compile(r"adapter\.dispatch\('(\w+)',\s*'provenance_pipeline'\)")

# Two sources whose impact is compared: a labelling vendor (aggregations, windows downstream)
# and a user feed (every user model downstream).
IMPACT_SOURCES = ("labels_vendor_quickmark", "users_partner_feed")

# A model that breaks provenance rule 3 (the labels' origin is lost), added to both builds so
# that `check` has findings to compare.
LOST_PROVENANCE_MODEL = """\
-- cross-engine test only: keeps the users' provenance, drops the labels' (a rule-3 finding)
select
    users.user_id,
    labels.is_job_seeker,
    users.source_mask
from {{ ref('int_users_merged') }} as users
inner join {{ ref('int_labels_resolved') }} as labels
    on labels.user_id = users.user_id
"""


# --- macros: every engine-specific one has a Spark version; none runs another engine's SQL -----


def macro_bodies() -> dict[str, str]:
    """name -> text of every `{% macro name(...) %}` under macros/."""
    out = {}
    for path in MACROS.rglob("*.sql"):
        text = path.read_text()
        for m in re.finditer(r"\{%-?\s*macro\s+(\w+)\(.*?%\}(.*?)\{%-?\s*endmacro\s*-?%\}", text, re.S):
            out[m.group(1)] = m.group(2)
    return out


def dispatched_macros() -> list[str]:
    return sorted({m for p in MACROS.rglob("*.sql") for m in DISPATCH.findall(p.read_text())})


def test_every_dispatched_macro_has_duckdb_and_spark_versions_and_a_safe_default() -> None:
    bodies = macro_bodies()
    names = dispatched_macros()
    assert {"collect_sources", "merge_sources", "hash_bucket", "days_between"} <= set(names)
    for name in names:
        assert f"default__{name}" in bodies, name
        default = bodies[f"default__{name}"]
        portable = "no_adapter_version" not in default and "raise_compiler_error" not in default
        if not portable:
            assert f"duckdb__{name}" in bodies, f"{name}: no duckdb__ version"
            assert f"spark__{name}" in bodies, f"{name}: no spark__ version (macros/spark/)"
            # the DuckDB SQL lives in duckdb__, not in a default that other engines would run
            assert f"default__{name}" not in bodies[f"duckdb__{name}"], name


def _without_macro(project: Path, name: str) -> None:
    """Delete the definition of macro `name` from the project copy's macros/."""
    pattern = re.compile(
        r"\{%-?\s*macro\s+" + re.escape(name) + r"\(.*?\{%-?\s*endmacro\s*-?%\}\n?", re.S
    )
    for path in (project / "macros").rglob("*.sql"):
        text = path.read_text()
        if pattern.search(text):
            path.write_text(pattern.sub("", text))
            return
    raise AssertionError(f"macro {name} not found")


@pytest.mark.dbt
@pytest.mark.parametrize(
    ("macro", "model"),
    [("collect_sources", "int_users_merged"), ("hash_bucket", "training_examples")],
)
def test_macro_without_a_version_for_the_adapter_fails_at_compile_time(
    project_copy: Path, macro: str, model: str
) -> None:
    """A real `dbt compile` on DuckDB with the duckdb__ version removed: dbt names the macro."""
    _without_macro(project_copy, f"duckdb__{macro}")
    res = run_dbt(project_copy, "compile", "--select", model, check=False)
    assert res.returncode != 0
    assert "Compilation Error" in res.output
    assert f"{macro} has no implementation for adapter duckdb: add duckdb__{macro}" in res.output
    # it failed while compiling: no SQL ran against the warehouse
    assert "Database Error" not in res.output


# --- a machine without Java gets one line naming what is missing -------------------------------


def _spark_env(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lineage_tools.spark_env", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )


def test_no_java_gives_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["JAVA_HOME"] = str(tmp_path / "no-such-jdk")
    proc = _spark_env(env=env)
    if "is not installed" in proc.stderr:
        pytest.skip("the spark extra is not installed here: " + proc.stderr.strip())
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Java not found" in lines[0] and "no-such-jdk" in lines[0]
    assert "Traceback" not in proc.stderr


def test_java_that_cannot_start_spark_is_named(tmp_path: Path) -> None:
    """A `java` that answers -version but cannot run: pyspark's own failure line, not a traceback."""
    fake = tmp_path / "jdk" / "bin" / "java"
    fake.parent.mkdir(parents=True)
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-version" ]; then echo \'openjdk version "17.0.1" 2025-01-01\' >&2; exit 0; fi\n'
        'echo "Error: could not open jvm.cfg" >&2; exit 1\n'
    )
    fake.chmod(0o755)
    env = dict(os.environ, JAVA_HOME=str(fake.parent.parent))
    proc = _spark_env("--start", env=env)
    if "is not installed" in proc.stderr:
        pytest.skip("the spark extra is not installed here: " + proc.stderr.strip())
    assert proc.returncode == 2
    assert proc.stderr.strip() == "spark target: pyspark cannot start: Error: could not open jvm.cfg"


# --- the same pipeline on both engines ---------------------------------------------------------


def _norm(value: object) -> object:
    """One comparable form for a value read from DuckDB or Spark (lists sorted: provenance)."""
    if isinstance(value, (list, tuple)):
        items = [_norm(v) for v in value]
        return tuple(sorted(items, key=repr))
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 9)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return float(value)  # bigint on one engine, integer or decimal on the other
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _model_names(project: Path) -> list[str]:
    manifest = json.loads((project / "target" / "manifest.json").read_text())
    return sorted(
        n["name"] for n in manifest["nodes"].values()
        if n["resource_type"] in ("model", "seed") and n["config"].get("materialized") != "ephemeral"
        and n["config"].get("enabled", True)
    )


def _duckdb_rows(project: Path, names: list[str]) -> dict[str, tuple[list[str], Counter]]:
    import duckdb

    con = duckdb.connect(str(project / "target" / "pipeline.duckdb"), read_only=True)
    out = {}
    for name in names:
        cur = con.execute(f'select * from main."{name}"')
        cols = [d[0] for d in cur.description]
        out[name] = (cols, Counter(tuple(_norm(v) for v in row) for row in cur.fetchall()))
    con.close()
    return out


SPARK_READER = """
import json, sys
from pyspark.sql import SparkSession
req = json.load(sys.stdin)
d = req["spark_dir"]
spark = (SparkSession.builder.master("local[2]").enableHiveSupport()
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4")
         .config("spark.sql.session.timeZone", "UTC").config("spark.log.level", "ERROR")
         .config("spark.sql.warehouse.dir", d + "/warehouse")
         .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                 "jdbc:derby:;databaseName=" + d + "/metastore_db;create=true")
         .getOrCreate())
out = {}
for name in req["names"]:
    df = spark.table(req["schema"] + "." + name)
    rows = [[v.isoformat(sep=" ") if hasattr(v, "isoformat") and hasattr(v, "hour") else
             (v.isoformat() if hasattr(v, "isoformat") else (float(v) if type(v).__name__ == "Decimal" else v))
             for v in row] for row in df.collect()]
    out[name] = {"columns": df.columns, "rows": rows}
spark.stop()
json.dump(out, sys.stdout)
"""


def _spark_rows(project: Path, names: list[str]) -> dict[str, tuple[list[str], Counter]]:
    """Every relation as Spark returns it, read in ONE Spark session in a child process."""
    request = {"spark_dir": str(project / "target" / "spark"), "names": names, "schema": "provenance_pipeline"}
    proc = subprocess.run(
        [sys.executable, "-c", SPARK_READER], input=json.dumps(request), capture_output=True,
        text=True, cwd=project, timeout=1200, env=dict(os.environ, TZ="UTC"),
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads(proc.stdout)
    return {
        name: (v["columns"], Counter(tuple(_norm(x) for x in row) for row in v["rows"]))
        for name, v in data.items()
    }


def _comparable(doc: dict) -> dict:
    """A check / impact JSON document without what names the project folder or the target."""
    drop = {"project_dir", "target", "adapter_type", "dialect", "generated_at", "elapsed_s"}

    def clean(x: object) -> object:
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items() if k not in drop}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    return clean(doc)


def _cli_json(project: Path, *args: str, target: str) -> dict:
    res = run_cli(*args, "--format", "json", "--project-dir", str(project), "--target", target, cwd=project)
    assert res.returncode in (0, 1), f"lineage-tools {args[0]} --target {target}: {res.stderr[-3000:]}"
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The pipeline built on DuckDB and on Spark from the same freshly generated data."""
    proc = subprocess.run(
        [sys.executable, "-m", "lineage_tools.spark_env"], capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        message = proc.stderr.strip() + ' (make install-spark; or deselect: pytest -m "not spark")'
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs the spark extra: a missing piece is a failure there
        pytest.skip(message)
    root = tmp_path_factory.mktemp("engines")
    data = root / "data"
    subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "generate_data.py"), "--users", "250", "--out", str(data)],
        check=True, capture_output=True, timeout=600,
    )
    projects = []
    for engine in ("duckdb", "spark"):
        project = copy_project(root / engine)
        for csv in data.glob("*.csv"):
            (project / "seeds" / csv.name).write_bytes(csv.read_bytes())
        (project / "models" / "marts" / "cross_engine_lost_provenance.sql").write_text(LOST_PROVENANCE_MODEL)
        run_dbt(project, "build", "--target", engine)
        projects.append(project)
    return projects[0], projects[1]


@pytest.mark.spark
def test_spark_matches_duckdb_model_by_model(both_engines: tuple[Path, Path]) -> None:
    duck, spark = both_engines
    names = _model_names(duck)
    assert names == _model_names(spark)
    assert {"training_examples", "int_users_merged", "source_inventory", "data_sources"} <= set(names)

    want, got = _duckdb_rows(duck, names), _spark_rows(spark, names)
    for name in names:
        (duck_cols, duck_rows), (spark_cols, spark_rows) = want[name], got[name]
        assert [c.lower() for c in spark_cols] == [c.lower() for c in duck_cols], name
        assert sum(spark_rows.values()) == sum(duck_rows.values()), f"{name}: row counts differ"
        # the whole row, provenance lists included: the same multiset on both engines
        only_duck, only_spark = duck_rows - spark_rows, spark_rows - duck_rows
        assert not only_duck and not only_spark, (
            f"{name}: rows differ; DuckDB only: {list(only_duck)[:3]}; Spark only: {list(only_spark)[:3]}"
        )
    # the data is not trivial: provenance lists with several sources made it through
    cols, rows = want["training_examples"]
    i = cols.index("source_ids")
    assert any(len(row[i]) > 1 for row in rows)
    assert sum(rows.values()) > 20

    # `check` reads lineage from each target's compiled SQL in its own dialect
    check_duck = _cli_json(duck, "check", target="duckdb")
    check_spark = _cli_json(spark, "check", target="spark")
    assert check_duck["findings"], "the lost-provenance model should give a finding"
    assert any("cross_engine_lost_provenance" in json.dumps(f) for f in check_duck["findings"])
    assert _comparable(check_spark) == _comparable(check_duck)

    # `impact` of two sources, rows counted through dbt's connection for each target
    impact_duck = _cli_json(duck, "impact", *IMPACT_SOURCES, target="duckdb")
    impact_spark = _cli_json(spark, "impact", *IMPACT_SOURCES, target="spark")
    assert impact_duck["rows_counted"] and impact_spark["rows_counted"]
    assert any((m.get("tainted_rows") or 0) > 0 for m in impact_duck["models"])
    # the rebuild command is the same but for the target it rebuilds on
    assert impact_duck["rebuild_command"].endswith(" --target duckdb")
    assert impact_spark["rebuild_command"].endswith(" --target spark")
    impact_spark["rebuild_command"] = impact_spark["rebuild_command"].removesuffix(" --target spark")
    impact_duck["rebuild_command"] = impact_duck["rebuild_command"].removesuffix(" --target duckdb")
    assert _comparable(impact_spark) == _comparable(impact_duck)


@pytest.mark.spark
def test_verify_on_the_spark_target_runs_the_translated_spark_sql(tmp_path: Path) -> None:
    """`verify --target spark` needs only the compiled project (dbt compile starts Spark once, no
    build): with no DuckDB file for the target it generates its samples, and every model's Spark SQL,
    translated to DuckDB by sqlglot (the hash bucket's `pmod`/`conv` included), runs in the scratch."""
    proc = subprocess.run(
        [sys.executable, "-m", "lineage_tools.spark_env"], capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        message = proc.stderr.strip() + ' (make install-spark; or deselect: pytest -m "not spark")'
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    project = copy_project(tmp_path / "spark")
    run_dbt(project, "compile", "--target", "spark")
    compiled = (project / "target" / "compiled" / "provenance_pipeline" / "models" / "marts" / "training_examples.sql")
    assert "conv(" in compiled.read_text(), "the Spark hash bucket should be in the compiled SQL"

    res = run_cli("verify", "--target", "spark", "--format", "json", "--project-dir", str(project), cwd=project)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    doc = json.loads(res.stdout)
    assert doc["inputs"].startswith("no warehouse; spark SQL translated to DuckDB")
    summary = doc["summary"]
    assert summary["false_negatives"] == 0
    assert summary["skipped"] == 0 and summary["errors"] == 0, [
        (m["name"], m["message"]) for m in doc["models"] if m["outcome"] != "verified"
    ]
    assert summary["verified"] == summary["models"] >= 15
    training = next(m for m in doc["models"] if m["name"] == "training_examples")
    assert training["output_rows"] > 0
    assert any(e["target"] == "split" for e in training["confirmed"]), "the hash bucket ran and was exercised"
