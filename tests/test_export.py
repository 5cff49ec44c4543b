"""`lineage-tools export` on the mini fixture project after `dbt compile` alone, run as a user would."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from conftest import dbt_env, run_cli
from openlineage_schema import RUN_EVENT

pytestmark = pytest.mark.dbt


def export(project: Path, *args: str) -> str:
    res = run_cli("export", "--project-dir", str(project), *args, cwd=project)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.fixture(scope="module")
def ol_events(compiled_mini: Path) -> list[dict]:
    return [json.loads(line) for line in export(compiled_mini, "--format", "openlineage").splitlines()]


@pytest.fixture(scope="module")
def graph_doc(compiled_mini: Path) -> dict:
    return json.loads(export(compiled_mini, "--format", "json"))


def by_output(events: list[dict], relation: str) -> dict:
    return next(e for e in events if e["outputs"][0]["name"] == relation)


def lineage_facet(event: dict) -> dict:
    return event["outputs"][0]["facets"]["columnLineage"]


def inputs_of(facet_inputs: list[dict]) -> set[tuple[str, str, str, str]]:
    return {(i["name"], i["field"], t["type"], t["subtype"]) for i in facet_inputs for t in i["transformations"]}


def test_one_valid_run_event_per_model(ol_events: list[dict]):
    validator = jsonschema.Draft202012Validator(RUN_EVENT, format_checker=jsonschema.FormatChecker())
    for event in ol_events:
        errors = sorted(validator.iter_errors(event), key=str)
        assert not errors, errors[0]
    names = [e["outputs"][0]["name"] for e in ol_events]
    assert names == ["mini.main.stg_events", "mini.main.stg_users", "mini.main.int_user_events",
                     "mini.main.user_scores", "mini.snapshots.users_snapshot", "mini.main.user_activity",
                     "mini.main.broken_report"]
    assert {e["eventType"] for e in ol_events} == {"COMPLETE"}


def test_the_schema_rejects_a_malformed_facet(ol_events: list[dict]):
    bad = copy.deepcopy(by_output(ol_events, "mini.main.stg_users"))
    lineage_facet(bad)["fields"]["email"]["inputFields"][0]["transformations"][0]["type"] = "SIDEWAYS"
    del lineage_facet(bad)["_producer"]
    errors = list(jsonschema.Draft202012Validator(RUN_EVENT).iter_errors(bad))
    assert len(errors) >= 1


def test_column_lineage_facet_has_field_and_dataset_inputs(ol_events: list[dict]):
    stg = lineage_facet(by_output(ol_events, "mini.main.stg_users"))
    assert inputs_of(stg["fields"]["email"]["inputFields"]) == {("mini.main.raw_users", "email", "DIRECT", "TRANSFORMATION")}
    assert ("mini.main.data_sources", "status", "INDIRECT", "FILTER") in inputs_of(stg["dataset"])
    ua = lineage_facet(by_output(ol_events, "mini.main.user_activity"))
    assert inputs_of(ua["fields"]["source_ids"]["inputFields"]) == {
        ("mini.main.int_user_events", "source_id", "DIRECT", "AGGREGATION")}
    assert ("mini.main.int_user_events", "user_id", "INDIRECT", "GROUP_BY") in inputs_of(ua["dataset"])
    # lineage goes through the ephemeral model, named like a relation of its own
    inc = lineage_facet(by_output(ol_events, "mini.main.int_user_events"))
    assert inputs_of(inc["fields"]["source_id"]["inputFields"]) == {("mini.main.stg_events", "source_id", "DIRECT", "IDENTITY")}
    flagged = [t for i in inc["dataset"] for t in i["transformations"] if "incrementally" in t.get("description", "")]
    assert len(flagged) == 2


def test_masking_and_status_facets(ol_events: list[dict]):
    snap = lineage_facet(by_output(ol_events, "mini.snapshots.users_snapshot"))
    (scd,) = snap["fields"]["dbt_scd_id"]["inputFields"]
    assert scd["transformations"] == [{"type": "DIRECT", "subtype": "TRANSFORMATION", "masking": True}]
    broken = by_output(ol_events, "mini.main.broken_report")
    status = broken["run"]["facets"]["lineagetools_status"]
    assert status["status"] == "FAILED" and status["reasons"][0]["line"] == 6
    inputs = {i["name"] for i in by_output(ol_events, "mini.main.stg_users")["inputs"]}
    assert inputs == {"mini.main.raw_users", "mini.main.data_sources"}


def test_openlineage_export_is_deterministic(compiled_mini: Path, tmp_path: Path):
    out = tmp_path / "out" / "events.jsonl"
    first = export(compiled_mini, "--format", "openlineage")
    export(compiled_mini, "--format", "openlineage", "-o", str(out))
    assert out.read_text() == first
    assert not list(out.parent.glob(".*tmp"))
    timed = export(compiled_mini, "--format", "openlineage", "--event-time", "2026-11-28T09:00:00Z",
                   "--namespace", "duckdb://prod")
    event = json.loads(timed.splitlines()[0])
    assert event["eventTime"] == "2026-11-28T09:00:00Z"
    assert event["job"]["namespace"] == "duckdb://prod"
    assert event["run"]["runId"] != json.loads(first.splitlines()[0])["run"]["runId"]


def test_bad_event_time_is_exit_2(compiled_mini: Path):
    res = run_cli("export", "--format", "openlineage", "--event-time", "yesterday", "--project-dir", str(compiled_mini),
                  cwd=compiled_mini)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "--event-time" in res.stderr
    assert "Traceback" not in res.stderr


def test_json_graph_document(graph_doc: dict):
    assert graph_doc["format"] == "lineage-tools.graph" and graph_doc["version"] == 1
    assert graph_doc["project"]["registry"] == "seed.mini.data_sources"
    assert graph_doc["summary"]["status"] == {"FULL": 5, "PARTIAL": 1, "FAILED": 1}
    nodes = {n["id"]: n for n in graph_doc["nodes"]}
    assert nodes["seed.mini.data_sources"]["flags"]["registry"] is True
    assert nodes["source.mini.raw.events"]["label"] == "raw.events"
    assert nodes["source.mini.raw.events"]["flags"]["root"] is True
    stg = nodes["model.mini.stg_users"]
    assert stg["file"] == "models/staging/stg_users.sql" and stg["materialized"] == "view"
    email = next(c for c in stg["columns"] if c["name"] == "email")
    assert email["line"] == 14
    assert email["direct_roots"] == [{"node": "seed.mini.raw_users", "column": "email"}]
    assert {"node": "seed.mini.data_sources", "effect": "anti_join"} in stg["row_influences"]
    broken = nodes["model.mini.broken_report"]
    assert broken["status"] == "FAILED" and broken["reasons"][0]["code"] == "parse_error"
    assert broken["reasons"][0]["line"] == 6
    assert nodes["model.mini.int_user_events"]["flags"]["incremental_only_edges"] is True
    assert nodes["model.mini.user_scores"]["flags"]["python"] is True
    edges = graph_doc["edges"]
    assert {
        "source": {"node": "seed.mini.data_sources", "column": "status"},
        "target": {"node": "model.mini.stg_users", "column": None},
        "type": "INDIRECT", "subtype": "FILTER", "masking": False, "incremental_only": False,
    } in edges
    user_sources = next(c for c in nodes["model.mini.user_activity"]["columns"] if c["name"] == "source_ids")
    assert user_sources["direct_roots"] == [{"node": "source.mini.raw.events", "column": "source_id"}]


def test_export_compiles_a_project_without_manifest(mini_copy: Path):
    res = run_cli("export", "--project-dir", str(mini_copy), cwd=mini_copy.parent, env=dbt_env(mini_copy))
    assert res.returncode == 0, res.stderr
    assert "manifest.json is missing; compiling with dbt" in res.stderr
    assert json.loads(res.stdout)["summary"]["status"]["FULL"] == 5


def test_export_without_a_project_is_exit_2(tmp_path: Path):
    res = run_cli("export", "--project-dir", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.startswith("error: ") and "dbt_project.yml" in res.stderr
    assert "Traceback" not in res.stderr
