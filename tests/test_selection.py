"""dbt's selection syntax (the common subset) over manifest nodes, without dbt."""

from __future__ import annotations

import pytest

from lineage_tools.errors import UnknownNodeError, UserError
from lineage_tools.records import Node
from lineage_tools.selection import parse_atom, select, select_models


def n(name: str, deps: tuple[str, ...] = (), *, rtype: str = "model", tags: tuple[str, ...] = (),
      folder: str = "staging", package: str = "p") -> Node:
    uid = f"source.{package}.raw.{name}" if rtype == "source" else f"{rtype}.{package}.{name}"
    path = {"seed": f"seeds/{name}.csv", "source": f"models/{folder}/_sources.yml"}.get(rtype, f"models/{folder}/{name}.sql")
    return Node(uid, name, rtype, f"db.main.{name}", "db", "main", name, original_file_path=path,
                depends_on=deps, tags=tags, package_name=package,
                source_name="raw" if rtype == "source" else None)


NODES = [
    n("events", rtype="source"),
    n("raw_users", rtype="seed"),
    n("stg_users", ("seed.p.raw_users",), tags=("pii",)),
    n("stg_events", ("source.p.raw.events",)),
    n("int_activity", ("model.p.stg_users", "model.p.stg_events"), folder="intermediate", tags=("nightly",)),
    n("fct_jobs", ("model.p.int_activity",), folder="marts", tags=("nightly",)),
    n("other", folder="marts"),
]


def names(spec: str) -> list[str]:
    by_id = {x.unique_id: x.name for x in NODES}
    return sorted(by_id[i] for i in select(NODES, spec))


@pytest.mark.parametrize("spec, expected", [
    ("stg_users", ["stg_users"]),
    ("+int_activity", ["events", "int_activity", "raw_users", "stg_events", "stg_users"]),
    ("int_activity+", ["fct_jobs", "int_activity"]),
    ("1+int_activity", ["int_activity", "stg_events", "stg_users"]),
    ("stg_users+1", ["int_activity", "stg_users"]),
    ("@stg_users", ["events", "fct_jobs", "int_activity", "raw_users", "stg_events", "stg_users"]),
    ("tag:nightly", ["fct_jobs", "int_activity"]),
    ("path:models/marts", ["fct_jobs", "other"]),
    ("models/staging", ["events", "stg_events", "stg_users"]),  # sources by their YAML file, as dbt does
    ("resource_type:seed", ["raw_users"]),
    ("source:raw.events", ["events"]),
    ("source:raw+", ["events", "fct_jobs", "int_activity", "stg_events"]),
    ("stg_*", ["stg_events", "stg_users"]),
    ("staging", ["stg_events", "stg_users"]),  # a folder of the fqn
    ("tag:nightly stg_users", ["fct_jobs", "int_activity", "stg_users"]),  # union
    ("tag:nightly,path:models/marts", ["fct_jobs"]),  # intersection
    ("+fct_jobs,tag:pii", ["stg_users"]),
])
def test_selects_like_dbt(spec: str, expected: list[str]):
    assert names(spec) == expected


def test_models_only():
    chosen = select_models(NODES, "+int_activity")
    assert chosen == {"model.p.int_activity", "model.p.stg_users", "model.p.stg_events"}
    assert select_models(NODES, None) is None


@pytest.mark.parametrize("spec, message", [
    ("colour:red", "unknown selector method 'colour'"),
    ("config.materialized:view", "not supported"),
    ("resource_type:table", "unknown resource_type 'table'"),
    ("a++", "cannot read selector"),
    ("   ", "empty --select"),
])
def test_bad_selector_is_a_user_error(spec: str, message: str):
    with pytest.raises(UserError, match=message):
        select(NODES, spec)


def test_nothing_selected_names_close_matches():
    with pytest.raises(UnknownNodeError, match="did you mean: stg_users"):
        select(NODES, "stg_usres")


def test_parse_atom_operators():
    a = parse_atom("2+tag:nightly+")
    assert (a.method, a.value, a.parents, a.children) == ("tag", "nightly", 2, -1)
    with pytest.raises(UserError):
        parse_atom("@+x")


# ---------------------------------------------------------------------------------------------
# `check --select` and `trace --select` on the pipeline

import json  # noqa: E402
from pathlib import Path  # noqa: E402

from conftest import run_cli  # noqa: E402


@pytest.mark.dbt
def test_check_and_trace_select(compiled_pipeline: Path):
    def cli(*args: str):
        return run_cli(*args, "--project-dir", str(compiled_pipeline), cwd=compiled_pipeline)

    one = cli("check", "--select", "stg_users_web", "--format", "json")
    assert one.returncode in (0, 1), one.stderr
    assert json.loads(one.stdout)["models_checked"] == 1
    up = cli("check", "--select", "+int_users_unioned", "--format", "json")
    assert json.loads(up.stdout)["models_checked"] == 4  # the three user feeds' staging models and itself
    both = cli("check", "--select", "path:models/marts stg_users_web", "--format", "json")
    assert json.loads(both.stdout)["models_checked"] == 1 + len(list((compiled_pipeline / "models" / "marts").glob("*.sql")))

    bad = cli("check", "--select", "colour:red")
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert bad.returncode == 2 and errors == [
        "error: unknown selector method 'colour' in 'colour:red' (use one of: name, tag, path, resource_type, "
        "source, package, fqn)"]
    assert "Traceback" not in bad.stderr
    typo = cli("check", "--select", "stg_users_wbe")
    assert typo.returncode == 2 and "did you mean: stg_users_web" in typo.stderr

    full = cli("trace", "int_users_unioned.email", "--format", "json")
    pruned = cli("trace", "int_users_unioned.email", "--select", "int_users_unioned", "--format", "json")
    assert full.returncode == pruned.returncode == 0, pruned.stderr
    # the pruned tree stops at the first node outside the selection: the staging models
    assert "raw_users_web" in full.stdout and "raw_users_web" not in pruned.stdout
    assert "stg_users_web" in pruned.stdout


@pytest.mark.dbt
def test_select_takes_several_values_after_one_flag_as_in_dbt(compiled_pipeline: Path):
    def cli(*args: str):
        return run_cli(*args, "--project-dir", str(compiled_pipeline), cwd=compiled_pipeline)

    spread = cli("check", "--select", "int_user_activity", "int_users_merged", "--format", "json")
    repeated = cli("check", "-s", "int_user_activity", "-s", "int_users_merged", "--format", "json")
    assert spread.returncode == repeated.returncode and spread.returncode in (0, 1), spread.stderr
    assert spread.stdout == repeated.stdout and json.loads(spread.stdout)["models_checked"] == 2
    # trace: the column may come first or last
    first = cli("trace", "int_users_unioned.email", "--select", "int_users_unioned", "stg_users_web")
    last = cli("trace", "--select", "int_users_unioned", "stg_users_web", "int_users_unioned.email")
    assert first.returncode == last.returncode == 0, last.stderr
    assert first.stdout == last.stdout and "raw_users_web.email" in first.stdout
    assert "raw_users_mobile.email" not in first.stdout  # stg_users_mobile is outside: not followed
