"""sql.py: dialect names, relation normalization, the Catalog, parsing errors."""

from __future__ import annotations

import pytest

from lineage_tools.errors import DialectError, SqlError, UserError
from lineage_tools.lineage import analyze
from lineage_tools.records import ReasonCode, Status
from lineage_tools.sql import Catalog, check_dialect, normalize_relation, parse_statement


def test_check_dialect_accepts_known_names_in_any_case():
    assert check_dialect("duckdb") == "duckdb"
    assert check_dialect(" Snowflake ") == "snowflake"


def test_check_dialect_suggests_close_names():
    with pytest.raises(DialectError, match="duckdb") as info:
        check_dialect("duckbd")
    assert isinstance(info.value, UserError)  # the CLI turns it into exit code 2


def test_analyze_raises_for_an_unknown_dialect():
    with pytest.raises(DialectError):
        analyze("select 1", dialect="nosuchsql", catalog=Catalog("duckdb"))


@pytest.mark.parametrize(
    ("name", "dialect", "expected"),
    [
        ('"Pipeline"."main"."Stg"', "duckdb", "pipeline.main.stg"),  # DuckDB: case-insensitive
        ("Pipeline.Main.Stg", "duckdb", "pipeline.main.stg"),
        ('"Pipeline".main.Stg', "postgres", '"Pipeline".main.stg'),  # quoted keeps its case
        ('"Pipeline".main.Stg', "snowflake", '"Pipeline".MAIN.STG'),  # unquoted uppercases
        ("'/data/raw users.parquet'", "duckdb", '"/data/raw users.parquet"'),  # a file read as a table
        ("users", "duckdb", "users"),
    ],
)
def test_normalize_relation_follows_the_dialect(name, dialect, expected):
    assert normalize_relation(name, dialect) == expected


def test_normalize_relation_rejects_garbage():
    with pytest.raises(SqlError):
        normalize_relation("", "duckdb")


def test_catalog_normalizes_names_and_keeps_column_order():
    cat = Catalog("duckdb", {'"Pipeline"."Main"."Users"': {"ID": "INTEGER", "Name": None}})
    assert cat.columns("pipeline.main.users") == ("id", "name")
    assert "PIPELINE.MAIN.USERS" in cat
    assert "pipeline.main.orders" not in cat
    assert cat.columns("pipeline.main.orders") is None


def test_catalog_resolves_short_names_when_unique():
    cat = Catalog("duckdb")
    cat.add("pipeline.main.users", [("id", "INTEGER")])
    cat.add("pipeline.staging.users", [("id", "INTEGER")])
    cat.add("pipeline.main.orders", [("order_id", None)])
    assert cat.resolve("orders") == "pipeline.main.orders"
    assert cat.resolve("main.users") == "pipeline.main.users"
    assert cat.resolve("users") is None  # ambiguous: two schemas hold it
    assert "users" not in cat


def test_catalog_accepts_relations_of_mixed_depth():
    cat = Catalog("duckdb", {"t": ["a"]})
    cat.add("db.s.u", [("b", None)])  # deeper than the first: the schema is rebuilt
    cat.add("v", [("c", "INT")])
    assert cat.columns("t") == ("a",)
    assert cat.columns("db.s.u") == ("b",)
    result = analyze("select * from t, u, v", dialect="duckdb", catalog=cat)
    assert result.columns == ("a", "b", "c")
    assert result.status is Status.FULL
    assert {e.source.qualified for e in result.edges} == {"t.a", "db.s.u.b", "v.c"}


def test_catalog_add_replaces_columns():
    cat = Catalog("duckdb", {"main.t": ["a"]})
    cat.add("main.t", [("a", None), ("b", None)])
    assert cat.columns("main.t") == ("a", "b")
    assert analyze("select * from main.t", dialect="duckdb", catalog=cat).columns == ("a", "b")


def test_parse_statement_returns_one_statement():
    stmt = parse_statement("select 1 as x;\n", "duckdb")
    assert stmt.sql() == "SELECT 1 AS x"


def test_parse_statement_reports_the_parser_message_and_line():
    with pytest.raises(SqlError) as info:
        parse_statement("select a,\n  b\nfrom t where (\n", "duckdb")
    assert info.value.line == 3
    assert "missing" in str(info.value) or "Expected" in str(info.value)


def test_parse_statement_reports_tokenizer_errors_with_a_line():
    with pytest.raises(SqlError) as info:
        parse_statement("select 1,\n 'unterminated", "duckdb")
    assert info.value.line == 2


def test_parse_statement_refuses_two_statements():
    with pytest.raises(SqlError, match="one statement") as info:
        parse_statement("select 1;\nselect 2", "duckdb")
    assert info.value.line == 2


def test_analyze_never_raises_on_bad_sql():
    result = analyze("select from where", dialect="duckdb", catalog=Catalog("duckdb"))
    assert result.status is Status.FAILED
    assert result.reasons[0].code is ReasonCode.PARSE_ERROR


def test_analyze_reports_statements_without_lineage():
    result = analyze("drop table t", dialect="duckdb", catalog=Catalog("duckdb"))
    assert result.status is Status.FAILED
    assert result.reasons[0].code is ReasonCode.UNSUPPORTED


