"""Lineage checked by execution: run a model's SQL on small samples in a scratch in-memory
DuckDB, perturb one input column at a time, and see which output columns change.

An output column whose values change when an input column is perturbed depends on it. Each
dependency execution sees is compared with static lineage:

* **confirmed**: a static edge (DIRECT or INDIRECT to that column, or dataset-wide) that
  execution saw matter;
* **unexercised**: a static edge never seen to matter: a possible false positive, or (mostly for
  INDIRECT edges: filters, join keys, conditions, window keys) a case the sample did not
  exercise or a relation (pairing of values) that per-column comparison does not see;
* **missing**: a dependency execution saw and static lineage lacks entirely: a false negative,
  always a bug of the lineage engine.

Perturbations (two per input column): ``replace`` gives every row another value of the same
type (numbers negated, text prefixed, dates shifted, lists trimmed) and NULLs every fifth row;
``rotate`` moves each value to the next row. Outputs are compared per column as sorted lists of
values; a changed row count means every output column depends on the input.

Nothing here touches the real tables: the warehouse (when used) is attached READ_ONLY, samples
are copied into the scratch database, and the warehouse is detached before any model runs.
The scratch database names its relations exactly as the compiled SQL does
(``"db"."schema"."table"``: one in-memory database attached per catalog name).

>>> quote_ident('a"b')
'"a""b"'
>>> perturbation_sql("x", "INTEGER", "replace")
'CASE WHEN __rn % 5 = 4 THEN NULL ELSE TRY_CAST(-"x" - 1 AS INTEGER) END'
>>> perturbation_sql("x", "VARCHAR", "rotate")
'coalesce(lead("x") OVER (ORDER BY __rn), first_value("x") OVER (ORDER BY __rn))'
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .dbt.config import DbtConfig
from .dbt.manifest import read_seed, seed_delimiter
from .errors import SqlError, UserError, WarehouseError
from .records import (
    ColumnEdge,
    ColumnRef,
    EdgeType,
    ModelLineage,
    Node,
    ProjectLineage,
    RowEffect,
    RowInfluence,
    Status,
    Subtype,
)
from .sql import transpile

log = logging.getLogger(__name__)

PERTURBATIONS = ("replace", "rotate")
ROWCOUNT = None  # the target of an observation that changed the number of output rows
_SCRATCH_PREFIX = "__verify"
_SIGNED_INTS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT")
_UNSIGNED_INTS = ("UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")
_FLOATS = ("FLOAT", "DOUBLE", "REAL")


def quote_ident(name: str) -> str:
    """A DuckDB identifier, quoted (any name is safe)."""
    return '"' + str(name).replace('"', '""') + '"'


def quote_relation(parts: Sequence[str]) -> str:
    return ".".join(quote_ident(p) for p in parts)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# --------------------------------------------------------------------------------------------
# Perturbations


def perturbation_sql(column: str, data_type: str, how: str) -> str:
    """SQL giving column `column` (of DuckDB type `data_type`) other values; needs ``__rn``
    (0-based row number in the table's order)."""
    col = quote_ident(column)
    if how == "rotate":
        return f"coalesce(lead({col}) OVER (ORDER BY __rn), first_value({col}) OVER (ORDER BY __rn))"
    if how != "replace":
        raise ValueError(f"unknown perturbation {how!r}")
    t = data_type.upper().strip()
    base = t.split("(")[0]
    if t.endswith("[]"):
        inner = t[:-2]
        if inner.startswith("VARCHAR"):
            value = f"list_transform({col}, lambda x: '~' || x)"
        else:
            value = f"{col}[2:]"
    elif base in _SIGNED_INTS or base in _FLOATS or base == "DECIMAL":
        value = f"TRY_CAST(-{col} - 1 AS {t})"
    elif base in _UNSIGNED_INTS:
        value = f"TRY_CAST({col} + 1 AS {t})"
    elif base == "BOOLEAN":
        value = f"NOT {col}"
    elif base in ("VARCHAR", "TEXT", "STRING"):
        value = f"'~' || {col}"
    elif base == "DATE":
        value = f"{col} + 1"
    elif base.startswith("TIMESTAMP"):
        value = f"{col} + INTERVAL 1 DAY"
    elif base.startswith("TIME"):
        value = f"{col} + INTERVAL 1 MINUTE"
    elif base == "INTERVAL":
        value = f"{col} + INTERVAL 1 DAY"
    else:
        value = "NULL"
    return f"CASE WHEN __rn % 5 = 4 THEN NULL ELSE {value} END"


# --------------------------------------------------------------------------------------------
# The scratch database


@dataclass(frozen=True)
class Output:
    """One run of a query: its column names and rows (None: the run failed)."""

    columns: tuple[str, ...]
    rows: tuple[tuple, ...]


def _sort_key(value: object) -> tuple:
    return (value is None, type(value).__name__, repr(value))


def column_values(out: Output) -> list[tuple[str, ...]]:
    """Per output column, its values as a sorted list of reprs (a multiset)."""
    return [tuple(sorted(repr(r[i]) for r in out.rows)) for i in range(len(out.columns))]


class Scratch:
    """An in-memory DuckDB holding sample copies of relations under their compiled names.

    `key` names a relation for the caller (a dbt unique_id, or a dotted name); `parts` is how
    the SQL names it (database, schema, table). Each relation's sample is kept in a private
    base table; `perturbed` swaps a changed copy in for the length of a `with` block.
    """

    def __init__(self) -> None:
        self.conn = duckdb.connect(":memory:")
        self.conn.execute("SET threads = 1")
        self.conn.execute("SET preserve_insertion_order = true")
        self._parts: dict[str, tuple[str, ...]] = {}
        self._base: dict[str, str] = {}
        self._types: dict[str, tuple[tuple[str, str], ...]] = {}
        self._catalogs: set[str] = {"memory"}
        self._schemas: set[tuple[str, str]] = set()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __contains__(self, key: object) -> bool:
        return key in self._parts

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._parts)

    def columns(self, key: str) -> tuple[tuple[str, str], ...]:
        """(name, DuckDB type) of a relation's columns."""
        return self._types[key]

    def rows(self, key: str) -> int:
        return self.conn.execute(f"SELECT count(*) FROM {quote_relation(self._parts[key])}").fetchone()[0]

    def _ensure_namespace(self, parts: tuple[str, ...]) -> None:
        if len(parts) == 3:
            db, schema = parts[0], parts[1]
            if db not in self._catalogs:
                self.conn.execute(f"ATTACH ':memory:' AS {quote_ident(db)}")
                self._catalogs.add(db)
        else:
            db, schema = "memory", parts[0] if len(parts) == 2 else "main"
        if (db, schema) not in self._schemas:
            self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(db)}.{quote_ident(schema)}")
            self._schemas.add((db, schema))

    def add(self, key: str, parts: Sequence[str], select_sql: str) -> None:
        """Create relation `key` named `parts` from a query run in the scratch database."""
        parts = tuple(parts)
        if not 1 <= len(parts) <= 3:
            raise ValueError(f"relation name must have 1 to 3 parts: {parts!r}")
        if parts[0] == "memory" and len(parts) == 3:
            raise UserError("a relation in a database named 'memory' cannot be verified (DuckDB's own name)")
        base = f"memory.main.{quote_ident(f'{_SCRATCH_PREFIX}_{len(self._base)}')}"
        self.conn.execute(f"CREATE OR REPLACE TABLE {base} AS SELECT * FROM ({select_sql})")
        self._ensure_namespace(parts)
        self._parts[key] = parts
        self._base[key] = base
        desc = self.conn.execute(f"DESCRIBE {base}").fetchall()
        self._types[key] = tuple((r[0], str(r[1])) for r in desc)
        self._restore(key)

    def add_rows(self, key: str, parts: Sequence[str], columns: Sequence[tuple[str, str]],
                 rows: Sequence[Sequence[object]]) -> None:
        """Create relation `key` from Python rows with the given (name, DuckDB type) columns."""
        cols = ", ".join(f"{quote_ident(c)} {t}" for c, t in columns)
        tmp = quote_ident(f"{_SCRATCH_PREFIX}_load")
        self.conn.execute(f"CREATE OR REPLACE TEMP TABLE {tmp} ({cols})")
        if rows:
            marks = ", ".join("?" for _ in columns)
            self.conn.executemany(f"INSERT INTO {tmp} VALUES ({marks})", [list(r) for r in rows])
        self.add(key, parts, f"SELECT * FROM {tmp}")
        self.conn.execute(f"DROP TABLE {tmp}")

    def _restore(self, key: str) -> None:
        self.conn.execute(f"CREATE OR REPLACE TABLE {quote_relation(self._parts[key])} AS SELECT * FROM {self._base[key]}")

    @contextlib.contextmanager
    def perturbed(self, key: str, column: str, how: str) -> Iterator[None]:
        """Within the block, relation `key` has `column` perturbed (see `perturbation_sql`)."""
        typ = dict(self._types[key])[column]
        expr = perturbation_sql(column, typ, how)
        sql = (f"CREATE OR REPLACE TABLE {quote_relation(self._parts[key])} AS "
               f"SELECT * EXCLUDE (__rn) REPLACE ({expr} AS {quote_ident(column)}) "
               f"FROM (SELECT *, row_number() OVER () - 1 AS __rn FROM {self._base[key]}) ORDER BY __rn")
        self.conn.execute(sql)
        try:
            yield
        finally:
            self._restore(key)

    def run(self, sql: str) -> Output:
        """Run a query; its rows and column names."""
        cur = self.conn.execute(sql)
        names = tuple(d[0] for d in cur.description or ())
        return Output(names, tuple(cur.fetchall()))

    def materialize(self, key: str, parts: Sequence[str], sql: str, *, limit: int | None = None,
                    seed: int = 42) -> None:
        """Run a model's SQL over what the scratch holds and keep its result (a deterministic
        sample of at most `limit` rows) as relation `key`."""
        tmp = f"memory.main.{quote_ident(f'{_SCRATCH_PREFIX}_run')}"
        self.conn.execute(f"CREATE OR REPLACE TABLE {tmp} AS SELECT * FROM ({sql})")
        n = self.conn.execute(f"SELECT count(*) FROM {tmp}").fetchone()[0]
        sample = "" if limit is None or n <= limit else f" USING SAMPLE reservoir({int(limit)} ROWS) REPEATABLE ({int(seed)})"
        self.add(key, parts, f"SELECT * FROM {tmp}{sample}")
        self.conn.execute(f"DROP TABLE {tmp}")


