"""Artifacts checked at the door: a manifest, catalog, run results, `--base` file or registry that is
valid JSON (or CSV) of the wrong shape gives one line naming the file and the field, never a
traceback; a catalog or run results file that cannot be used is ignored with a warning.

The property tests mutate the real artifacts of the compiled mini project (hypothesis picks a
field the tool reads and puts a value of another shape there, or removes it) and call the same
library functions the commands call: the answer is a result or a `UserError` (exit 2), nothing
else. A few cases quoted in issue 17 run through the installed command as well.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli
from lineage_tools.dbt.config import DbtConfig
from lineage_tools.errors import UserError
from lineage_tools.project import load_base, load_project
from lineage_tools.registry import read_registry, set_status

pytestmark = pytest.mark.dbt  # the fixtures compile the mini project with dbt

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False, width=16) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple = (), depth: int = 0) -> list[tuple]:
    """Every path into `value` (keys and list indexes), to a depth the tool reads."""
    out = [prefix] if prefix else []
    if depth >= 5:
        return out
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,), depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            out += _paths(v, prefix + (i,), depth + 1)
    return out


def _read_paths(manifest: dict) -> list[tuple]:
    """The paths of the parts of a manifest the tool reads: metadata, and the project's models,
    seeds, snapshots and sources (tests and dbt's own macros are not read)."""
    out = [("metadata",), ("nodes",), ("sources",)] + _paths(manifest["metadata"], ("metadata",))
    for group in ("nodes", "sources"):
        for uid, node in manifest.get(group, {}).items():
            if node.get("resource_type") in ("model", "seed", "snapshot", "source"):
                out += [(group, uid)] + _paths(node, (group, uid), 2)
    return out


def _mutate(data: Any, path: tuple, value: Any, delete: bool) -> Any:
    data = copy.deepcopy(data)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return data


@pytest.fixture(scope="module")
def mini(compiled_mini: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("artifacts") / "mini"
    shutil.copytree(compiled_mini, project, ignore=shutil.ignore_patterns("lineage_tools", "lineage_cache", "logs"))
    return project


@pytest.fixture(scope="module")
def manifest(mini: Path) -> dict:
    return json.loads((mini / "target" / "manifest.json").read_text(encoding="utf-8"))


def _load(project: Path) -> None:
    load_project(DbtConfig(project, project), compile=False, cache=False, incremental_branches=False)


@SETTINGS
@given(data=st.data())
def test_mutated_manifests_load_or_exit_2(mini: Path, manifest: dict, data: st.DataObject) -> None:
    paths = _read_paths(manifest)
    path = data.draw(st.sampled_from(paths), label="path")
    mutated = _mutate(manifest, path, data.draw(JSON_VALUES, label="value"), data.draw(st.booleans(), label="delete"))
    target = mini / "target" / "manifest.json"
    original = target.read_bytes()
    try:
        target.write_text(json.dumps(mutated), encoding="utf-8")
        try:
            _load(mini)
        except UserError as exc:
            assert "\n" not in str(exc) and str(exc)
        base = mini.parent / "base.json"
        base.write_text(json.dumps(mutated), encoding="utf-8")
        try:
            load_base(base, mini)
        except UserError as exc:
            assert str(base) in str(exc), exc
    finally:
        target.write_bytes(original)


@SETTINGS
@given(data=st.data())
def test_mutated_catalogs_are_used_or_ignored(mini: Path, manifest: dict, data: st.DataObject) -> None:
    nodes = {uid: {"metadata": {"type": "BASE TABLE"},
                   "columns": {c: {"name": c, "type": "VARCHAR", "index": i} for i, c in enumerate(n.get("columns") or {"x": 0})}}
             for uid, n in manifest["nodes"].items() if n.get("resource_type") in ("model", "seed")}
    catalog = {"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/catalog/v1.json"},
               "nodes": nodes, "sources": {}}
    path = data.draw(st.sampled_from(_paths(catalog)), label="path")
    mutated = _mutate(catalog, path, data.draw(JSON_VALUES, label="value"), data.draw(st.booleans(), label="delete"))
    target = mini / "target" / "catalog.json"
    try:
        target.write_text(json.dumps(mutated), encoding="utf-8")
        _load(mini)  # a catalog is never required: used, or ignored with a warning
    finally:
        target.unlink()


REGISTRY = "source_id,kind,status,status_reason,status_changed_on\nweb,in_house,active,,\nvendor_a,outsourced,active,,\n"


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list('source_id,kindstatus"\r\n\ufeff;ab_ ')), max_size=120),
       prefix=st.sampled_from(["", "\ufeff", REGISTRY]))
