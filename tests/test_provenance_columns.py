"""What a provenance column may be (contract rule 5), without dbt: the provenance view of a
statement (`sql.provenance_view`, real sqlglot) and the per-dialect predicate "this column holds
any of these ids" for every representation (`warehouse.contains_any`, run on real DuckDB).

The same SQL as the pipeline's macros compile to is used for the encode and decode steps of
source masks, on DuckDB and on Spark (what `dbt compile --target spark` writes).
"""

from __future__ import annotations

import duckdb
import pytest

from lineage_tools.errors import UserError
from lineage_tools.sql import provenance_view
from lineage_tools.warehouse import ID, LIST, MASK, contains_any, holds_of_type, source_mask

REGISTRY = "main.data_sources"
def duck_encode(col: str) -> str:
    return (f"case when {col} is null then cast(0 as bigint) else cast(1 as bigint) << coalesce((select "
            f"registered.source_bit from main.data_sources as registered where registered.source_id = {col}), "
            f"error('provenance: source id \"' || {col} || '\" is not in the registry')) end")


def duck_decode(mask: str) -> str:
    return (f"coalesce((select list(registered.source_id order by registered.source_id) from main.data_sources as "
            f"registered where (({mask} >> registered.source_bit) & 1) = 1), cast([] as varchar[]))")


def spark_encode(col: str) -> str:
    return (f"case when {col} is null then cast(0 as bigint) else shiftleft(cast(1 as bigint), coalesce((select "
            f"registered.source_bit from main.data_sources as registered where registered.source_id = {col}), "
            f"raise_error(concat('provenance: ', {col})))) end")


def spark_decode(mask: str) -> str:
    return (f"coalesce((select sort_array(collect_list(registered.source_id)) from main.data_sources as registered "
            f"where (shiftright({mask}, registered.source_bit) & 1) = 1), cast(array() as array<string>))")


def kept(sql: str, dialect: str = "duckdb") -> tuple[str, list[str]]:
    view = provenance_view(sql, dialect, REGISTRY)
    return view.sql, [s.sql for s in view.steps]


# --- the provenance view: which steps keep source ids -----------------------------------------

KEPT = {
    "the id as is": "select t.source_id from t",
    "a cast to text": "select cast(t.source_id as varchar) as source_id from t",
    "a sorted distinct list": "select k, list_sort(list(distinct source_id)) filter (where source_id is not null) as ids from t group by k",
    "a list over a window": "select k, list(source_id) over (partition by k) as ids from t",
    "a union of lists": "select list_sort(list_distinct(flatten([[a, b], coalesce(l, cast([] as varchar[]))]))) as ids from t",
    "a list of lists": "select k, list(ids) as ids from t group by k",
    "unnest": "select unnest(ids) as source_id from t",
    "a union of masks": "select k, coalesce(bit_or(m), cast(0 as bigint)) as m, m1 | m2 as m12 from t group by k, m1, m2",
}

CHANGED = {
    "upper": ("select upper(source_id) as source_id from t", "upper(source_id)"),
    "concatenation": ("select 'src:' || source_id as source_id from t", "'src:' || source_id"),
    "string_agg": ("select k, string_agg(distinct source_id, ',') as ids from t group by k", "string_agg("),
    "any_value": ("select k, any_value(source_id) as source_id from t group by k", "any_value(source_id)"),
    "max": ("select k, max(source_id) as source_id from t group by k", "max(source_id)"),
    "first_value": ("select first_value(source_id) over (partition by k order by d) as source_id from t", "first_value("),
    "coalesce of two sides": ("select coalesce(a.source_id, b.source_id) as source_id from a join b using (k)", "coalesce("),
    "case keeping one side": ("select case when a.x then a.source_id else b.source_id end as source_id from a join b using (k)", "CASE"),
    "a cast to a date": ("select cast(source_id as date) as d from t", "cast(source_id as date)"),
}


@pytest.mark.parametrize("name", sorted(KEPT))
def test_steps_that_keep_source_ids_are_left_as_they_are(name: str) -> None:
    sql, steps = kept(KEPT[name])
    assert steps == []
    assert "MD5" not in sql


@pytest.mark.parametrize("name", sorted(CHANGED))
def test_steps_that_change_or_drop_ids_are_hashed_and_named(name: str) -> None:
    text, step = CHANGED[name]
    sql, steps = kept(text)
    assert sql.count("MD5(") == 1, sql
    assert len(steps) == 1 and step.lower() in steps[0].lower(), steps


def test_a_changing_step_inside_a_collection_is_hashed_where_it_is() -> None:
    sql, steps = kept("select k, list(upper(source_id)) as ids from t group by k")
    assert "ARRAY_AGG(MD5(UPPER(source_id)))" in sql
    assert len(steps) == 1


