"""Row counts in the warehouse: read-only, never through a dbt process for DuckDB.

With `provenance.py` deciding WHAT to count, this module does it:

* `count_rows` counts, in ONE query, the total rows and the rows whose provenance columns hold
  any of some source ids, for every relation asked. On a DuckDB target it opens the DuckDB file
  READ-ONLY with DuckDB itself (no dbt, no lock held after it returns); when another process
  holds the file open for writing it raises `WarehouseBusy`, one line saying so. On any other
  adapter (Spark, ...) the query runs through dbt's connection for the target, in a child
  process (`dbt.runner.QuerySession`).
* `contains_any` is the one place where the SQL "this provenance column holds any of these
  ids" is spelled per dialect, for every way a provenance column holds source ids (`holds`):
  one id (`ID`), a list of them (`LIST`: DuckDB `list_has_any`, Spark `arrays_overlap`), a
  list of lists (`"id[][]"`, flattened first), a source mask (`MASK`: a BIGINT with bit
  `source_bit` of the registry set per source; `bits` gives each id's bit) or a list of masks.
  `holds_of_type` reads it from a warehouse column type. Ids are validated
  (`registry.check_id_syntax`) before they are quoted into SQL.

>>> contains_any("duckdb", "source_id", ID, ("a", "b"))
'coalesce(cast("source_id" as varchar) in (\\'a\\', \\'b\\'), false)'
>>> contains_any("duckdb", "source_ids", LIST, ("a",))
'coalesce(list_has_any(cast("source_ids" as varchar[]), [\\'a\\']), false)'
>>> contains_any("spark", "source_ids", LIST, ("a",))
"coalesce(arrays_overlap(cast(`source_ids` as array<string>), array('a')), false)"
>>> contains_any("duckdb", "source_mask", MASK, ("a", "c"), {"a": 0, "b": 1, "c": 3})
'coalesce((cast("source_mask" as bigint) & 9) <> 0, false)'
>>> holds_of_type("duckdb", "VARCHAR[][]"), holds_of_type("spark", "bigint"), holds_of_type("duckdb", "DATE")
('id[][]', 'mask', None)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dbt.config import DbtConfig, one_line
from .errors import UserError, WarehouseError
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


ID, LIST, MASK = "id", "id[]", "mask"  # what a provenance column holds (see contains_any)
_ID_TYPES = ("varchar", "text", "string", "char", "character", "bpchar", "nvarchar")
_MASK_TYPES = ("bigint", "int8", "long", "integer", "int", "int4", "ubigint", "hugeint", "uhugeint")


def holds_of_type(dialect: str, data_type: str) -> str | None:
    """What a provenance column of this warehouse type holds: `"id"`, `"mask"`, each followed by
    one `[]` per list level (`"id[]"`, `"id[][]"`, `"mask[]"`); None when it is neither (a
    column this tool cannot read source ids from)."""
    t = (data_type or "").strip().lower()
    depth = 0
    while True:
        if t.endswith("[]"):
            t, depth = t[:-2].strip(), depth + 1
        elif (t.startswith("array<") or t.startswith("list<")) and t.endswith(">"):
            t, depth = t[t.index("<") + 1:-1].strip(), depth + 1
        elif t.startswith("array(") and t.endswith(")"):
            t, depth = t[len("array("):-1].strip(), depth + 1
        else:
            break
    base = t.split("(")[0].strip()
    if base in _ID_TYPES or base == "character varying":
        return ID + "[]" * depth
    if base in _MASK_TYPES:
        return MASK + "[]" * depth
    return None


def source_mask(source_ids: Sequence[str], bits: Mapping[str, int]) -> int:
    """The source mask of `source_ids`: bit `bits[id]` set for each. `UserError` for an id
    without a bit (the registry has no `source_bit` for it).

    >>> source_mask(["b"], {"a": 0, "b": 2})
    4
    """
    mask = 0
    for sid in source_ids:
        bit = bits.get(sid)
        if not isinstance(bit, int) or not 0 <= bit <= 62:
            raise UserError(f"cannot read source masks: the registry gives no source_bit (0-62) for {sid!r}")
        mask |= 1 << bit
    return mask


def contains_any(dialect: str, column: str, holds: str | bool, source_ids: Sequence[str],
                 bits: Mapping[str, int] | None = None) -> str:
    """SQL that is true when provenance `column` holds any of the ids. `holds` is what the column
    holds (`holds_of_type`: `"id"`, `"id[]"`, `"mask"`, ... ; True / False mean `"id[]"` /
    `"id"`); a source mask needs each id's bit in `bits`. `ValueError` for anything else."""
    if isinstance(holds, bool):
        holds = LIST if holds else ID
    ids = [quote_string(check_id_syntax(s)) for s in source_ids]
    col = _quote_ident(dialect, column)
    spark = dialect in ("spark", "databricks")
    base, depth = holds.split("[")[0], holds.count("[]")
    if base not in (ID, MASK) or holds != base + "[]" * depth:
        raise ValueError(f"contains_any: cannot read a column holding {holds!r}")
    if base == ID:
        if depth == 0:
            text = "string" if spark else "varchar"
            return f"coalesce(cast({col} as {text}) in ({', '.join(ids)}), false)"
        listed = _flat_list(col, "string" if spark else "varchar", depth, spark)
        if spark:
            return f"coalesce(arrays_overlap({listed}, array({', '.join(ids)})), false)"
        return f"coalesce(list_has_any({listed}, [{', '.join(ids)}]), false)"
    mask = source_mask(source_ids, bits or {})
    if depth == 0:
        return f"coalesce((cast({col} as bigint) & {mask}) <> 0, false)"
    listed = _flat_list(col, "bigint", depth, spark)
    if spark:
        return f"coalesce(exists({listed}, m -> (m & {mask}) <> 0), false)"
    return f"coalesce(len(list_filter({listed}, lambda m: (m & {mask}) <> 0)) > 0, false)"


