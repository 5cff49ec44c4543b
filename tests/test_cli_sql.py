"""`lineage-tools sql FILE`: column lineage of a plain SQL file, run as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli


def sql_file(tmp_path: Path, text: str, name: str = "query.sql") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def edges_of(stdout: str) -> set[tuple]:
    """(target_table, target_column, source_table, source_column, subtype) of every edge."""
    data = json.loads(stdout)
    return {
        (e["target_table"], e["target_column"], e["source_table"], e["source_column"], e["subtype"])
        for e in data["edges"]
    }


def run_json(*args: str, **kwargs) -> dict:
    proc = run_cli("sql", *args, "--format", "json", **kwargs)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def assert_bad_input(proc, *words: str) -> None:
    """Exit 2, one line on stderr naming the culprit, no traceback, nothing on stdout."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr
    assert len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, (word, err)
    assert proc.stdout == ""


# --------------------------------------------------------------------------------- edges


def test_insert_select_names_written_table_and_typed_edges(tmp_path: Path) -> None:
    path = sql_file(
        tmp_path,
        """
        insert into mart.orders_enriched
        select o.order_id, upper(c.name) as customer_name, o.amount
        from raw.orders as o
        join raw.customers as c on o.customer_id = c.id
        where o.status = 'done'
        """,
    )
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({
        "raw.orders": ["order_id", "customer_id", "amount", "status"],
        "raw.customers": {"id": "int", "name": "varchar"},
    }))
    data = run_json(str(path), "--schema", str(schema))
    edges = {(e["target_table"], e["target_column"], e["source_table"], e["source_column"],
              e["type"], e["subtype"]) for e in data["edges"]}
    assert ("mart.orders_enriched", "order_id", "raw.orders", "order_id", "DIRECT", "IDENTITY") in edges
    assert ("mart.orders_enriched", "customer_name", "raw.customers", "name", "DIRECT",
            "TRANSFORMATION") in edges
    assert ("mart.orders_enriched", "amount", "raw.orders", "amount", "DIRECT", "IDENTITY") in edges
    # the join keys and the filter influence every row: dataset-wide INDIRECT edges
    assert ("mart.orders_enriched", None, "raw.orders", "customer_id", "INDIRECT", "JOIN") in edges
    assert ("mart.orders_enriched", None, "raw.customers", "id", "INDIRECT", "JOIN") in edges
    assert ("mart.orders_enriched", None, "raw.orders", "status", "INDIRECT", "FILTER") in edges
    # no column feeds an output it does not reach
    assert not any(t == "order_id" and s == "raw.customers" for _, t, s, *_ in edges)
    assert data["status"] == "FULL"
    assert [s["columns"] for s in data["statements"]] == [["order_id", "customer_name", "amount"]]
    for e in data["edges"]:
        assert set(e) >= {"target_table", "target_column", "source_table", "source_column",
                          "type", "subtype", "masking"}


def test_bare_select_has_no_target_table_and_case_condition_is_conditional(tmp_path: Path) -> None:
    path = sql_file(
        tmp_path,
        "select id, case when score > 10 then 'high' else label end as band from events",
    )
    edges = edges_of(run_cli("sql", str(path), "--format", "json").stdout)
    assert (None, "id", "events", "id", "IDENTITY") in edges
    assert (None, "band", "events", "label", "TRANSFORMATION") in edges or (
        None, "band", "events", "label", "IDENTITY") in edges
    assert (None, "band", "events", "score", "CONDITIONAL") in edges
    assert not any(t == "band" and c == "id" for _, t, _, c, _ in edges)


def test_aggregate_and_group_by(tmp_path: Path) -> None:
    path = sql_file(
        tmp_path,
        "create table daily as select day, count(*) as n, sum(amount) as total "
        "from sales group by day",
    )
    data = run_json(str(path))
    edges = {(e["target_table"], e["target_column"], e["source_column"], e["subtype"])
             for e in data["edges"]}
    assert ("daily", "total", "amount", "AGGREGATION") in edges
    assert ("daily", "day", "day", "IDENTITY") in edges
    assert ("daily", None, "day", "GROUP_BY") in edges
    assert data["statements"][0]["kind"] == "create"


def test_schema_expands_star(tmp_path: Path) -> None:
    path = sql_file(tmp_path, "select * from main.users")
    schema = sql_file(tmp_path, json.dumps({"main.users": ["id", "email"]}), "schema.json")
    data = run_json(str(path), "--schema", str(schema))
    assert data["statements"][0]["columns"] == ["id", "email"]
    assert {(e["target_column"], e["source_column"]) for e in data["edges"]} == {
        ("id", "id"), ("email", "email")}


def test_temp_table_created_earlier_feeds_later_statements(tmp_path: Path) -> None:
    path = sql_file(
        tmp_path,
        """
        create temp table recent as
        select user_id, amount * 100 as cents from payments;

        set threads = 2;

        insert into summary
        select * from recent;
        """,
    )
    data = run_json(str(path))
    assert [(s["index"], s["kind"], s["target_table"]) for s in data["statements"]] == [
        (1, "create", "recent"), (3, "insert", "summary")]
    assert data["statements"][1]["line"] == 7
    assert data["statements"][1]["columns"] == ["user_id", "cents"]
    edges = edges_of(json.dumps(data))
    assert ("recent", "cents", "payments", "amount", "TRANSFORMATION") in edges
    # the later statement reads the temp table's columns (the `*` expanded through it)
    assert ("summary", "cents", "recent", "cents", "IDENTITY") in edges
    assert ("summary", "user_id", "recent", "user_id", "IDENTITY") in edges