def test_steps_in_ctes_and_star_replace_are_seen_with_their_lines() -> None:
    view = provenance_view("with u as (\n  select * replace (upper(source_id) as source_id) from t\n),\n"
                           "v as (\n  select k, 'x:' || source_id as s from u\n)\nselect * from v", "duckdb", REGISTRY)
    assert [(s.sql, s.line) for s in view.steps] == [
        ("select * replace (upper(source_id) as source_id) from t", 2),
        ("select k, 'x:' || source_id as s from u", 5)]
    assert view.sql.count("MD5(") == 2


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_encode_and_decode_of_source_masks_stand_for_what_they_read(dialect: str) -> None:
    encode, decode = (duck_encode, duck_decode) if dialect == "duckdb" else (spark_encode, spark_decode)
    sql, steps = kept(f"select k, coalesce(bit_or({encode('t.source_id')}), cast(0 as bigint)) as m, "
                      f"{decode('t.mask')} as ids from t group by k, t.mask", dialect)
    assert steps == []
    assert "data_sources" not in sql  # the registry's ids are not the rows' provenance
    assert "BIT_OR(t.source_id) AS m" in sql and "t.mask AS ids" in sql


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_a_decode_inside_a_changing_step_is_still_a_change(dialect: str) -> None:
    decode = duck_decode if dialect == "duckdb" else spark_decode
    sql, steps = kept(f"select array_to_string({decode('t.mask')}, ',') as source_ids from t", dialect)
    assert len(steps) == 1 and sql.count("MD5(") == 1


def test_an_encode_step_over_another_table_than_the_registry_is_not_recognised() -> None:
    other = duck_encode("t.source_id").replace("main.data_sources", "main.not_the_registry")
    sql, steps = kept(f"select bit_or({other}) as m from t")
    assert len(steps) == 1


def test_a_lookup_in_the_registry_by_another_column_is_no_encode() -> None:
    other = duck_encode("t.source_id").replace("registered.source_id = t.source_id", "registered.vendor = t.source_id")
    sql, steps = kept(f"select bit_or({other}) as m from t")
    assert len(steps) == 1


# --- what a column holds, by warehouse type, and the predicate that reads it ------------------

@pytest.mark.parametrize(("dialect", "data_type", "holds"), [
    ("duckdb", "VARCHAR", ID), ("duckdb", "VARCHAR[]", LIST), ("duckdb", "VARCHAR[][]", "id[][]"),
    ("duckdb", "BIGINT", MASK), ("duckdb", "BIGINT[]", "mask[]"), ("duckdb", "DATE", None),
    ("duckdb", "STRUCT(a VARCHAR)", None), ("spark", "string", ID), ("spark", "array<string>", LIST),
    ("spark", "array<array<string>>", "id[][]"), ("spark", "bigint", MASK), ("spark", "map<string,int>", None),
])
def test_holds_of_type(dialect: str, data_type: str, holds: str | None) -> None:
    assert holds_of_type(dialect, data_type) == holds


BITS = {"web": 0, "mobile": 1, "vendor_a": 2, "vendor_b": 5}


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("""
        create table t as select * from (values
            ('vendor_a', ['web', 'vendor_a'], [['web'], ['vendor_a']], cast(5 as bigint), [cast(1 as bigint), 4]),
            ('web', ['web'], [['web'], []], cast(1 as bigint), [cast(1 as bigint)]),
            ('vendor_b', ['vendor_b'], [[], ['vendor_b']], cast(32 as bigint), [cast(32 as bigint)]),
            (null, null, null, null, null)
        ) as v(id, ids, nested, mask, masks)
    """)
    return c


@pytest.mark.parametrize(("column", "holds"), [("id", ID), ("ids", LIST), ("nested", "id[][]"), ("mask", MASK),
                                               ("masks", "mask[]")])
def test_contains_any_counts_every_representation_exactly(con: duckdb.DuckDBPyConnection, column: str, holds: str) -> None:
    def count(ids: tuple[str, ...]) -> int:
        pred = contains_any("duckdb", column, holds, ids, BITS)
        return con.execute(f"select count(*) from t where {pred}").fetchone()[0]

    assert count(("vendor_a",)) == 1
    assert count(("vendor_b",)) == 1
    assert count(("vendor_a", "vendor_b")) == 2
    assert count(("mobile",)) == 0
    if holds != ID:
        assert count(("web",)) == 2


def test_a_mask_needs_the_registry_bits() -> None:
    assert source_mask(["web", "vendor_b"], BITS) == 33
    with pytest.raises(UserError, match="no source_bit"):
        contains_any("duckdb", "mask", MASK, ["nobody_knows"], BITS)
    with pytest.raises(ValueError):
        contains_any("duckdb", "s", "struct", ["web"])


def test_spark_predicates_read_nested_lists_and_masks() -> None:
    assert contains_any("spark", "n", "id[][]", ["web"]) == (
        "coalesce(arrays_overlap(flatten(cast(`n` as array<array<string>>)), array('web')), false)")
    assert contains_any("spark", "m", MASK, ["vendor_b"], BITS) == "coalesce((cast(`m` as bigint) & 32) <> 0, false)"


def test_a_subquery_on_the_registry_that_reads_no_mask_is_no_decode() -> None:
    sql, steps = kept("select (select list(r.source_id) from main.data_sources as r where r.status = 'active') "
                      "as source_ids from t")
    assert steps == [] and "t." not in sql  # constants from the registry: no provenance, nothing hashed