def test_a_long_cte_chain_is_traced_without_deep_recursion():
    catalog = Catalog("duckdb", {"t": ["a", "b"]})
    ctes = ["c0 as (select a, b from t)"]
    ctes += [f"c{i} as (select a + 1 as a, b from c{i - 1})" for i in range(1, 600)]
    result = analyze(f"with {', '.join(ctes)} select a, b from c599", dialect="duckdb",
                     catalog=catalog)
    assert result.status is Status.FULL
    assert {(e.target, e.source.qualified, e.subtype.value) for e in result.edges} == {
        ("a", "t.a", "TRANSFORMATION"), ("b", "t.b", "IDENTITY")
    }


def test_absurd_nesting_is_a_parse_failure_not_a_crash():
    sql = "select " + "(" * 5000 + "a" + ")" * 5000 + " from t"
    result = analyze(sql, dialect="duckdb", catalog=Catalog("duckdb", {"t": ["a"]}))
    assert result.status is Status.FAILED
    assert result.reasons[0].code is ReasonCode.PARSE_ERROR


def test_transpile_runs_spark_provenance_and_hash_sql_in_duckdb_with_the_same_answers():
    import duckdb

    from lineage_tools.sql import transpile

    # the shapes macros/spark/*.sql emit: provenance lists, list membership, the 128-bit MD5 bucket
    le_hex = "array_join(reverse(regexp_extract_all(md5(cast(k as string)), '(..)', 1)), '')"
    bucket = (f"cast(pmod(pmod(cast(conv(substr({le_hex}, 1, 16), 16, 10) as decimal(20, 0)), 97) * {2**64 % 97}"
              f" + pmod(cast(conv(substr({le_hex}, 17, 16), 16, 10) as decimal(20, 0)), 97), 97) as integer)")
    spark = (f"select k, {bucket} as bucket, coalesce(array_sort(collect_set(s)), cast(array() as array<string>)) as ids,"
             " array_contains(array_sort(collect_set(s)), 'b') as has_b, pmod(-7, 3) as p"
             " from t group by k")
    sql = transpile(spark, "spark", "duckdb")
    assert "conv" not in sql.lower() and "pmod" not in sql.lower()
    con = duckdb.connect()
    con.execute("create table t as select (i % 300)::varchar as k, case when i // 300 = 3 or"
                " (i % 2 = 0 and i // 300 = 1) then null else chr(97 + (i // 300)::int) end as s from range(1200) r(i)")
    rows = con.execute(f"select k, bucket, ids, has_b, p, md5_number(k) % 97 from ({sql})").fetchall()
    assert len(rows) == 300
    assert all(bucket == want for _k, bucket, *_rest, want in rows)  # DuckDB's own md5_number bucket
    assert {tuple(ids) for _k, _b, ids, *_ in rows} == {("a", "b", "c"), ("a", "c")}
    assert all(has_b == ("b" in ids) and p == 2 for _k, _b, ids, has_b, p, _w in rows)  # Spark's pmod(-7, 3) = 2


def test_transpile_reports_sql_it_cannot_parse_and_leaves_other_conv_bases_alone():
    from lineage_tools.sql import transpile

    with pytest.raises(SqlError):
        transpile("select from where (", "spark", "duckdb")
    with pytest.raises(DialectError):
        transpile("select 1", "sparkk", "duckdb")
    assert "CONV(x, 2, 10)" in transpile("select conv(x, 2, 10) from t", "spark", "duckdb")
    assert transpile("select pmod(a, 7) from t", "spark", "spark") == "SELECT PMOD(a, 7) FROM t"


@pytest.mark.parametrize(
    ("name", "dialect"),
    [('"db"."main"."it\'s"', "duckdb"), ('"Pipeline".main.Stg', "postgres"), ("'/tmp/raw/x.parquet'", "duckdb"),
     ('main."select"', "duckdb"), ('"x.y".z', "duckdb")],
)
def test_relation_names_round_trip(name, dialect):
    """The dotted name reads back as the same parts, and a statement reading the relation names
    it the same way, so edges map back to the dbt node whatever its name holds."""
    from lineage_tools.lineage import analyze
    from lineage_tools.sql import relation_parts

    normalized = normalize_relation(name, dialect)
    assert normalize_relation(normalized, dialect) == normalized
    assert relation_parts(normalized, dialect) == relation_parts(name, dialect)
    catalog = Catalog(dialect)
    catalog.add(normalized, [("a", None)])
    lineage = analyze(f"select a from {name}", dialect=dialect, catalog=catalog)
    assert {e.source.relation for e in lineage.edges} == {normalized}


def test_reasons_come_once_per_code_and_column() -> None:
    """A column named three times, and an unknown column read five times, give one reason each."""
    catalog = Catalog("duckdb", {"t": ["a", "b"]})
    sql = ("select a, b as a, a + 1 as a, z, z + 1 as z1, upper(z) as z2 from t "
           "where z > 1 and z < 9 group by all having count(z) > 0")
    result = analyze(sql, dialect="duckdb", catalog=catalog)
    keys = [(r.code.value, r.column) for r in result.reasons]
    assert keys == [("duplicate_column", "a"), ("unresolved_column", "z")]
