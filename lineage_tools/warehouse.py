"""Row counts in the warehouse: read-only, never through a dbt process for DuckDB.

With `provenance.py` deciding WHAT to count, this module does it:

* `count_rows` counts, in ONE query, the total rows and the rows whose provenance columns hold
  any of some source ids, for every relation asked. On a DuckDB target it opens the DuckDB file
  READ-ONLY with DuckDB itself (no dbt, no lock held after it returns); when another process
  holds the file open for writing it raises `WarehouseBusy`, one line saying so. On any other
  adapter (Spark, ...) the query runs through dbt's connection for the target, in a child
  process (`dbt.runner.QuerySession`).
* `contains_any` is the one place where the SQL "this provenance column holds any of these
  ids" is spelled per dialect (DuckDB `list_has_any`, Spark `arrays_overlap`). Ids are
  validated (`registry.check_id_syntax`) before they are quoted into SQL.

>>> contains_any("duckdb", "source_id", False, ("a", "b"))
'coalesce(cast("source_id" as varchar) in (\\'a\\', \\'b\\'), false)'
>>> contains_any("duckdb", "source_ids", True, ("a",))
'coalesce(list_has_any(cast("source_ids" as varchar[]), [\\'a\\']), false)'
>>> contains_any("spark", "source_ids", True, ("a",))
"coalesce(arrays_overlap(cast(`source_ids` as array<string>), array('a')), false)"
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dbt.config import DbtConfig, one_line
from .errors import WarehouseError
from .registry import check_id_syntax

log = logging.getLogger(__name__)


# --- dialect-specific SQL: the one small place ------------------------------------------------

def _quote_ident(dialect: str, name: str) -> str:
    if dialect in ("spark", "databricks"):
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def quote_string(value: str) -> str:
    """A SQL string literal (standard quoting)."""
    return "'" + value.replace("'", "''") + "'"


def contains_any(dialect: str, column: str, is_list: bool, source_ids: Sequence[str]) -> str:
    """SQL that is true when provenance `column` (a scalar or a list) holds any of the ids."""
    ids = [quote_string(check_id_syntax(s)) for s in source_ids]
    col = _quote_ident(dialect, column)
    if dialect in ("spark", "databricks"):
        if is_list:
            return f"coalesce(arrays_overlap(cast({col} as array<string>), array({', '.join(ids)})), false)"
        return f"coalesce(cast({col} as string) in ({', '.join(ids)}), false)"
    if is_list:
        return f"coalesce(list_has_any(cast({col} as varchar[]), [{', '.join(ids)}]), false)"
    return f"coalesce(cast({col} as varchar) in ({', '.join(ids)}), false)"


def is_list_type(dialect: str, data_type: str) -> bool:
    """Does a warehouse column type name a list (array) type?"""
    t = (data_type or "").strip().lower()
    return t.endswith("[]") or t.startswith("array") or t.startswith("list")


def _columns_sql(dialect: str, relations: Sequence["Relation"]) -> str:
    if dialect in ("spark", "databricks"):
        return _columns_jinja(relations)
    names = sorted({r.identifier.lower() for r in relations})
    in_list = ", ".join(quote_string(n) for n in names) or "''"
    return (
        "select lower(table_schema) as table_schema, lower(table_name) as table_name, "
        "lower(column_name) as column_name, data_type "
        f"from information_schema.columns where lower(table_name) in ({in_list})"
    )


def _columns_jinja(relations: Sequence["Relation"]) -> str:
    """The rows of `_columns_sql`, from dbt's adapter instead of `information_schema` (Spark's
    session catalog has none): `dbt show --inline` renders this Jinja, which asks the adapter
    for each relation that exists and its columns, and selects them as literal rows."""
    pairs = sorted({((r.schema or "").lower(), r.identifier.lower()) for r in relations})
    q = "'{{ v | string | replace(\"'\", \"''\") }}'"
    return (
        "{%- set found = [] -%}"
        f"{{%- for schema, identifier in {json.dumps([list(p) for p in pairs])} -%}}"
        "{%- set rel = adapter.get_relation(database=target.database, schema=schema, identifier=identifier) -%}"
        "{%- if rel is not none -%}{%- for col in adapter.get_columns_in_relation(rel) -%}"
        "{%- do found.append([schema, identifier, col.name | lower, col.data_type]) -%}"
        "{%- endfor -%}{%- endif -%}{%- endfor -%}"
        "{%- for row in found -%}"
        "{{ ' union all ' if not loop.first }}select "
        "{%- for v in row %} " + q + " as {{ ['table_schema', 'table_name', 'column_name', 'data_type'][loop.index0] }}"
        "{{ ',' if not loop.last }}{%- endfor -%}"
        "{%- else -%}"
        "select '' as table_schema, '' as table_name, '' as column_name, '' as data_type where 1 = 0"
        "{%- endfor -%}"
    )


# --- what to count ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Relation:
    """A relation to count: its dbt name and how to `ref` it, with its provenance columns."""

    key: str  # the caller's name for it (a unique_id)
    ref: str  # jinja that dbt resolves: {{ ref('x') }} or {{ source('s', 't') }}
    schema: str | None
    identifier: str
    provenance_columns: tuple[str, ...] = ()
    sql_name: str | None = None  # the relation as dbt writes it in SQL (its manifest `relation_name`)


@dataclass(frozen=True)
class RowCount:
    total_rows: int
    tainted_rows: int | None  # None: no provenance column to look at


# --- counting ---------------------------------------------------------------------------------

class WarehouseBusy(WarehouseError):
    """Another process holds the warehouse open for writing (e.g. a dbt run): nothing counted."""


class _DuckDB:
    """A DuckDB file opened read-only: `query` returns rows as dicts."""

    def __init__(self, path: Path):
        import duckdb

        try:
            self.con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            msg = one_line(exc)
            if "lock" in msg.lower():
                raise WarehouseBusy(f"the warehouse {path} is busy: another process holds a write lock on it "
                                    "(a dbt run?); retry when it is done") from None
            raise WarehouseError(f"{path}: cannot open the DuckDB file read-only ({msg})") from None

    def query(self, sql: str) -> list[dict[str, Any]]:
        import duckdb

        try:
            cur = self.con.execute(sql)
        except duckdb.Error as exc:
            raise WarehouseError(f"query on the warehouse failed: {one_line(exc)}") from None
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def close(self) -> None:
        self.con.close()


def _duckdb_types(db: _DuckDB, relations: Sequence[Relation]) -> dict[tuple[str, str], dict[str, str]]:
    """Column types of the relations that exist, keyed like `_columns_sql`'s rows: tables and
    views from the catalog, other relations (e.g. external Parquet files) by describing them."""
    import duckdb

    types: dict[tuple[str, str], dict[str, str]] = {}
    for row in db.query(_columns_sql("duckdb", relations)):
        types.setdefault((row["table_schema"], row["table_name"]), {})[row["column_name"]] = str(row["data_type"])
    for rel in relations:
        key = ((rel.schema or "").lower(), rel.identifier.lower())
        if key in types or not rel.sql_name or rel.sql_name.lstrip().startswith('"'):
            continue
        try:
            rows = db.con.execute(f"describe select * from {rel.sql_name}").fetchall()
        except duckdb.Error:
            continue
        types[key] = {str(r[0]).lower(): str(r[1]) for r in rows}
    return types


def _count(query: Any, dialect: str, relations: Sequence[Relation], source_ids: Sequence[str],
           types: dict[tuple[str, str], dict[str, str]], name: Any) -> dict:
    """ONE counting query over the relations that exist (`types`: their columns' types; list or
    scalar decides the predicate); `name(rel)` is how the query names a relation."""
    parts, present = [], []
    for i, rel in enumerate(relations):
        cols = types.get(((rel.schema or "").lower(), rel.identifier.lower()))
        if cols is None:
            continue
        present.append(rel)
        preds = [
            contains_any(dialect, c, is_list_type(dialect, cols[c.lower()]), source_ids)
            for c in rel.provenance_columns
            if c.lower() in cols
        ]
        tainted = (
            f"sum(case when {' or '.join(preds)} then 1 else 0 end)" if preds else "null"
        )
        parts.append(
            f"select {i} as rel_index, count(*) as total_rows, {tainted} as tainted_rows "
            f"from {name(rel)}"
        )
    counts: dict[str, dict] = {}
    lists = {
        rel.key: [c for c in rel.provenance_columns
                  if is_list_type(dialect, types.get(((rel.schema or "").lower(), rel.identifier.lower()), {}).get(c.lower(), ""))]
        for rel in present
    }
    if parts:
        for row in query("\nunion all\n".join(parts)):
            rel = relations[int(row["rel_index"])]
            tainted = row["tainted_rows"]
            counts[rel.key] = {
                "total_rows": int(row["total_rows"] or 0),
                "tainted_rows": None if tainted is None and not rel.provenance_columns else int(tainted or 0),
            }
    return {"counts": counts, "built": bool(types), "list_columns": lists}


@dataclass(frozen=True)
class Counts:
    """Row counts per relation key; `built` is False when the warehouse has none of them."""

    rows: dict[str, RowCount]
    built: bool
    list_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key -> its list-typed columns


def count_rows(
    config: DbtConfig, dialect: str, relations: Sequence[Relation], source_ids: Sequence[str],
    *, through_dbt: bool = False,
) -> Counts:
    """Count total and tainted rows of `relations` in the target's warehouse.

    DuckDB: the file opened read-only (`WarehouseBusy` when another process writes to it; not
    built when there is no file). Other adapters (or `through_dbt`): through dbt's connection,
    in one child process."""
    for sid in source_ids:
        check_id_syntax(sid)
    path = config.duckdb_path if config.adapter_type == "duckdb" else None
    if path is not None and not through_dbt:
        if not path.is_file():
            return Counts({}, False)
        db = _DuckDB(path)
        try:
            types = _duckdb_types(db, relations)
            answer = _count(db.query, dialect, relations, source_ids, types,
                            lambda rel: rel.sql_name or f'"{rel.schema}"."{rel.identifier}"')
        finally:
            db.close()
    else:
        from .dbt.runner import QuerySession

        with QuerySession(config) as session:
            types = {}
            for row in session.query(_columns_sql(dialect, relations)):
                types.setdefault((row["table_schema"], row["table_name"]), {})[row["column_name"]] = str(
                    row["data_type"])
            answer = _count(session.query, dialect, relations, source_ids, types, lambda rel: rel.ref)
    return Counts(
        rows={k: RowCount(v["total_rows"], v["tainted_rows"]) for k, v in answer["counts"].items()},
        built=answer["built"],
        list_columns={k: tuple(v) for k, v in answer.get("list_columns", {}).items()},
    )
