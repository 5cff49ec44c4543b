"""`lineage-tools diff`: what a change does to lineage, edge by edge.

Two kinds of test: the comparison itself on small lineage records (every kind of change, and
names that try to break out of Markdown), and the CI recipe of docs/ci.md run as written on two
real versions of the pipeline (a base copy and a head copy with one changed model).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import BIN_DIR, PROJECT_ROOT, copy_project, dbt_env, run_cli
from lineage_tools.diff import diff_lineage
from lineage_tools.records import (
    ColumnEdge,
    ColumnRef,
    Finding,
    ModelLineage,
    Node,
    ProjectLineage,
    StatementLineage,
    Status,
    Subtype,
)
from lineage_tools.render.diff import render

SRC, STG, FCT, AGG = "source.p.raw.orders", "model.p.stg", "model.p.fct", "model.p.agg"


def _node(uid: str, rtype: str, deps: tuple[str, ...] = (), cols: tuple[str, ...] = ()) -> Node:
    name = uid.split(".")[-1]
    return Node(uid, name, rtype, f"db.main.{name}", "db", "main", name,
                original_file_path=f"models/{name}.sql", depends_on=deps,
                columns=tuple((c, None) for c in cols), package_name="p",
                source_name="raw" if rtype == "source" else None)


def project(models: dict[str, tuple[tuple[str, ...], list[tuple]]], status: dict[str, Status] | None = None) -> ProjectLineage:
    """A project: a source `raw.orders` and models given as uid -> (columns, edges).

    An edge is (target column or None, input uid, input column, subtype name).
    """
    nodes = [_node(SRC, "source", cols=("amount", "tax", "status", "source_id"))]
    mls = []
    for uid, (cols, edges) in models.items():
        n = _node(uid, "model", tuple(sorted({e[1] for e in edges})))
        nodes.append(n)
        es = tuple(ColumnEdge(t, ColumnRef(r, c), Subtype[s]) for t, r, c, s in edges)
        mls.append(ModelLineage(n, StatementLineage(cols, es, status=(status or {}).get(uid, Status.FULL))))
    return ProjectLineage("p", "duckdb", "duckdb", tuple(nodes), tuple(mls))


STG_MODEL = (("amount", "tax", "status", "source_id"), [
    ("amount", SRC, "amount", "IDENTITY"), ("tax", SRC, "tax", "IDENTITY"),
    ("status", SRC, "status", "IDENTITY"), ("source_id", SRC, "source_id", "IDENTITY"),
])
AGG_MODEL = (("total",), [("total", FCT, "revenue", "AGGREGATION")])


def base_and_head() -> tuple[ProjectLineage, ProjectLineage]:
    base = project({
        STG: STG_MODEL,
        FCT: (("revenue", "old", "source_id"), [
            ("revenue", STG, "amount", "IDENTITY"), ("old", STG, "amount", "IDENTITY"),
            ("source_id", STG, "source_id", "IDENTITY"), (None, STG, "tax", "JOIN"),
        ]),
        AGG: AGG_MODEL,
    })
    head = project({
        STG: STG_MODEL,
        FCT: (("revenue", "<script>alert(1)</script>", "source_id"), [
            ("revenue", STG, "amount", "AGGREGATION"), ("revenue", STG, "tax", "AGGREGATION"),
            ("<script>alert(1)</script>", STG, "tax", "IDENTITY"),
            ("source_id", STG, "source_id", "IDENTITY"),
            (None, STG, "status", "FILTER"), (None, STG, "tax", "FILTER"),
        ]),
        AGG: AGG_MODEL,
    }, status={FCT: Status.PARTIAL})
    return base, head


def test_each_kind_of_change_is_one_sentence():
    base, head = base_and_head()
    d = diff_lineage(base, head)
    assert [m.name for m in d.models] == ["fct"]
    text = render(d, "text")
    # only what changed: the input that came, the input whose type changed; never the ones that stayed
    assert "`fct.revenue`: new AGGREGATION of `stg.tax`; `stg.amount` was IDENTITY, is now AGGREGATION\n" in text
    assert "`fct` (every row): new FILTER on `stg.status`; `stg.tax` was JOIN, is now FILTER\n" in text
    assert "`fct.old` was removed\n" in text
    assert "`fct.<script>alert(1)</script>` is new: IDENTITY of `stg.tax`" in text
    assert "lineage status FULL -> PARTIAL" in text
    # a filter changed which rows fct has: every column downstream of fct is reached
    assert [(c.relation, c.column) for c in d.downstream] == [(AGG, "total")]


def test_one_input_dropped_names_that_input_only():
    """A column of 30 inputs that loses one: one short line naming the one that went."""
    inputs = [(f"model.p.stg_{i:02d}", "source_id") for i in range(30)]
    stgs = {uid: (("source_id",), [("source_id", SRC, "source_id", "IDENTITY")]) for uid, _ in inputs}

    def inventory(srcs):
        return (("source_id",), [("source_id", uid, col, "IDENTITY") for uid, col in srcs]
                + [(None, uid, col, "FILTER") for uid, col in srcs])

    base = project({**stgs, "model.p.inventory": inventory(inputs)})
    head = project({**stgs, "model.p.inventory": inventory(inputs[1:])})
    text = render(diff_lineage(base, head), "text")
    lines = [line.strip() for line in text.splitlines()]
    assert "`inventory.source_id`: IDENTITY of `stg_00.source_id` removed" in lines
    assert "`inventory` (every row): FILTER on `stg_00.source_id` removed" in lines
    assert "stg_01" not in text and max(len(line) for line in lines) < 200
    md = render(diff_lineage(base, head), "markdown")
    assert "stg_01" not in md


def test_source_columns_and_new_models():
    base, head = base_and_head()
    src = next(n for n in head.nodes if n.unique_id == SRC)
    wider = ProjectLineage("p", "duckdb", "duckdb",
                           tuple(n if n.unique_id != SRC else Node(**{**src.__dict__, "columns": src.columns + (("discount", None),)})
                                 for n in base.nodes), base.models)
    d = diff_lineage(base, wider)
    assert [(m.name, m.kind, m.columns_added) for m in d.models] == [("raw.orders", "changed", ("discount",))]
    assert "`raw.orders`: new column `discount`\n" in render(d, "text")
    # a model that appears reaches nothing yet, and is one line
    extra = project({STG: STG_MODEL, "model.p.new": (("a",), [("a", STG, "amount", "IDENTITY")])})
    d = diff_lineage(project({STG: STG_MODEL}), extra)
    assert "new model `new` (1 column)" in render(d, "text")


def test_same_lineage_is_no_change():
    base, _ = base_and_head()
    d = diff_lineage(base, base)
    assert d.is_empty
    assert render(d, "text").splitlines()[1] == "No lineage change."


def test_json_counts_and_edges():
    base, head = base_and_head()
    doc = json.loads(render(diff_lineage(base, head), "json"))
    assert doc["summary"]["edges_changed"] == 2  # revenue<-amount, dataset<-tax
    assert doc["summary"]["columns_added"] == 1 and doc["summary"]["columns_removed"] == 1
    fct = doc["models"][0]
    revenue = next(c for c in fct["columns"] if c["column"] == "revenue")
    assert {(e["source"]["column"], e["change"], tuple(e["after"])) for e in revenue["edges"]} == {
        ("amount", "changed", ("AGGREGATION",)), ("tax", "added", ("AGGREGATION",))}
    assert doc["downstream"] == [{"node": AGG, "name": "agg", "column": "total"}]


def test_findings_that_appear_and_disappear():
    base, head = base_and_head()
    old = Finding("fct", "revenue", "3", "fct: the origin of raw.orders is lost", root="raw.orders")
    new = Finding("fct", "<b>x</b>", "4", "fct.<b>x</b> is named like provenance but is not provenance")
    d = diff_lineage(base, head, [old], [new])
    assert d.findings_added == (new,) and d.findings_removed == (old,)
    md = render(d, "markdown")
    assert "**New findings**" in md and "**Resolved findings**" in md
    # the same finding on both sides (even with another message) is no change
    assert diff_lineage(base, head, [old], [old]).findings_added == ()


def test_markdown_escapes_names():
    base, head = base_and_head()
    md = render(diff_lineage(base, head, [], [Finding("fct", "a|b", "4", "<img src=x onerror=alert(1)>")]), "markdown")
    assert "`fct.a|b`" in md
    # names are code spans (shown literally by GitHub), free text has its HTML escaped
    assert "`fct.<script>alert(1)</script>`" in md
    assert "<img" not in md and "&lt;img src=x onerror=alert(1)&gt;" in md
    assert "**`fct`** (model, changed)" in md
    # a small overview of what the change touches: the changed model, its finding, what it reaches
    mermaid = md.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert mermaid.splitlines() == [
        "flowchart LR", '  subgraph C["changed"]', '    c0["fct"]', "  end",
        '  subgraph F["new findings"]', '    f0["fct"]', "  end",
        '  subgraph R["reached downstream"]', '    r0["agg"]', "  end", "  C --> R"]
    assert "`` stg.a`b ``" in render(diff_lineage(
        project({STG: STG_MODEL}), project({STG: (("a`b",), [("a`b", SRC, "amount", "IDENTITY")])})), "markdown")


# ---------------------------------------------------------------------------------------------
# Bad input: exit 2 with one line


def test_base_without_manifest_exits_2(tmp_path: Path):
    proc = run_cli("diff", "--base", str(tmp_path), "--project-dir", str(PROJECT_ROOT))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no manifest.json" in proc.stderr


def test_base_of_another_schema_version_exits_2(tmp_path: Path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v7.json",
                     "adapter_type": "duckdb"},
        "nodes": {}, "sources": {},
    }))
    proc = run_cli("diff", "--base", str(manifest), "--project-dir", str(PROJECT_ROOT))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "v7.json" in proc.stderr and "not supported" in proc.stderr


def test_base_path_missing_exits_2(tmp_path: Path):
    proc = run_cli("diff", "--base", str(tmp_path / "nowhere" / "target"), "--project-dir", str(PROJECT_ROOT))
    assert proc.returncode == 2 and "no such file or folder" in proc.stderr


# ---------------------------------------------------------------------------------------------
# docs/ci.md, run as written on two real versions of the pipeline

CI_STEPS = ("Compile the base", "Build the head", "Lineage check", "Lineage diff", "Lineage report")
MODEL = "models/intermediate/int_user_activity.sql"


def workflow_steps() -> dict[str, str]:
    """The `run:` scripts of the workflow in docs/ci.md, by step name."""
    text = (PROJECT_ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    steps = yaml.safe_load(block)["jobs"]["lineage"]["steps"]
    return {s["name"]: s["run"] for s in steps if "name" in s and "run" in s}


def change_model(head: Path) -> None:
    """One real change to a pipeline model: a new filter, a new column, a new input."""
    path = head / MODEL
    sql = path.read_text(encoding="utf-8")
    edits = [
        ("        count(*) as n_events,", "        count(distinct event_id) as n_events,"),
        ("    from events\n    group by account_id", "    from events\n    where event_type <> 'heartbeat'\n    group by account_id"),
        ("        merge_source_mask\n    from user_activity",
         "        merge_source_mask,\n        n_job_views + n_apply_clicks as n_job_actions\n    from user_activity"),
    ]
    for old, new in edits:
        assert old in sql, f"{MODEL} changed: update this test's edit ({old.strip()!r} is gone)"
        sql = sql.replace(old, new)
    path.write_text(sql, encoding="utf-8")


def run_step(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A workflow step as GitHub runs it: `bash -e` in the head checkout."""
    assert "${{" not in script, "a shell step of docs/ci.md uses a GitHub expression: it would not run locally"
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=1800)