def _flat_list(col: str, element: str, depth: int, spark: bool) -> str:
    """`col`, a list nested `depth` deep, cast to lists of `element` and flattened to one level.

    >>> _flat_list('"c"', "bigint", 2, False), _flat_list("`c`", "string", 1, True)
    ('flatten(cast("c" as bigint[][]))', 'cast(`c` as array<string>)')
    """
    listed = f"cast({col} as {'array<' * depth}{element}{'>' * depth})" if spark else f"cast({col} as {element}{'[]' * depth})"
    for _ in range(depth - 1):
        listed = f"flatten({listed})"
    return listed


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


def ensure_writable(config: DbtConfig) -> None:
    """`WarehouseBusy` when a rebuild could not open the warehouse for writing now (DuckDB: another
    process holds the file). Called before anything is written, so that a busy warehouse stops a
    quarantine with nothing changed. Other adapters are not checked (their servers arbitrate)."""
    path = config.duckdb_path if config.adapter_type == "duckdb" else None
    if path is None or not path.is_file():
        return
    import duckdb

    try:
        duckdb.connect(str(path)).close()
    except duckdb.Error as exc:
        msg = one_line(exc)
        if "lock" in msg.lower():
            raise WarehouseBusy(f"the warehouse {path} is busy: another process holds it open (a dbt run?); "
                                "nothing was changed: retry when it is done") from None
        raise WarehouseError(f"{path}: cannot open the DuckDB file for writing ({msg})") from None


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
           types: dict[tuple[str, str], dict[str, str]], name: Any,
           bits: Mapping[str, int] | None = None) -> dict:
    """ONE counting query over the relations that exist (`types`: their columns' types, which
    say what each provenance column holds); `name(rel)` is how the query names a relation.

    A provenance column whose type holds no source ids this tool can read (or a source mask
    without the registry's bits) makes its relation's tainted count unknown (None) and is
    listed in `unreadable`: a count that skipped it would claim too little."""
    parts, present = [], []
    holds: dict[str, dict[str, str]] = {}
    unreadable: dict[str, list[str]] = {}
    for i, rel in enumerate(relations):
        cols = types.get(((rel.schema or "").lower(), rel.identifier.lower()))
        if cols is None:
            continue
        present.append(rel)
        preds = []
        for c in rel.provenance_columns:
            if c.lower() not in cols:
                continue
            kind = holds_of_type(dialect, cols[c.lower()])
            try:
                pred = contains_any(dialect, c, kind, source_ids, bits) if kind else None
            except UserError:
                pred = None
            if pred is None:
                unreadable.setdefault(rel.key, []).append(c)
            else:
                holds.setdefault(rel.key, {})[c] = kind
                preds.append(pred)
        if rel.key in unreadable:
            tainted = "null"
        else:
            tainted = f"sum(case when {' or '.join(preds)} then 1 else 0 end)" if preds else "null"
        parts.append(
            f"select {i} as rel_index, count(*) as total_rows, {tainted} as tainted_rows "
            f"from {name(rel)}"
        )
    counts: dict[str, dict] = {}
    lists = {rel.key: [c for c, k in holds.get(rel.key, {}).items() if k != ID] for rel in present}
    if parts:
        for row in query("\nunion all\n".join(parts)):
            rel = relations[int(row["rel_index"])]
            tainted = row["tainted_rows"]
            counts[rel.key] = {
                "total_rows": int(row["total_rows"] or 0),
                "tainted_rows": None if tainted is None and (not rel.provenance_columns or rel.key in unreadable)
                else int(tainted or 0),
            }
    return {"counts": counts, "built": bool(types), "list_columns": lists, "holds": holds,
            "unreadable": unreadable}


@dataclass(frozen=True)
class Counts:
    """Row counts per relation key; `built` is False when the warehouse has none of them."""

    rows: dict[str, RowCount]
    built: bool
    list_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key -> its list-typed columns
    holds: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> column -> what it holds
    unreadable: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key -> columns not read


def count_rows(
    config: DbtConfig, dialect: str, relations: Sequence[Relation], source_ids: Sequence[str],
    bits: Mapping[str, int] | None = None, *, through_dbt: bool = False,
) -> Counts:
    """Count total and tainted rows of `relations` in the target's warehouse.

    DuckDB: the file opened read-only (`WarehouseBusy` when another process writes to it; not
    built when there is no file). Other adapters (or `through_dbt`): through dbt's connection,
    in one child process. `bits`: each source's bit in source masks, from the registry."""
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
                            lambda rel: rel.sql_name or f'"{rel.schema}"."{rel.identifier}"', bits)
        finally:
            db.close()
    else:
        from .dbt.runner import QuerySession

        with QuerySession(config) as session:
            types = {}
            for row in session.query(_columns_sql(dialect, relations)):
                types.setdefault((row["table_schema"], row["table_name"]), {})[row["column_name"]] = str(
                    row["data_type"])
            answer = _count(session.query, dialect, relations, source_ids, types, lambda rel: rel.ref, bits)
    return Counts(
        rows={k: RowCount(v["total_rows"], v["tainted_rows"]) for k, v in answer["counts"].items()},
        built=answer["built"],
        list_columns={k: tuple(v) for k, v in answer.get("list_columns", {}).items()},
        holds={k: dict(v) for k, v in answer.get("holds", {}).items()},
        unreadable={k: tuple(v) for k, v in answer.get("unreadable", {}).items()},
    )
