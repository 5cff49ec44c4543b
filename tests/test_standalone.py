"""`lineage_tools.standalone`: statements of a file, named views chained, schema shapes."""

from __future__ import annotations

import pytest

from lineage_tools import standalone
from lineage_tools.errors import UserError
from lineage_tools.records import Status, Subtype


def field_edges(result) -> set[tuple]:
    return {
        (st.lineage.target, e.target, e.source.relation, e.source.column, e.subtype)
        for st in result.statements
        for e in st.lineage.edges
        if e.target is not None
    }


def test_views_are_chained_to_base_tables() -> None:
    result = standalone.analyze_text(
        "select total from z",
        schema={"x": ["a", "b"]},
        views={"y": "select a, b from x where b > 0", "z": "select sum(a) as total from y"},
    )
    st = result.statements[0]
    assert st.lineage.columns == ("total",)
    assert field_edges(result) == {(None, "total", "x", "a", Subtype.AGGREGATION)}
    # the filter inside view y still influences every row of the result
    assert any(e.target is None and e.source.column == "b" and e.subtype is Subtype.FILTER
               for e in st.lineage.edges)


def test_view_star_expands_once_its_input_is_known() -> None:
    result = standalone.analyze_text(
        "select a from z", schema={"x": {"a": "int"}},
        views={"z": "select * from y", "y": "select * from x"},
    )
    assert field_edges(result) == {(None, "a", "x", "a", Subtype.IDENTITY)}
    assert result.status is Status.FULL


def test_statements_split_outside_quotes_and_comments() -> None:
    sql = "select 'a;b' as s from t; -- c;\n/* d; */ select \"x;y\" from u;\n\n  ;"
    assert [line for line, _ in standalone.split_statements(sql)] == [1, 1]
    assert len(standalone.split_statements("create function f() as $$ select 1; $$; select 2")) == 2


def test_merge_that_writes_no_column_is_skipped_and_reported() -> None:
    result = standalone.analyze_text(
        "merge into t using s on t.k = s.k when matched then delete;\n"
        "insert into t2 select a from t1", schema={"t1": ["a"]})
    assert [(st.index, st.kind) for st in result.statements] == [(2, "insert")]
    assert [(x.index, x.line, x.kind) for x in result.skipped] == [(1, 1, "merge")]


def test_update_is_traced_as_the_insert_it_amounts_to() -> None:
    result = standalone.analyze_text(
        "update t set a = s.b from s where s.id = t.id;\ninsert into t2 select a from t1",
        schema={"t1": ["a"]})
    assert [(st.index, st.kind) for st in result.statements] == [(1, "update"), (2, "insert")]
    update = result.statements[0].lineage
    assert update.target == "t"
    assert {(e.target, e.source.qualified) for e in update.edges if e.target} == {("a", "s.b")}


def test_bad_schema_shape_names_the_key() -> None:
    with pytest.raises(UserError, match="'db.main.users'"):
        standalone.schema_from_mapping({"db": {"main": {"users": [1]}}}, "s.json")


def test_pivot_and_unpivot_statements_are_traced() -> None:
    """DuckDB's PIVOT / UNPIVOT statements are statements of their own: `sql` traces them."""
    result = standalone.analyze_text(
        "pivot (select k, b, a from t) on b in ('x', 'y') using max(a) group by k;\n"
        "unpivot t on a, c into name n value v", schema={"t": ["k", "a", "b", "c"]})
    first, second = result.statements
    assert first.lineage.columns == ("k", "x", "y")
    assert (None, "x", "t", "a", Subtype.AGGREGATION) in field_edges(result)
    assert second.lineage.columns == ("k", "b", "n", "v")