# --------------------------------------------------------------------------------------------
# Observing dependencies


@dataclass(frozen=True)
class Observation:
    """Execution saw output `target` (None: the row count) change when `source` was perturbed."""

    target: str | None
    source: ColumnRef
    perturbation: str


@dataclass(frozen=True)
class Observed:
    columns: tuple[str, ...]
    rows: int
    observations: tuple[Observation, ...]
    runs: int
    failed_runs: int
    unstable: tuple[str, ...] = ()
    error: str | None = None


def observe(scratch: Scratch, sql: str, inputs: Iterable[str],
            perturbations: Sequence[str] = PERTURBATIONS) -> Observed:
    """Run `sql`, then once per input column and perturbation; what changed, per output column."""
    try:
        base = scratch.run(sql)
        again = scratch.run(sql)
    except duckdb.Error as exc:
        return Observed((), 0, (), 1, 1, error=_one_line(exc))
    cols = base.columns
    base_vals = column_values(base)
    again_vals = column_values(again)
    unstable = {i for i in range(len(cols)) if base_vals[i] != again_vals[i] or len(base.rows) != len(again.rows)}
    observations: list[Observation] = []
    runs, failed = 2, 0
    for key in inputs:
        for column, _typ in scratch.columns(key):
            for how in perturbations:
                runs += 1
                with scratch.perturbed(key, column, how):
                    try:
                        out = scratch.run(sql)
                    except duckdb.Error as exc:
                        failed += 1
                        log.debug("verify: run with %s.%s %s failed: %s", key, column, how, _one_line(exc))
                        continue
                src = ColumnRef(key, column)
                if len(out.rows) != len(base.rows):
                    observations.append(Observation(ROWCOUNT, src, how))
                    continue
                vals = column_values(out)
                for i, name in enumerate(cols):
                    if i not in unstable and vals[i] != base_vals[i]:
                        observations.append(Observation(name, src, how))
    return Observed(cols, len(base.rows), tuple(dict.fromkeys(observations)), runs, failed,
                    tuple(cols[i] for i in sorted(unstable)))


