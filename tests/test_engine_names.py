"""Unaliased select items are named as DuckDB names them, so that the columns lineage gives a
model are the columns the warehouse (and dbt's catalog.json) has. Checked against DuckDB
itself: each expression is run and the name DuckDB gives its column compared (DuckDB resolves
names case-insensitively, and so does the engine: compared without case)."""

from __future__ import annotations

import duckdb
import pytest
import sqlglot

from lineage_tools.lineage import analyze, engine_name
from lineage_tools.sql import Catalog

EXPRESSIONS = [
    "upper(b)", "UPPER(b)", "lower(b) || 'x'", "a + c", "a+c*2", "(a + c)", "a - -c", "-a", "-1",
    "not (a > 1)", "a > 1 and c < 2 or k = 3", "a > 1 and k > 2 and b = 'x'", "a::varchar",
    "cast(a as varchar)", "cast(a as decimal(10,2))", "try_cast(b as int)", "a::int[]", "'completed'",
    "'it''s'", "1", "1.5", "true", "null", "date '2020-01-01'", "case when a > 1 then b else 'x' end",
    "case a when 1 then 'one' when 2 then 'two' end", "case when a > 1 then b end", "coalesce(a, c, 0)",
    "ifnull(a, 0)", "nullif(a, 0)", "a is null", "a is not null", "a in (1, 2)", "a not in (1, 2)",
    "a between 1 and 2", "a not between 1 and 2", "b like 'x%'", "b not like 'x%'", "b ilike 'x%'",
    "a = c", "a <> c", "a >= c", "a / 2", "a // 2", "a % 2", "[a, c]", "{'k': a, 'j': b}",
    "struct_pack(k := a)", "l[1]", "l[1:2]", "st['x']", "extract(year from d)", "year(d)",
    "date_trunc('day', ts)", "now()", "current_date", "if(a > 1, 2, 3)", "concat(b, 'x')",
    "length(b)", "substring(b, 1, 2)", "trim(b)", "round(a, 2)", "greatest(a, c)",
    "list_transform(l, lambda x: x + 1)", "row_number() over (partition by a order by c)",
    "sum(a) over ()", "count(*) over (partition by b)", "lag(a) over (order by k)", "md5(b)", "b || 'x' || b", "~a", "a & c",
    "$$x$$", "count(*)", "count(a)", "count(distinct a)", "sum(a)", "avg(a)::int",
    "max(a) filter (where c > 1)", "string_agg(b, ',')", "string_agg(b, ',' order by a)",
    "list(b order by a desc)", "percentile_cont(0.5) within group (order by a)",
    "percentile_disc(0.5) within group (order by a desc)", "mode() within group (order by a)",
    "median(a)", "quantile_cont(a, 0.9)", "array_agg(distinct b)", "bool_and(a > 1)", "first(a)",
    "arg_max(b, a)", "sum(a) / count(*)", "list_distinct(list(b))",
]
AGGREGATES = ("count", "sum", "avg", "max", "string_agg", "list", "percentile", "mode", "median",
              "quantile", "array_agg", "bool_and", "first", "arg_max")
TABLE = "create table t (k int, a int, b varchar, c int, d date, ts timestamp, l int[], st struct(x int, y varchar))"


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    con.execute(TABLE)
    yield con
    con.close()


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_engine_name_is_duckdbs_name(con, expression: str) -> None:
    sql = f"select {expression} from t"
    want = con.execute(sql).description[0][0]
    item = sqlglot.parse_one(sql, read="duckdb").expressions[0]
    assert engine_name(item, sql, "duckdb").lower() == want.lower()


def test_a_model_of_unaliased_expressions_has_the_warehouses_columns(con) -> None:
    sql = ("select k, upper(b), a + c, case when a > 1 then 'big' end, 'completed', count(*) over (), "
           "x.\"lower(b)\" from t, (select lower(b) from t) as x")
    catalog = Catalog("duckdb", {"t": {n: None for n in ("k", "a", "b", "c", "d", "ts", "l", "st")}})
    got = analyze(sql, dialect="duckdb", catalog=catalog).columns
    want = [d[0] for d in con.execute(sql).description]
    assert list(got[:-1]) == want[:-1]  # as DuckDB gives them
    assert got[-1] == want[-1].lower()  # read through the derived table: resolved without case