def test_mutated_registries_read_or_exit_2(tmp_path: Path, text: str, prefix: str) -> None:
    path = tmp_path / "data_sources.csv"
    path.write_text(prefix + text, encoding="utf-8", newline="")
    try:
        registry = read_registry(path)
        if registry.ids and registry.ids[0].isidentifier() and registry.ids[0].islower():
            set_status(path, [registry.ids[0]], "quarantined", "x")
    except UserError as exc:
        assert "\n" not in str(exc)


# ---- the cases issue 17 quotes, through the installed command --------------------------------------


def _manifest_with(mini: Path, tmp_path: Path, change) -> Path:
    data = json.loads((mini / "target" / "manifest.json").read_text(encoding="utf-8"))
    change(data)
    out = tmp_path / "base" / "target" / "manifest.json"
    out.parent.mkdir(parents=True)
    out.write_text(json.dumps(data), encoding="utf-8")
    return out


def _first_model(data: dict) -> dict:
    return next(n for n in data["nodes"].values() if n["resource_type"] == "model")


@pytest.mark.parametrize("change, field", [
    (lambda d: _first_model(d).update(depends_on="garbage"), ".depends_on: expected an object, found a string"),
    (lambda d: _first_model(d).update(columns=[1, 2]), ".columns: expected an object, found a list"),
    (lambda d: d["metadata"].update(adapter_type=7), "metadata.adapter_type: expected a string or null"),
])
def test_a_base_manifest_of_the_wrong_shape_is_one_line_exit_2(mini: Path, tmp_path: Path, change, field: str) -> None:
    base = _manifest_with(mini, tmp_path, change)
    proc = run_cli("diff", "--base", str(base), "--project-dir", str(mini), "--quiet", cwd=mini)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(base) in last and field in last, last
    assert "Traceback" not in proc.stderr


def test_a_target_manifest_of_the_wrong_shape_is_compiled_again(mini: Path, tmp_path: Path) -> None:
    project = tmp_path / "mini"
    shutil.copytree(mini, project)
    path = project / "target" / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    _first_model(data).update(depends_on="garbage")
    path.write_text(json.dumps(data), encoding="utf-8")
    proc = run_cli("export", "--format", "json", "--project-dir", str(project), cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert ".depends_on: expected an object" in proc.stderr  # the warning names the field it recompiled over
    assert json.loads(proc.stdout)["nodes"]


@pytest.mark.parametrize("write", [
    lambda p: p.write_text('{"nodes": {}, "sources": {}}', encoding="utf-16"),
    lambda p: p.write_text('{"nodes": {"model.x.y": {"columns": [1, 2]}}}', encoding="utf-8"),
    lambda p: p.write_text('{"nodes": {"model.x.y": {"columns": {"a": {"name": 3}}}}}', encoding="utf-8"),
], ids=["utf16", "columns_list", "name_number"])
def test_an_unusable_catalog_is_ignored_with_a_warning(mini: Path, tmp_path: Path, write) -> None:
    project = tmp_path / "mini"
    shutil.copytree(mini, project)
    write(project / "target" / "catalog.json")
    for command in (["export", "--format", "json"], ["check"]):
        proc = run_cli(*command, "--project-dir", str(project), cwd=project)
        assert proc.returncode in (0, 1), proc.stderr
        assert "Traceback" not in proc.stderr
        assert "ignoring" in proc.stderr and "catalog.json" in proc.stderr, proc.stderr


def test_a_ref_cycle_is_one_line_exit_2(mini: Path, tmp_path: Path) -> None:
    project = tmp_path / "mini"
    shutil.copytree(mini, project, ignore=shutil.ignore_patterns("target"))
    (project / "models" / "cycle_a.sql").write_text("select * from {{ ref('cycle_b') }}\n", encoding="utf-8")
    (project / "models" / "cycle_b.sql").write_text("select * from {{ ref('cycle_a') }}\n", encoding="utf-8")
    proc = run_cli("check", "--project-dir", str(project), cwd=project)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "cycle" in last.lower() and "cycle_a" in last, last
    assert "Traceback" not in proc.stderr and "see the log above" not in last
