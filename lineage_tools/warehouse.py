"""Row counts and rebuilds through dbt's own connection for the target.

With `provenance.py` deciding WHAT to count or rebuild, this module does it:

* `count_rows` counts, in ONE query through dbt's connection for the target (any adapter dbt
  has), the total rows and the rows whose provenance columns hold any of some source ids, for
  every relation asked. It runs in a short-lived child process (`python -m
  lineage_tools.warehouse`) that calls `dbtRunner().invoke(["show", "--inline", ...])`:
  dbt-duckdb keeps its file lock for the life of the process that opened it, and a later
  `dbt build` must be able to open the file.
* `run_dbt` runs this environment's `dbt` executable with an argv list (never a shell),
  streaming its output to the log (stderr).
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

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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


def is_list_type(dialect: str, data_type: str) -> bool:
    """Does a warehouse column type name a list (array) type?"""
    t = (data_type or "").strip().lower()
    return t.endswith("[]") or t.startswith("array") or t.startswith("list")


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
        if spark:
            listed = f"cast({col} as {'array<' * depth}string{'>' * depth})"
            for _ in range(depth - 1):
                listed = f"flatten({listed})"
            return f"coalesce(arrays_overlap({listed}, array({', '.join(ids)})), false)"
        listed = f"cast({col} as varchar{'[]' * depth})"
        for _ in range(depth - 1):
            listed = f"flatten({listed})"
        return f"coalesce(list_has_any({listed}, [{', '.join(ids)}]), false)"
    mask = source_mask(source_ids, bits or {})
    if depth == 0:
        return f"coalesce((cast({col} as bigint) & {mask}) <> 0, false)"
    if spark:
        listed = f"cast({col} as {'array<' * depth}bigint{'>' * depth})"
        for _ in range(depth - 1):
            listed = f"flatten({listed})"
        return f"coalesce(exists({listed}, m -> (m & {mask}) <> 0), false)"
    listed = f"cast({col} as bigint{'[]' * depth})"
    for _ in range(depth - 1):
        listed = f"flatten({listed})"
    return f"coalesce(len(list_filter({listed}, lambda m: (m & {mask}) <> 0)) > 0, false)"


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


@dataclass(frozen=True)
class RowCount:
    total_rows: int
    tainted_rows: int | None  # None: no provenance column to look at


@dataclass(frozen=True)
class DbtTarget:
    """Where dbt runs: the project, its profiles folder and target, as dbt's CLI flags."""

    project_dir: Path
    profiles_dir: Path | None = None
    target: str | None = None

    def flags(self) -> list[str]:
        out = ["--project-dir", str(self.project_dir)]
        if self.profiles_dir is not None:
            out += ["--profiles-dir", str(self.profiles_dir)]
        if self.target:
            out += ["--target", self.target]
        return out


def dbt_executable() -> str:
    """This environment's `dbt` (next to the running Python), else the one on PATH."""
    local = Path(sys.executable).parent / "dbt"
    if local.exists():
        return str(local)
    found = shutil.which("dbt")
    if not found:
        raise WarehouseError("dbt is not installed in this environment")
    return found


def dbt_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return env