# --------------------------------------------------------------------------------------------
# Comparing with static lineage


@dataclass(frozen=True)
class MissingEdge:
    """A dependency execution saw and static lineage lacks (a false negative)."""

    target: str | None  # None: the input changed the number of output rows
    source: ColumnRef
    perturbations: tuple[str, ...]


@dataclass(frozen=True)
class ModelCheck:
    """Verification of one model (or statement)."""

    unique_id: str
    name: str
    outcome: str  # verified | skipped | error
    message: str = ""
    output_rows: int = 0
    input_rows: tuple[tuple[str, int], ...] = ()
    runs: int = 0
    failed_runs: int = 0
    confirmed: tuple[ColumnEdge, ...] = ()
    unexercised: tuple[ColumnEdge, ...] = ()
    missing: tuple[MissingEdge, ...] = ()
    by_row_effect: tuple[MissingEdge, ...] = ()  # seen, no edge, explained by DISTINCT / set operation
    unstable: tuple[str, ...] = ()
    status: str = "FULL"  # the static lineage's status

    @property
    def ok(self) -> bool:
        return not self.missing


@dataclass(frozen=True)
class VerifyResult:
    models: tuple[ModelCheck, ...]
    inputs: str  # where samples came from: "warehouse <path>" or "generated"
    rows: int

    @property
    def false_negatives(self) -> tuple[tuple[ModelCheck, MissingEdge], ...]:
        return tuple((m, e) for m in self.models for e in m.missing)