def test_declared_table_expands_star_and_values_insert_is_skipped(tmp_path: Path) -> None:
    path = sql_file(
        tmp_path,
        "create table staging (id int, email varchar);\n"
        "insert into staging values (1, 'a@b');\n"
        "insert into users select * from staging;\n",
    )
    data = run_json(str(path))
    assert [s["index"] for s in data["statements"]] == [3]
    assert [x["kind"] for x in data["skipped"]] == ["create", "insert"]
    assert {(e["target_column"], e["source_table"], e["source_column"]) for e in data["edges"]} == {
        ("id", "staging", "id"), ("email", "staging", "email")}


def test_stdin_and_text_format(tmp_path: Path) -> None:
    proc = run_cli("sql", "-", "--format", "text", input="insert into t2 select a as b from t1\n")
    assert proc.returncode == 0, proc.stderr
    assert "t2.b" in proc.stdout and "t1.a" in proc.stdout and "IDENTITY" in proc.stdout
    line = next(ln for ln in proc.stdout.splitlines() if "t2.b" in ln)
    assert line.index("t2.b") < line.index("<-") < line.index("t1.a")


def test_dialect_option_changes_parsing(tmp_path: Path) -> None:
    path = sql_file(tmp_path, "select `Order Id` as order_id from `proj.ds.orders`")
    data = run_json(str(path), "--dialect", "bigquery")
    # BigQuery: backticks quote a whole dotted path; column names are case-insensitive
    assert {(e["target_column"], e["source_table"], e["source_column"]) for e in data["edges"]} == {
        ("order_id", "proj.ds.orders", "order id")}


def test_output_file_is_written(tmp_path: Path) -> None:
    path = sql_file(tmp_path, "select a from t")
    out = tmp_path / "out" / "edges.json"
    proc = run_cli("sql", str(path), "--format", "json", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert json.loads(out.read_text())["edges"][0]["source_column"] == "a"


# --------------------------------------------------------------------------------- bad input


def test_unknown_dialect(tmp_path: Path) -> None:
    path = sql_file(tmp_path, "select 1 as x")
    assert_bad_input(run_cli("sql", str(path), "--dialect", "duckdbb"), "duckdbb")


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sql"
    assert_bad_input(run_cli("sql", str(missing)), str(missing))


def test_not_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.sql"
    path.write_bytes("select 'caf\u00e9' as x".encode("latin-1"))
    assert_bad_input(run_cli("sql", str(path)), str(path), "UTF-8")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", ["not valid JSON"]),
        ('["users"]', ["expected an object"]),
        ('{"main.users": "id"}', ["main.users"]),
        ('{"main.users": {"id": 3}}', ["main.users", "id"]),
        ('{"main.users": []}', ["main.users"]),
        ('{"a.b.c.d": ["x"]}', ["a.b.c.d"]),
    ],
)
def test_bad_schema(tmp_path: Path, content: str, words: list[str]) -> None:
    path = sql_file(tmp_path, "select id from main.users")
    schema = sql_file(tmp_path, content, "schema.json")
    assert_bad_input(run_cli("sql", str(path), "--schema", str(schema)), str(schema), *words)


def test_missing_schema_file(tmp_path: Path) -> None:
    path = sql_file(tmp_path, "select id from main.users")
    assert_bad_input(run_cli("sql", str(path), "--schema", str(tmp_path / "s.json")), "s.json")


def test_parse_error_names_file_and_line(tmp_path: Path) -> None:
    path = sql_file(tmp_path, "-- a query\n\nselect (b from u\n")
    proc = run_cli("sql", str(path))
    assert_bad_input(proc, f"{path}:3")


def test_unparsable_statement_in_a_script_is_skipped_with_a_warning(tmp_path: Path) -> None:
    path = sql_file(tmp_path, "select a from t;\n\nselect (b from u;\ninsert into v select c from w;\n")
    proc = run_cli("sql", str(path), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert f"{path}:3" in proc.stderr and "skipped" in proc.stderr
    data = json.loads(proc.stdout)
    assert [s["index"] for s in data["statements"]] == [1, 3]
    assert [(x["index"], x["line"], x["kind"]) for x in data["skipped"]] == [(2, 3, "unparsed")]
    assert (None, "a", "t", "a", "IDENTITY") in edges_of(proc.stdout)
    assert ("v", "c", "w", "c", "IDENTITY") in edges_of(proc.stdout)


def test_file_without_a_query(tmp_path: Path) -> None:
    path = sql_file(tmp_path, "drop table t;")
    assert_bad_input(run_cli("sql", str(path)), str(path))


def test_unknown_format(tmp_path: Path) -> None:
    path = sql_file(tmp_path, "select 1 as x")
    proc = run_cli("sql", str(path), "--format", "yaml")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