def run_dbt(
    target: DbtTarget,
    args: Sequence[str],
    on_line: Callable[[str], None] | None = None,
) -> int:
    """Run `dbt <args>` for `target` as a child process (argv list, no shell).

    Its output goes to the log line by line (and to `on_line`); returns the exit code.
    """
    argv = [dbt_executable(), *args, *target.flags()]
    log.info("running: %s", " ".join(argv))
    proc = subprocess.Popen(
        argv,
        cwd=target.project_dir,
        env=dbt_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        log.info("  dbt | %s", line)
        if on_line:
            on_line(line)
    return proc.wait()


# --- counting, in a child process -------------------------------------------------------------

@dataclass
class _Session:
    """dbt parsed once in this process; `query` runs SQL through the target's connection."""

    target: DbtTarget
    _runner: object | None = field(default=None, repr=False)

    def _invoke(self, args: list[str]):
        from dbt.cli.main import dbtRunner  # only here and in project.py: dbt is slow to import

        if self._runner is None:
            runner = dbtRunner()
            with contextlib.redirect_stdout(sys.stderr):
                res = runner.invoke(["parse", "--no-write-json", "--log-level", "none", *self.target.flags()])
            if not res.success:
                raise WarehouseError(f"dbt parse failed: {res.exception}")
            self._runner = dbtRunner(manifest=res.result)
        with contextlib.redirect_stdout(sys.stderr):
            return self._runner.invoke([*args, "--no-write-json", "--log-level", "none", *self.target.flags()])

    def query(self, sql: str) -> list[dict]:
        res = self._invoke(["show", "--inline", sql, "--limit", "-1"])
        if not res.success or res.result is None:
            raise WarehouseError(f"query through dbt failed: {res.exception or 'see dbt log'}")
        table = res.result.results[0].agate_table
        return [dict(zip(table.column_names, row)) for row in table.rows]


def _count_in_session(
    session: _Session, dialect: str, relations: Sequence[Relation], source_ids: Sequence[str],
    bits: Mapping[str, int] | None = None,
) -> dict:
    """Column types first (which relations exist; what each provenance column holds), then ONE
    counting query. A provenance column whose type holds no source ids this tool can read (or
    a source mask without the registry's bits) makes its relation's tainted count unknown
    (None) and is listed in `unreadable`: a count that skipped it would claim too little."""
    types: dict[tuple[str, str], dict[str, str]] = {}
    for row in session.query(_columns_sql(dialect, relations)):
        types.setdefault((row["table_schema"], row["table_name"]), {})[row["column_name"]] = str(
            row["data_type"]
        )
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
            f"from {rel.ref}"
        )
    counts: dict[str, dict] = {}
    lists = {rel.key: [c for c, k in holds.get(rel.key, {}).items() if k != ID] for rel in present}
    if parts:
        for row in session.query("\nunion all\n".join(parts)):
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
    target: DbtTarget, dialect: str, relations: Sequence[Relation], source_ids: Sequence[str],
    bits: Mapping[str, int] | None = None,
) -> Counts:
    """Count total and tainted rows of `relations` through dbt, in one child process (`bits`:
    each source's bit in source masks, from the registry)."""
    for sid in source_ids:
        check_id_syntax(sid)
    request = {
        "target": {
            "project_dir": str(target.project_dir),
            "profiles_dir": str(target.profiles_dir) if target.profiles_dir else None,
            "target": target.target,
        },
        "dialect": dialect,
        "source_ids": list(source_ids),
        "bits": dict(bits or {}),
        "relations": [
            {"key": r.key, "ref": r.ref, "schema": r.schema, "identifier": r.identifier,
             "provenance_columns": list(r.provenance_columns)}
            for r in relations
        ],
    }
    proc = subprocess.run(
        [sys.executable, "-m", "lineage_tools.warehouse"],
        input=json.dumps(request),
        cwd=target.project_dir,
        env=dbt_env(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise WarehouseError(f"cannot count rows through dbt: {tail[0]}")
    answer = json.loads(proc.stdout)
    return Counts(
        rows={k: RowCount(v["total_rows"], v["tainted_rows"]) for k, v in answer["counts"].items()},
        built=answer["built"],
        list_columns={k: tuple(v) for k, v in answer.get("list_columns", {}).items()},
        holds={k: dict(v) for k, v in answer.get("holds", {}).items()},
        unreadable={k: tuple(v) for k, v in answer.get("unreadable", {}).items()},
    )


def _child_main() -> int:
    request = json.load(sys.stdin)
    t = request["target"]
    target = DbtTarget(
        Path(t["project_dir"]),
        Path(t["profiles_dir"]) if t["profiles_dir"] else None,
        t["target"],
    )
    relations = [
        Relation(r["key"], r["ref"], r["schema"], r["identifier"], tuple(r["provenance_columns"]))
        for r in request["relations"]
    ]
    try:
        answer = _count_in_session(_Session(target), request["dialect"], relations, request["source_ids"],
                                   request.get("bits"))
    except UserError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":  # pragma: no cover - the child process of count_rows
    sys.exit(_child_main())