@pytest.mark.dbt
def test_ci_recipe_on_a_real_change(tmp_path: Path):
    runner_temp = tmp_path / "runner"
    base = copy_project(runner_temp / "base")
    head = copy_project(tmp_path / "head")
    change_model(head)
    summary = tmp_path / "summary.md"
    env = dbt_env(head, RUNNER_TEMP=str(runner_temp), GITHUB_STEP_SUMMARY=str(summary),
                  PATH=f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("DBT_PROFILES_DIR", None)  # the workflow passes --profiles-dir itself
    steps = workflow_steps()
    assert set(CI_STEPS) <= set(steps), f"docs/ci.md lacks steps {set(CI_STEPS) - set(steps)}"
    for name in CI_STEPS:
        proc = run_step(steps[name], head, env)
        assert proc.returncode == 0, f"step {name!r} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"

    text = summary.read_text(encoding="utf-8")
    diff_md = (head / "lineage-diff.md").read_text(encoding="utf-8")
    assert diff_md in text
    assert "`int_user_activity` (every row): new FILTER on `stg_user_events.event_type`" in diff_md
    assert "`int_user_activity.n_events`: new AGGREGATION of `stg_user_events.event_id`" in diff_md
    assert "`int_user_activity.n_job_actions` is new: CONDITIONAL on `stg_user_events.event_type`" in diff_md
    assert "`training_examples`: " in diff_md  # downstream columns the change reaches
    # the report: three files, its Markdown in the summary too
    report = head / "lineage-report"
    assert sorted(p.name for p in report.iterdir()) == ["lineage.html", "lineage.json", "lineage.md"]
    assert "## Lineage report" in text and "```mermaid" in text
    doc = json.loads((report / "lineage.json").read_text(encoding="utf-8"))
    activity = next(n for n in doc["nodes"] if n["name"] == "int_user_activity")
    assert "n_job_actions" in [c["name"] for c in activity["columns"]]
    (tmp_path / "diff.md").write_text(diff_md, encoding="utf-8")  # kept for whoever reads the run

    # --fail-on: the change alters lineage, but adds no finding
    args = ["diff", "--quiet", "--base", str(runner_temp / "base" / "target"), "--project-dir", str(head),
            "--profiles-dir", str(head)]
    assert run_cli(*args, "--fail-on", "any-change", cwd=head, env=env).returncode == 1
    assert run_cli(*args, "--fail-on", "new-findings", cwd=head, env=env).returncode == 0
    same = run_cli("diff", "--quiet", "--base", str(runner_temp / "base" / "target"), "--project-dir",
                   str(runner_temp / "base"), "--profiles-dir", str(runner_temp / "base"), "--fail-on", "any-change",
                   cwd=runner_temp / "base", env=env)
    assert same.returncode == 0 and "No lineage change." in same.stdout

    # a change that loses the origin of values is a new finding: the gate closes
    sql = (head / MODEL).read_text(encoding="utf-8")
    old = "        event_source_mask,\n        user_source_mask,"
    assert old in sql, f"{MODEL} changed: update this test's edit"
    (head / MODEL).write_text(sql.replace(old, "        user_source_mask,"), encoding="utf-8")
    gate = run_cli(*args, "--fail-on", "new-findings", "--format", "json", cwd=head, env=env)
    assert gate.returncode == 1, gate.stderr[-2000:]
    found = json.loads(gate.stdout)["findings_added"]
    assert any(f["model"] == "int_user_activity" and f["rule"] == "3" for f in found), found