#: Row effects that compare whole rows: an input column that flows into ANY output column then
#: decides which rows of every column survive (`select distinct a, b`: the values of `a` depend
#: on `b`). Static lineage records these as row influences, not as edges.
WHOLE_ROW_EFFECTS = frozenset({RowEffect.DISTINCT, RowEffect.SET_DIFFERENCE})


def compare(name: str, unique_id: str, static: Iterable[ColumnEdge], observed: Observed,
            status: str = "FULL", row_influences: Iterable[RowInfluence] = ()) -> ModelCheck:
    """Static edges and row influences (sources keyed like the scratch relations) against
    observed dependencies.

    An observation is covered by a field edge (DIRECT or INDIRECT) to its output column, or a
    dataset-wide edge from its input; a changed row count needs a dataset-wide edge or a field
    edge to every output column. Otherwise, when its input flows into some output column and its
    relation is deduplicated or compared as whole rows (DISTINCT, UNION, EXCEPT, INTERSECT), it is
    explained by that row effect (`by_row_effect`); else it is a false negative (`missing`).
    """
    edges = tuple(dict.fromkeys(e for e in static if not e.incremental_only))
    whole_row = {r.relation for r in row_influences if r.effect in WHOLE_ROW_EFFECTS}
    flows = {e.source for e in edges if e.target is not None}
    out_cols = set(observed.columns)
    by_target: dict[str | None, set[ColumnRef]] = {}
    for e in edges:
        by_target.setdefault(e.target, set()).add(e.source)
    dataset = by_target.get(None, set())
    seen_any = {o.source for o in observed.observations}
    seen_pair = {(o.target, o.source) for o in observed.observations}
    rowcount = {o.source for o in observed.observations if o.target is ROWCOUNT}

    missing: dict[tuple[str | None, ColumnRef], list[str]] = {}
    explained: dict[tuple[str | None, ColumnRef], list[str]] = {}
    for o in observed.observations:
        if o.source in dataset:
            continue
        if o.target is ROWCOUNT:
            if observed.columns and all(o.source in by_target.get(c, ()) for c in observed.columns):
                continue
        elif o.source in by_target.get(o.target, ()):
            continue
        bucket = explained if (o.source.relation in whole_row and o.source in flows) else missing
        bucket.setdefault((o.target, o.source), []).append(o.perturbation)

    confirmed, unexercised = [], []
    for e in edges:
        if e.target is not None and e.target not in out_cols:
            continue  # a column the SQL does not output (e.g. snapshot meta columns)
        hit = e.source in seen_any if e.target is None else (
            (e.target, e.source) in seen_pair or e.source in rowcount)
        (confirmed if hit else unexercised).append(e)
    return ModelCheck(
        unique_id=unique_id, name=name, outcome="verified", output_rows=observed.rows,
        runs=observed.runs, failed_runs=observed.failed_runs, confirmed=tuple(confirmed),
        unexercised=tuple(unexercised),
        missing=tuple(MissingEdge(t, s, tuple(dict.fromkeys(p))) for (t, s), p in missing.items()),
        by_row_effect=tuple(MissingEdge(t, s, tuple(dict.fromkeys(p))) for (t, s), p in explained.items()),
        unstable=observed.unstable, status=status,
    )


