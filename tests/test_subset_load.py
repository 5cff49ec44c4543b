"""`trace MODEL.COL` and `check --select SPEC` load only the models upstream of what they need;
their output must equal what a full load of the project gives (the real pipeline, compiled)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from lineage_tools.graph import build_graph, node_ids_named
from lineage_tools.project import load_project
from lineage_tools.provenance import check
from lineage_tools.records import EdgeType
from lineage_tools.render import provenance as render_provenance
from lineage_tools.render import trace as render_trace
from lineage_tools.selection import select_models

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module")
def full(compiled_pipeline: Path):
    return build_graph(load_project(compiled_pipeline, compiled_pipeline, compile=False, cache=False))


def test_subset_load_gives_the_same_lineage_for_the_models_it_loads(compiled_pipeline: Path, full):
    sub = load_project(compiled_pipeline, compiled_pipeline, compile=False, cache=False,
                       upstream_of=lambda nodes: node_ids_named(nodes, "int_user_accounts"))
    analysed = {m.node.unique_id: m for m in sub.models}
    assert 0 < len(analysed) < len(full.project.models)
    assert full.node("int_user_accounts").unique_id in analysed
    assert full.node("training_examples").unique_id not in analysed  # downstream: not loaded
    for m in full.project.models:
        if m.node.unique_id in analysed:
            assert analysed[m.node.unique_id] == m
    assert sub.nodes == full.project.nodes


def test_trace_on_a_subset_prints_what_the_full_graph_gives(compiled_pipeline: Path, full):
    uid = full.node("training_examples").unique_id
    for column in full.columns(uid):
        tree = full.trace(full.column(f"training_examples.{column}"), kinds={EdgeType.DIRECT})
        if tree.steps:
            break
    expected = render_trace.render_text(full, tree, downstream=False, summary=True)
    res = run_cli("trace", f"training_examples.{column}", "--project-dir", str(compiled_pipeline),
                  "--profiles-dir", str(compiled_pipeline), cwd=compiled_pipeline)
    assert res.returncode == 0, res.stderr
    assert res.stdout == expected
    assert len(expected.splitlines()) > 3


def test_check_select_on_a_subset_reports_what_the_full_check_reports(compiled_pipeline: Path, full):
    spec = "int_user_activity int_users_merged"
    chosen = select_models(full.project.nodes, spec)
    expected = render_provenance.check_json(check(full, chosen))
    res = run_cli("check", "--select", "int_user_activity", "--select", "int_users_merged", "--format", "json",
                  "--project-dir", str(compiled_pipeline), "--profiles-dir", str(compiled_pipeline),
                  cwd=compiled_pipeline)
    assert res.returncode in (0, 1), res.stderr
    assert json.loads(res.stdout) == json.loads(expected)
    assert json.loads(res.stdout)["models_checked"] == 2


def test_relation_names_handed_to_sql_are_what_the_parser_reads(compiled_pipeline: Path):
    # project hands each node's relation parts to sql (no parsing later); they must be what
    # sqlglot's parser gives for the name
    from lineage_tools import sql
    from lineage_tools.project import project_config, read_manifest_nodes

    read = read_manifest_nodes(project_config(compiled_pipeline, compiled_pipeline), compile=False)
    assert read.relation_parts and set(read.relation_parts) == {n.relation for n in read.nodes}
    for name, parts in read.relation_parts.items():
        assert sql._relation_parts(name, read.dialect) == parts, name
        assert sql.relation_name(parts, read.dialect) == name


def test_a_warm_trace_gives_the_same_output_from_the_digest(compiled_pipeline: Path, full, tmp_path: Path):
    import shutil

    project = tmp_path / "pipeline"
    shutil.copytree(compiled_pipeline, project, ignore=shutil.ignore_patterns("lineage_cache", "*.duckdb"))
    args = ("trace", "training_examples.source_ids", "--project-dir", str(project), "--profiles-dir", str(project))
    first = run_cli(*args, cwd=project)
    assert (project / "target" / "lineage_cache").is_dir()
    second = run_cli(*args, cwd=project)
    assert first.returncode == second.returncode == 0, second.stderr
    assert first.stdout == second.stdout and len(first.stdout.splitlines()) > 3
    assert "0 analysed" in second.stderr
