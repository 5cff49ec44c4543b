"""`lineage-tools check`: contract rules 3 and 4 on deliberately broken copies of models.

The broken models live in tests/fixtures/broken_models/; each header comment says what is
wrong. They are dropped into a copy of the pipeline, which is compiled once by the CLI.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import copy_project, run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "broken_models"

# (model, column, rule, root, line in the model file): exactly what each broken model gives.
EXPECTED = {
    ("broken_join_drops_label", "is_job_seeker", "3", "raw_job_search_labels", 18),
    ("broken_agg_no_collect", "account_id", "3", "raw_job_search_labels", 12),
    ("broken_literal_source_id", "label_source_id", "4", None, 14),
    ("broken_hashed_source_id", "source_id", "4", "raw_users_web", 14),
    ("broken_registry_source_id", "registry_source_id", "4", None, 18),
    # a PIVOT statement is traced like the PIVOT clause: the labels' provenance is not carried
    ("broken_pivot_statement", "account_id", "3", "raw_job_search_labels", 5),
    # lineage errors: what lineage cannot see fails the check, with the file's line
    ("broken_does_not_parse", None, "lineage", None, 9),
    ("broken_missing_column", "emial", "lineage", None, 6),
    # rule 5: a provenance-named column that reads source ids but changes or drops some
    ("broken_upper_source_id", "source_id", "5", "raw_job_search_labels", 15),
    ("broken_concat_source_id", "source_id", "5", "raw_job_search_labels", 14),
    ("broken_string_agg_source_ids", "source_ids", "5", "raw_job_search_labels", 15),
    ("broken_any_value_source_id", "source_id", "5", "raw_job_search_labels", 14),
    ("broken_max_source_id", "label_source_id", "5", "raw_job_search_labels", 14),
    ("broken_first_value_source_id", "source_id", "5", "raw_job_search_labels", 14),
    ("broken_coalesce_join_source_id", "source_id", "5", "raw_job_search_labels", 19),
}

# what each rule-5 finding must name: the step that changes the ids
TRANSFORMATIONS = {
    "broken_upper_source_id": "upper",
    "broken_concat_source_id": "||",
    "broken_string_agg_source_ids": "string_agg",
    "broken_any_value_source_id": "any_value",
    "broken_max_source_id": "max",
    "broken_first_value_source_id": "first_value",
    "broken_coalesce_join_source_id": "coalesce",
}


@pytest.fixture(scope="module")
def broken_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("broken") / "pipeline")
    dest = project / "models" / "broken"
    dest.mkdir()
    for f in FIXTURES.glob("*.sql"):
        shutil.copy2(f, dest / f.name)
    return project


@pytest.fixture(scope="module")
def broken_json(broken_project: Path) -> dict:
    proc = run_cli("check", "--format", "json", "--project-dir", str(broken_project), cwd=broken_project)
    assert proc.returncode == 1, proc.stderr
    return json.loads(proc.stdout)


def _errors(data: dict) -> list[dict]:
    return [f for f in data["findings"] if f["severity"] == "error"]


@pytest.mark.dbt
def test_each_broken_model_gives_exactly_its_finding(broken_json: dict) -> None:
    errors = _errors(broken_json)
    got = {(f["model"], f["column"], f["rule"], f["root"], f["line"]) for f in errors}
    assert got == EXPECTED
    assert len(errors) == len(EXPECTED)
    assert all(f["path"] == f"models/broken/{f['model']}.sql" for f in broken_json["findings"])


@pytest.mark.dbt
def test_clean_model_and_pipeline_models_give_no_finding(broken_json: dict) -> None:
    models = {f["model"] for f in broken_json["findings"]}
    assert models == {m for m, *_ in EXPECTED} | {"exempt_unparsable"}


@pytest.mark.dbt
def test_an_exempt_model_gives_warnings_that_show_the_exemption(broken_json: dict) -> None:
    """`meta: {lineage: {exempt: "why"}}` turns the model's lineage errors into warnings and
    says so; without it the same SQL is an error (broken_does_not_parse)."""
    found = [f for f in broken_json["findings"] if f["model"] == "exempt_unparsable"]
    assert {f["severity"] for f in found} == {"warning"}
    messages = " | ".join(f["message"] for f in found)
    assert "lineage FAILED (parse_error, line 9)" in messages
    assert "exempts this model from lineage checks: uses a DuckDB feature the lineage parser lacks" in messages
    # 19 pipeline models + 6 fixtures, all checked
    assert broken_json["models_checked"] >= len(list(FIXTURES.glob("*.sql")))


@pytest.mark.dbt
def test_json_shape(broken_json: dict) -> None:
    assert set(broken_json) == {"models_checked", "findings"}
    for f in broken_json["findings"]:
        assert {"model", "column", "rule", "root", "message", "severity"} <= set(f)


@pytest.mark.dbt
def test_messages_name_what_is_lost(broken_json: dict) -> None:
    by_model = {f["model"]: f["message"] for f in _errors(broken_json)}
    assert "is_job_seeker" in by_model["broken_join_drops_label"]
    assert "raw_job_search_labels" in by_model["broken_join_drops_label"]
    assert "masking" in by_model["broken_hashed_source_id"]
    assert "literal" in by_model["broken_literal_source_id"]
    assert "registry" in by_model["broken_registry_source_id"]
    assert "lineage FAILED (parse_error, line 9)" in by_model["broken_does_not_parse"]
    assert "emial" in by_model["broken_missing_column"]
    assert "(did you mean: email?)" in by_model["broken_missing_column"]
    for model, step in TRANSFORMATIONS.items():
        assert step in by_model[model], (model, by_model[model])
        assert "not provenance" in by_model[model]


@pytest.mark.dbt
def test_text_output_names_each_lineage_error_on_its_own_line(broken_project: Path, broken_json: dict) -> None:
    proc = run_cli("check", "--select", "broken_does_not_parse broken_missing_column broken_pivot_statement",
                   "--project-dir", str(broken_project), cwd=broken_project)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 4, proc.stdout  # three findings, one summary line
    assert lines[-1] == "3 models checked: 3 errors, 0 warnings"
    by_file = {line.partition(": ")[0]: line for line in lines[:-1]}
    assert "error [lineage]" in by_file["models/broken/broken_does_not_parse.sql:9"]
    assert "error [lineage]" in by_file["models/broken/broken_missing_column.sql:6"]
    assert "error [rule 3]" in by_file["models/broken/broken_pivot_statement.sql:5"]



@pytest.mark.dbt
def test_select_limits_the_check(broken_project: Path, broken_json: dict) -> None:
    proc = run_cli("check", "--select", "clean_join_keeps_both", "--project-dir", str(broken_project),
                   cwd=broken_project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 model checked: no findings" in proc.stdout
    proc = run_cli("check", "--select", "broken_join_drops_label", "--format", "json",
                   "--project-dir", str(broken_project), cwd=broken_project)
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["models_checked"] == 1
    assert [(f["model"], f["rule"]) for f in data["findings"]] == [("broken_join_drops_label", "3")]


@pytest.mark.dbt
def test_github_annotations(broken_project: Path, broken_json: dict) -> None:
    proc = run_cli("check", "--format", "github", "--project-dir", str(broken_project), cwd=broken_project)
    assert proc.returncode == 1
    lines = [line for line in proc.stdout.splitlines() if line.startswith("::error")]
    assert len(lines) == len(EXPECTED)
    assert "::error file=models/broken/broken_join_drops_label.sql,line=18,title=" in proc.stdout
    for line in lines:
        head, _, message = line[2:].partition("::")
        assert head.startswith("error file=models/broken/")
        assert message and "\n" not in message


@pytest.mark.dbt
def test_pipeline_passes_check(compiled_pipeline: Path) -> None:
    """The contract holds on the whole pipeline: CI runs this check (make check)."""
    proc = run_cli("check", "--format", "json", "--project-dir", str(compiled_pipeline), cwd=compiled_pipeline)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert data["findings"] == []
    assert data["models_checked"] > 0


@pytest.mark.dbt
def test_check_unknown_select_is_bad_input(compiled_pipeline: Path) -> None:
    proc = run_cli("check", "--select", "no_such_model", "--project-dir", str(compiled_pipeline),
                   cwd=compiled_pipeline)
    assert proc.returncode == 2
    assert "no_such_model" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.dbt
def test_trace_of_a_model_whose_lineage_failed_says_so(broken_project: Path, broken_json: dict) -> None:
    """A parse failure is not a model without columns: trace names the failure and its line."""
    proc = run_cli("trace", "broken_does_not_parse.email", "--project-dir", str(broken_project),
                   cwd=broken_project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "lineage FAILED (parse_error, line 9)" in proc.stdout
    assert "no inputs: a root or a literal" not in proc.stdout
    proc = run_cli("trace", "broken_does_not_parse.email", "--format", "json",
                   "--project-dir", str(broken_project), cwd=broken_project)
    tree = json.loads(proc.stdout)["tree"]
    assert tree["lineage_failed"].startswith("lineage FAILED (parse_error, line 9): ")


@pytest.mark.dbt
def test_report_names_the_failure_and_its_line(broken_project: Path, broken_json: dict, tmp_path: Path) -> None:
    proc = run_cli("report", "-o", str(tmp_path), "--project-dir", str(broken_project), cwd=broken_project)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    markdown = (tmp_path / "lineage.md").read_text()
    line = next(x for x in markdown.splitlines() if "broken_does_not_parse" in x and "FAILED" in x)
    assert "parse\\_error" in line and "(line 9)" in line