def verify_statement(scratch: Scratch, sql: str, static: Iterable[ColumnEdge], inputs: Sequence[str], *,
                     name: str = "statement", unique_id: str | None = None, status: str = "FULL",
                     row_influences: Iterable[RowInfluence] = ()) -> ModelCheck:
    """Observe `sql` over scratch relations `inputs` and compare with `static` edges."""
    observed = observe(scratch, sql, inputs)
    if observed.error is not None:
        return ModelCheck(unique_id or name, name, "error", f"the SQL fails in the scratch database: {observed.error}",
                          runs=observed.runs, failed_runs=observed.failed_runs, status=status)
    check = compare(name, unique_id or name, static, observed, status, row_influences)
    rows = tuple((k, scratch.rows(k)) for k in inputs)
    message = "" if observed.rows else "the sample gives no output rows: nothing exercised"
    return _replace(check, input_rows=rows, message=message)


def _replace(check: ModelCheck, **changes: object) -> ModelCheck:
    from dataclasses import replace

    return replace(check, **changes)


# --------------------------------------------------------------------------------------------
# A dbt project


def physical_inputs(project: ProjectLineage, unique_id: str) -> tuple[str, ...]:
    """The relations a model's compiled SQL reads: its parents, through ephemeral models."""
    by_id = {n.unique_id: n for n in project.nodes}
    out: dict[str, None] = {}

    def walk(uid: str) -> None:
        for dep in by_id[uid].depends_on:
            node = by_id.get(dep)
            if node is None or node.resource_type not in ("model", "seed", "source", "snapshot"):
                continue
            if node.materialized == "ephemeral":
                walk(dep)
            else:
                out[dep] = None

    walk(unique_id)
    return tuple(out)


def static_edges(project: ProjectLineage, unique_id: str) -> tuple[ColumnEdge, ...]:
    """A model's static edges with ephemeral inputs replaced by what those read (as the compiled
    SQL inlines them): an edge to an ephemeral column becomes edges to that column's inputs and
    to the ephemeral model's dataset-wide inputs."""
    models = {m.node.unique_id: m for m in project.models}
    ephemeral = {n.unique_id for n in project.nodes if n.materialized == "ephemeral"}

    def expand(uid: str, column: str | None, depth: int = 0) -> set[tuple[ColumnRef, Subtype]]:
        ml = models.get(uid)
        if ml is None or depth > 20:
            return set()
        out: set[tuple[ColumnRef, Subtype]] = set()
        for e in ml.lineage.edges:
            if e.target is None or e.target == column:
                if e.source.relation in ephemeral:
                    out |= expand(e.source.relation, e.source.column, depth + 1)
                else:
                    out.add((e.source, e.subtype))
        return out

    result: list[ColumnEdge] = []
    ml = models[unique_id]
    for e in ml.lineage.edges:
        if e.source.relation not in ephemeral:
            result.append(e)
            continue
        for src, sub in expand(e.source.relation, e.source.column):
            kind = sub if e.type is EdgeType.DIRECT and sub.type is EdgeType.DIRECT else (
                e.subtype if e.type is EdgeType.INDIRECT else sub)
            result.append(ColumnEdge(e.target, src, kind, e.masking, e.incremental_only))
    return tuple(dict.fromkeys(result))


def static_row_influences(project: ProjectLineage, unique_id: str) -> tuple[RowInfluence, ...]:
    """A model's row influences, an ephemeral input's effect passed on to what it reads (and the
    ephemeral model's own row influences added)."""
    models = {m.node.unique_id: m for m in project.models}
    by_id = {n.unique_id: n for n in project.nodes}
    out: dict[RowInfluence, None] = {}

    def walk(uid: str, effects: Iterable[RowInfluence], depth: int = 0) -> None:
        for r in effects:
            node = by_id.get(r.relation)
            if node is not None and node.materialized == "ephemeral" and depth < 20:
                for dep in physical_inputs(project, r.relation):
                    out[RowInfluence(dep, r.effect)] = None
                inner = models.get(r.relation)
                if inner is not None:
                    walk(r.relation, inner.lineage.row_influences, depth + 1)
            else:
                out[r] = None

    walk(unique_id, models[unique_id].lineage.row_influences)
    return tuple(out)


def duckdb_path(config: DbtConfig) -> Path | None:
    """The DuckDB file of the project's target (read by the dbt layer from profiles.yml, env
    vars resolved), or None when the target is not a local DuckDB file."""
    return config.duckdb_path


def default_warehouse(config: DbtConfig) -> Path | None:
    """The dbt target's DuckDB file when it exists (built), else None (inputs are generated)."""
    path = duckdb_path(config)
    if path is None or not path.is_file():
        log.info("verify: no built DuckDB file for this target; generating inputs")
        return None
    return path


