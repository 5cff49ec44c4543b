"""`lineage-tools trace` run as a user would, on the mini fixture project after `dbt compile`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli

pytestmark = pytest.mark.dbt


def trace(project: Path, *args: str):
    return run_cli("trace", *args, "--project-dir", str(project), cwd=project)


def test_default_trace_opens_with_roots_then_the_values_path_and_sums_up_indirect_inputs(compiled_mini: Path):
    res = trace(compiled_mini, "user_activity.source_ids")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[:5] == [
        "user_activity.source_ids  [model.mini.user_activity]",
        "roots: raw.events.source_id",
        "└── DIRECT AGGREGATION  int_user_events.source_id",
        "    └── DIRECT IDENTITY  stg_events.source_id",
        "        └── DIRECT IDENTITY  raw.events.source_id  (root)",
    ]
    assert lines[5] == "rows shaped by (INDIRECT, not followed; --all follows them):"
    summary = lines[6:]
    # one line per model on the path, every INDIRECT input named there and nowhere else
    assert [s.split(":")[0].strip() for s in summary] == ["user_activity", "int_user_events"]
    assert "GROUP_BY on int_user_events.user_id" in summary[0]
    assert "JOIN on stg_events.user_id, stg_users.user_id" in summary[1]
    assert "FILTER incremental-only on stg_events.occurred_at" in summary[1]
    assert len(lines) < 15


def test_all_trace_follows_every_edge(compiled_mini: Path):
    res = trace(compiled_mini, "user_activity.source_ids", "--all")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "user_activity.source_ids  [model.mini.user_activity]"
    text = res.stdout
    assert "DIRECT AGGREGATION  int_user_events.source_id" in text
    assert "DIRECT IDENTITY  stg_events.source_id" in text
    assert "DIRECT IDENTITY  raw.events.source_id  (root)" in text
    assert "INDIRECT GROUP_BY (every column)  int_user_events.user_id" in text
    assert "INDIRECT JOIN (every column)  stg_users.user_id" in text
    assert "INDIRECT FILTER incremental-only (every column)  stg_events.occurred_at" in text


def test_direct_only_trace_is_the_value_path(compiled_mini: Path):
    res = trace(compiled_mini, "user_activity.source_ids", "--direct-only")
    assert res.stdout.splitlines() == [
        "user_activity.source_ids  [model.mini.user_activity]",
        "└── DIRECT AGGREGATION  int_user_events.source_id",
        "    └── DIRECT IDENTITY  stg_events.source_id",
        "        └── DIRECT IDENTITY  raw.events.source_id  (root)",
    ]


def test_downstream_trace_to_the_last_consumers(compiled_mini: Path):
    res = trace(compiled_mini, "raw_users.email", "--downstream")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "raw_users.email  [seed.mini.raw_users]",
        "last consumers: int_user_events.email, users_snapshot.email",
        "└── DIRECT TRANSFORMATION  stg_users.email",
        "    ├── DIRECT IDENTITY  int_user_events.email  (last consumer)",
        "    └── DIRECT IDENTITY  users_snapshot.email  (last consumer)",
    ]


def test_json_trace(compiled_mini: Path):
    res = trace(compiled_mini, "stg_users.email", "--format", "json", "--all")
    doc = json.loads(res.stdout)
    assert "indirect" not in doc
    assert doc["direction"] == "upstream"
    assert doc["column"] == {"node": "model.mini.stg_users", "label": "stg_users", "column": "email"}
    steps = {(s["to"]["node"], s["to"]["column"]): s for s in doc["tree"]["edges"]}
    email = steps[("seed.mini.raw_users", "email")]
    assert email["transformations"] == [{"type": "DIRECT", "subtype": "TRANSFORMATION", "masking": False,
                                         "incremental_only": False}]
    assert steps[("seed.mini.data_sources", "status")]["dataset_wide"] is True
    assert {"node": "seed.mini.raw_users", "label": "raw_users", "column": "email"} in doc["ends"]
    # by default: the DIRECT tree and the INDIRECT inputs per model
    doc = json.loads(trace(compiled_mini, "stg_users.email", "--format", "json").stdout)
    assert [s["to"]["node"] for s in doc["tree"]["edges"]] == ["seed.mini.raw_users"]
    (stg,) = doc["indirect"]
    assert stg["node"] == "model.mini.stg_users"
    assert {"subtype": "FILTER", "columns": [{"node": "seed.mini.data_sources", "label": "data_sources",
                                              "column": "status"}]} in [
        dict(e, columns=[c for c in e["columns"] if c["column"] == "status"]) for e in stg["edges"]]


def test_missing_column_is_exit_2_with_the_closest_names(compiled_mini: Path):
    res = trace(compiled_mini, "user_activity.source_idz")
    assert res.returncode == 2
    assert res.stdout == ""
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and res.stderr.splitlines()[-1] == errors[0]
    assert "user_activity has no column 'source_idz'" in errors[0]
    assert "user_activity.source_ids" in res.stderr
    res = trace(compiled_mini, "user_activty.n_events")
    assert res.returncode == 2 and "user_activity.n_events" in res.stderr and "Traceback" not in res.stderr


def test_trace_of_a_python_model_column_says_it_has_no_inputs(compiled_mini: Path):
    res = trace(compiled_mini, "user_scores.score")
    assert res.returncode == 0
    assert "(no inputs" in res.stdout