def _parts(node: Node) -> tuple[str, ...]:
    rel = node.relation.split(".")
    parts = tuple(p for p in (node.database, node.schema, node.identifier) if p)
    return parts if len(parts) == 3 else tuple(rel)


class _Inputs:
    """Fills a scratch database with the relations models read: copied (sampled) from the built
    warehouse when it has them, else seeds from their CSV, sources generated from declared
    types, models run in the scratch over their own inputs."""

    def __init__(self, project: ProjectLineage, scratch: Scratch, project_dir: Path, rows: int,
                 warehouse: Path | None, seed: int = 42, dialect: str = "duckdb"):
        self.project = project
        self.dialect = dialect
        self._duckdb_sql: dict[str, str] = {}
        self.scratch = scratch
        self.project_dir = project_dir
        self.rows = rows
        self.seed = seed
        self.by_id = {n.unique_id: n for n in project.nodes}
        self.failed: dict[str, str] = {}
        self.origin: dict[str, str] = {}
        self.warehouse_tables: set[tuple[str, ...]] = set()
        self._staged: dict[str, str] = {}
        self.warehouse = warehouse
        if warehouse is not None:
            self._attach(warehouse)

    def _attach(self, path: Path) -> None:
        names = {n.database for n in self.project.nodes if n.database}
        alias = next(iter(names)) if len(names) == 1 else path.stem
        self.alias = alias
        try:
            self.scratch.conn.execute(f"ATTACH {_literal(str(path))} AS {quote_ident(alias)} (READ_ONLY)")
        except duckdb.Error as exc:
            msg = _one_line(exc)
            if "already attached" in msg:
                # dbt ran in this process (compiling) and still holds the file: read a copy
                self._copy_dir = tempfile.TemporaryDirectory(prefix="lineage-verify-")
                copy = Path(self._copy_dir.name) / path.name
                shutil.copy2(path, copy)
                if path.with_name(path.name + ".wal").exists():
                    shutil.copy2(path.with_name(path.name + ".wal"), copy.with_name(copy.name + ".wal"))
                log.info("verify: %s is open in this process; sampling a copy", path)
                return self._attach(copy)
            if "lock" in msg.lower():
                raise WarehouseError(f"{path}: the DuckDB file is locked by another process (a dbt run?); "
                                     "nothing was changed. Retry when it is done, or use --generated") from None
            raise WarehouseError(f"{path}: cannot open the DuckDB file read-only ({msg})") from None
        rows = self.scratch.conn.execute(
            "SELECT table_catalog, table_schema, table_name FROM information_schema.tables WHERE table_catalog = ?",
            [alias]).fetchall()
        self.warehouse_tables = {tuple(str(x).lower() for x in r) for r in rows}

    def duckdb_sql(self, node: Node) -> str:
        """A node's compiled SQL as DuckDB runs it: translated by sqlglot from the project's
        dialect (`SqlError` when it cannot be)."""
        sql = node.compiled_sql or ""
        if self.dialect == "duckdb":
            return sql
        if node.unique_id not in self._duckdb_sql:
            self._duckdb_sql[node.unique_id] = transpile(sql, self.dialect, "duckdb")
        return self._duckdb_sql[node.unique_id]

    def stage_from_warehouse(self, uids: Iterable[str]) -> None:
        """Copy samples of the warehouse's relations into private tables, then detach it."""
        if self.warehouse is None:
            return
        for uid in uids:
            node = self.by_id.get(uid)
            if node is None or node.materialized == "ephemeral":
                continue
            parts = _parts(node)
            if tuple(p.lower() for p in parts) not in self.warehouse_tables:
                continue
            tmp = f"memory.main.{quote_ident(f'{_SCRATCH_PREFIX}_wh_{len(self._staged)}')}"
            src = quote_relation(parts)
            n = self.scratch.conn.execute(f"SELECT count(*) FROM {src}").fetchone()[0]
            sample = "" if n <= self.rows else f" USING SAMPLE reservoir({int(self.rows)} ROWS) REPEATABLE ({int(self.seed)})"
            self.scratch.conn.execute(f"CREATE TABLE {tmp} AS SELECT * FROM {src}{sample}")
            self._staged[uid] = tmp
        self.scratch.conn.execute(f"DETACH {quote_ident(self.alias)}")
        self.warehouse = None

    def ensure(self, uid: str) -> bool:
        """Make relation `uid` available in the scratch database; False when it cannot be."""
        if uid in self.scratch:
            return True
        if uid in self.failed:
            return False
        node = self.by_id.get(uid)
        if node is None:
            self.failed[uid] = "not a node of the project"
            return False
        parts = _parts(node)
        try:
            if uid in self._staged:
                self.scratch.add(uid, parts, f"SELECT * FROM {self._staged[uid]}")
                self.origin[uid] = "warehouse"
            elif node.resource_type == "seed":
                self._seed(node, parts)
                self.origin[uid] = "seed file"
            elif node.resource_type in ("model", "snapshot"):
                if not node.compiled_sql or node.language != "sql":
                    self.failed[uid] = "no compiled SQL to run"
                    return False
                for dep in physical_inputs(self.project, uid):
                    if not self.ensure(dep):
                        self.failed[uid] = f"input {self.by_id[dep].name if dep in self.by_id else dep} unavailable"
                        return False
                try:
                    sql = self.duckdb_sql(node)
                except SqlError as exc:
                    self.failed[uid] = f"its {self.dialect} SQL cannot be translated to DuckDB: {exc}"
                    return False
                self.scratch.materialize(uid, parts, sql, limit=self.rows, seed=self.seed)
                self.origin[uid] = "run in scratch"
            else:
                self._generate(node, parts)
                self.origin[uid] = "generated"
        except (duckdb.Error, OSError) as exc:
            self.failed[uid] = _one_line(exc)
            return False
        return True

    def _seed(self, node: Node, parts: tuple[str, ...]) -> None:
        path = self.project_dir / (node.original_file_path or "")
        delimiter = seed_delimiter(node)
        header = next(read_seed(path, delimiter), [])
        types = {c.lower(): t for c, t in node.columns if t}
        cols = ", ".join(
            f"CAST({quote_ident(c)} AS {types[c.lower()]}) AS {quote_ident(c)}" if c.lower() in types
            else quote_ident(c) for c in header)
        limit = f" LIMIT {int(self.rows)}"
        self.scratch.add(node.unique_id, parts,
                         f"SELECT {cols} FROM read_csv({_literal(str(path))}, header = true, "
                         f"delim = {_literal(delimiter)}){limit}")

    def _generate(self, node: Node, parts: tuple[str, ...]) -> None:
        columns = [(c, (t or "VARCHAR")) for c, t in node.columns]
        if not columns:
            raise OSError(f"{node.name}: no declared columns to generate rows from")
        rows = generate_rows(columns, min(self.rows, 50), seed=self.seed)
        self.scratch.add_rows(node.unique_id, parts, columns, rows)


def generate_rows(columns: Sequence[tuple[str, str]], n: int, *, seed: int = 42,
                  strings: Sequence[str] = ()) -> list[tuple]:
    """`n` deterministic rows for columns of DuckDB types: small domains (values repeat, so
    joins and groups match), every seventh value NULL. `strings` join the text pool (e.g. the
    literals a query compares with).

    >>> generate_rows([("id", "INTEGER"), ("name", "VARCHAR")], 3, seed=1)
    [(1, 'a'), (2, 'a'), (None, 'a')]
    """
    import datetime
    import random

    rnd = random.Random(seed)
    pool = ["a", "b", "c", *strings]
    out = []
    for i in range(n):
        row = []
        for j, (_name, typ) in enumerate(columns):
            t = typ.upper()
            if (i * 3 + j) % 7 == 6 and i:
                row.append(None)
                continue
            k = (i + j + rnd.randrange(3)) % 5
            if t.endswith("[]"):
                row.append([pool[k % len(pool)]] if t.startswith("VARCHAR") else [k])
            elif t.split("(")[0] in _SIGNED_INTS + _UNSIGNED_INTS or t.startswith("DECIMAL"):
                row.append(k + 1)
            elif t.split("(")[0] in _FLOATS:
                row.append((k + 1) / 4)
            elif t == "BOOLEAN":
                row.append(k % 2 == 0)
            elif t == "DATE":
                row.append(datetime.date(2026, 1, 1 + k))
            elif t.startswith("TIMESTAMP"):
                row.append(datetime.datetime(2026, 1, 1 + k, k))
            else:
                row.append(pool[k % len(pool)] if k < 3 or not strings else pool[(3 + i) % len(pool)])
        out.append(tuple(row))
    return out


def verify_project(
    project: ProjectLineage,
    project_dir: Path,
    *,
    select: Iterable[str] | None = None,
    rows: int = 500,
    warehouse: Path | None = None,
    progress: Callable[[Node], None] | None = None,
) -> VerifyResult:
    """Verify every (selected) SQL model of `project` by execution (see the module docstring).

    `warehouse`: a built DuckDB file to sample inputs from (opened read-only); None: inputs are
    seeds read from their files, sources generated from declared types, and models run in the
    scratch database in DAG order.
    """
    if rows < 1:
        raise UserError(f"--rows {rows}: must be at least 1")
    chosen = set(select) if select is not None else None
    models = [m for m in project.models if chosen is None or m.node.unique_id in chosen]
    checks: list[ModelCheck] = []
    with Scratch() as scratch:
        inputs = _Inputs(project, scratch, project_dir, rows, warehouse, dialect=project.dialect or "duckdb")
        if warehouse is not None:
            # every relation upstream, so models missing from the warehouse can be run from them
            inputs.stage_from_warehouse(_ancestors(project, [m.node.unique_id for m in models]))
        for ml in models:
            if progress:
                progress(ml.node)
            checks.append(_verify_model(project, ml, scratch, inputs))
        counts: dict[str, int] = {}
        for origin in inputs.origin.values():
            counts[origin] = counts.get(origin, 0) + 1
    where = f"warehouse {warehouse} (read-only)" if warehouse is not None else "no warehouse"
    detail = ", ".join(f"{n} from {o}" for o, n in sorted(counts.items()))
    if (project.dialect or "duckdb") != "duckdb":
        where += f"; {project.dialect} SQL translated to DuckDB by sqlglot"
    return VerifyResult(tuple(checks), f"{where}; relations: {detail or 'none'}", rows)


def _ancestors(project: ProjectLineage, uids: Iterable[str]) -> list[str]:
    """Every node the given ones depend on, transitively (in DAG order)."""
    by_id = {n.unique_id: n for n in project.nodes}
    seen: set[str] = set()
    stack = list(uids)
    while stack:
        uid = stack.pop()
        node = by_id.get(uid)
        for dep in node.depends_on if node else ():
            if dep not in seen:
                seen.add(dep)
                stack.append(dep)
    return [n.unique_id for n in project.nodes if n.unique_id in seen]


def _verify_model(project: ProjectLineage, ml: ModelLineage, scratch: Scratch, inputs: _Inputs) -> ModelCheck:
    node = ml.node
    status = ml.status.value
    if node.language != "sql":
        return ModelCheck(node.unique_id, node.name, "skipped", f"{node.language} model: no SQL to run", status=status)
    if not node.compiled_sql:
        return ModelCheck(node.unique_id, node.name, "skipped", "no compiled SQL", status=status)
    if ml.status == Status.FAILED:
        return ModelCheck(node.unique_id, node.name, "skipped", "static lineage FAILED: nothing to compare",
                          status=status)
    deps = physical_inputs(project, node.unique_id)
    for dep in deps:
        if not inputs.ensure(dep):
            name = inputs.by_id[dep].name if dep in inputs.by_id else dep
            return ModelCheck(node.unique_id, node.name, "skipped",
                              f"input {name} unavailable: {inputs.failed.get(dep, '?')}", status=status)
    try:
        sql = inputs.duckdb_sql(node)
    except SqlError as exc:
        return ModelCheck(node.unique_id, node.name, "skipped",
                          f"its {inputs.dialect} SQL cannot be translated to DuckDB: {exc}", status=status)
    check = verify_statement(scratch, sql, static_edges(project, node.unique_id), deps,
                             name=node.name, unique_id=node.unique_id, status=status,
                             row_influences=static_row_influences(project, node.unique_id))
    if check.outcome == "error" and inputs.dialect != "duckdb":
        # translated SQL DuckDB rejects (a function sqlglot does not translate): not a lineage finding
        return _replace(check, outcome="skipped",
                        message=f"its {inputs.dialect} SQL, translated to DuckDB, does not run: "
                                + check.message.removeprefix("the SQL fails in the scratch database: "))
    if ml.status == Status.PARTIAL and check.missing:
        note = "static lineage is PARTIAL: missing edges may be the known gap"
        check = _replace(check, message="; ".join(x for x in (check.message, note) if x))
    return check


def _one_line(exc: BaseException | str) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "")
