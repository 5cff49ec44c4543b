"""Lineage of a plain SQL file, outside any dbt project: the library behind `lineage-tools sql`.

A file may hold one statement or several. Statements are split on `;` (outside quotes, comments
and dollar-quoted bodies) and analysed in order; each query-producing statement (SELECT and set
operations, CREATE TABLE/VIEW ... AS, INSERT ... SELECT, and UPDATE / MERGE when the engine can
trace them) gives one `StatementResult`. Other statements (SET, DROP, USE, ...) are skipped, and
so is a statement that does not parse when the file holds others (with a warning naming its line;
a file whose only statement does not parse is an error).
A table or view created earlier in the file feeds later statements: its output columns (or the
columns a `CREATE TABLE t (a int, ...)` declares) are added to the catalog, so `SELECT *` from it
expands, but its edges are not chained into later ones (each statement reports its own inputs,
as in a script's own lineage).

`views` (named queries that table references resolve into, like dbt models or views that are
not in the file) are analysed first and chained: an edge from a view's column is replaced by
the edges of that column inside the view, so results end at real tables.

A schema (`--schema SCHEMA.json`) maps table names, bare or qualified (`users`,
`main.users`, `db.main.users`), to a list of column names or to `{column: type}`;
sqlglot's nested form (`{"db": {"main": {"users": {...}}}}`) is accepted too.

>>> [(line, text) for line, text in split_statements("select 1;\\n-- x;\\nselect ';' as s")]
[(1, 'select 1'), (2, "-- x;\\nselect ';' as s")]
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import records as r
from .errors import LineageToolsError, SqlError, UserError
from . import deadline as hard_deadline
from .lineage import ISOLATE_CHARS, analyze, hard_seconds, time_budget_spent
from .sql import Catalog, check_dialect, normalize_relation, parse_statement, plain_name

log = logging.getLogger(__name__)

DEFAULT_DIALECT = "duckdb"

# Statement kinds (sqlglot expression keys) that produce rows we can trace; INSERT and CREATE
# count when they hold a query; UPDATE and MERGE are handed to the engine, which may decline.
QUERY_KINDS = frozenset({"select", "union", "intersect", "except", "subquery", "pivot"})  # pivot: DuckDB's statement
DML_KINDS = frozenset({"update", "merge"})

Columns = tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class StatementResult:
    """One analysed statement of a file: where it starts, what it is, and its lineage."""

    index: int  # 1-based position among the file's statements (skipped ones count)
    line: int  # 1-based line where the statement starts in the file
    kind: str  # select | insert | create | update | merge | ...
    lineage: r.StatementLineage


@dataclass(frozen=True)
class Skipped:
    """A statement of the file that gives no lineage, and why."""

    index: int
    line: int
    kind: str  # the statement's kind, or "unparsed"
    reason: str


@dataclass(frozen=True)
class SqlFileLineage:
    """The lineage of every query-producing statement of one SQL text."""

    path: str
    dialect: str
    statements: tuple[StatementResult, ...]
    skipped: tuple[Skipped, ...] = ()  # statements not traced, in file order

    @property
    def edges(self) -> tuple[tuple[StatementResult, r.ColumnEdge], ...]:
        return tuple((st, e) for st in self.statements for e in st.lineage.edges)

    @property
    def status(self) -> r.Status:
        """The worst status of the statements (FULL when every statement is FULL)."""
        order = (r.Status.FULL, r.Status.PARTIAL, r.Status.FAILED)
        return max((st.lineage.status for st in self.statements), key=order.index,
                   default=r.Status.FULL)


# ---------------------------------------------------------------------------------------------
# Reading inputs


def read_sql(path: str | Path) -> str:
    """The text of an SQL file (UTF-8), or of stdin for `-`; `UserError` naming the file else."""
    if str(path) == "-":
        data = sys.stdin.buffer.read()
        name = "<stdin>"
    else:
        p = Path(path)
        name = str(p)
        if not p.exists():
            raise UserError(f"SQL file not found: {name}")
        if p.is_dir():
            raise UserError(f"SQL file is a directory: {name}")
        try:
            data = p.read_bytes()
        except OSError as err:
            raise UserError(f"cannot read SQL file {name}: {err.strerror or err}") from err
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UserError(
            f"SQL file {name} is not UTF-8 text (byte {err.start}: {err.reason})"
        ) from err


def load_schema(path: str | Path) -> dict[str, Columns]:
    """Read a SCHEMA.json file: `UserError` naming the file (and the key) when it is unusable."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"schema file not found: {p}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise UserError(f"schema file {p} is not UTF-8 text") from err
    except json.JSONDecodeError as err:
        raise UserError(f"schema file {p} is not valid JSON: {err.msg} at line {err.lineno} "
                        f"column {err.colno}") from err
    return schema_from_mapping(data, str(p))


def schema_from_mapping(data: object, source: str = "schema") -> dict[str, Columns]:
    """Validate a schema mapping: table name -> [column, ...] | {column: type or null}, or the
    same nested by name parts. Returns dotted table name -> ((column, type), ...).

    >>> schema_from_mapping({"main.users": ["id", "name"], "db": {"s": {"t": {"a": "int"}}}})
    {'main.users': (('id', None), ('name', None)), 'db.s.t': (('a', 'int'),)}
    >>> schema_from_mapping({"users": "id"}, "s.json")
    Traceback (most recent call last):
    ...
    lineage_tools.errors.UserError: schema s.json: key 'users': expected a list of column names or an object {column: type}, got a string
    """
    if not isinstance(data, Mapping):
        raise UserError(f"schema {source}: expected an object mapping table names to columns, "
                        f"got {_kind(data)}")
    out: dict[str, Columns] = {}

    def walk(prefix: str, mapping: Mapping) -> None:
        for key, value in mapping.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if not isinstance(key, str) or not key.strip():
                raise UserError(f"schema {source}: empty table name under {prefix or 'the top'}")
            if isinstance(value, list):
                bad = next((c for c in value if not isinstance(c, str) or not c), None)
                if bad is not None or not value:
                    raise UserError(f"schema {source}: key {name!r}: columns must be non-empty "
                                    f"strings (got {bad!r})" if value else
                                    f"schema {source}: key {name!r}: empty column list")
                out[name] = tuple((c, None) for c in value)
            elif isinstance(value, Mapping) and any(
                isinstance(v, (Mapping, list)) for v in value.values()
            ):
                if name.count(".") >= 2:
                    raise UserError(f"schema {source}: key {name!r}: nested deeper than "
                                    "catalog.schema.table")
                walk(name, value)
            elif isinstance(value, Mapping) and value:
                bad = next((c for c, t in value.items() if t is not None and not isinstance(t, str)),
                           None)
                if bad is not None:
                    raise UserError(f"schema {source}: key {name!r}: type of column {bad!r} must "
                                    f"be a string or null, got {_kind(value[bad])}")
                out[name] = tuple((str(c), t) for c, t in value.items())
            else:
                raise UserError(f"schema {source}: key {name!r}: expected a list of column names "
                                f"or an object {{column: type}}, got {_kind(value)}")

    walk("", data)
    return out


def _kind(value: object) -> str:
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an empty object" if not value else "an object"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


# ---------------------------------------------------------------------------------------------
# Splitting


def split_statements(sql: str) -> list[tuple[int, str]]:
    """(1-based start line, text) of each statement: split on `;` outside quotes, comments and
    `$$` bodies. Blank and comment-only pieces are dropped.

    >>> split_statements("select 'a;b' as x; /* ; */ select 2 -- ;")
    [(1, "select 'a;b' as x"), (1, '/* ; */ select 2 -- ;')]
    """
    pieces: list[tuple[int, str]] = []
    start = 0
    i = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ""
        if ch in "'\"`":
            i = _skip_quoted(sql, i, ch)
        elif ch == "-" and nxt == "-":
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch == "/" and nxt == "*":
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch == "$":
            tag_end = sql.find("$", i + 1)
            tag = sql[i : tag_end + 1] if tag_end > 0 else ""
            if tag and (tag == "$$" or tag[1:-1].isidentifier()):
                end = sql.find(tag, tag_end + 1)
                i = n if end < 0 else end + len(tag)
            else:
                i += 1
        elif ch == ";":
            pieces.append((start, sql[start:i]))
            i += 1
            start = i
        else:
            i += 1
    pieces.append((start, sql[start:]))
    out = []
    for offset, text in pieces:
        if not _has_code(text):
            continue
        lead = len(text) - len(text.lstrip())
        line = sql.count("\n", 0, offset + lead) + 1
        out.append((line, text.strip()))
    return out


def _skip_quoted(sql: str, i: int, quote: str) -> int:
    """Index just past the quoted string starting at i (doubled quotes and backslashes kept)."""
    j = i + 1
    while j < len(sql):
        if sql[j] == "\\" and quote == "'":
            j += 2
            continue
        if sql[j] == quote:
            if j + 1 < len(sql) and sql[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    return len(sql)


def _has_code(text: str) -> bool:
    """True when the text holds something besides blanks and comments."""
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Analysis


def statement_kind(statement: object) -> str:
    """The sqlglot key of a parsed statement (`select`, `insert`, ...), without importing it."""
    return str(getattr(statement, "key", type(statement).__name__)).lower()


def _traceable(statement: object) -> bool:
    kind = statement_kind(statement)
    if kind in QUERY_KINDS:
        return True
    if kind in ("insert", "create"):
        args = getattr(statement, "args", {})
        return args.get("expression") is not None
    return kind in DML_KINDS


def analyze_text(
    sql: str,
    *,
    dialect: str = DEFAULT_DIALECT,
    schema: Mapping[str, Columns | Sequence[str] | Mapping[str, str | None]] | None = None,
    views: Mapping[str, str] | None = None,
    path: str = "<sql>",
    time_budget: float | None = None,
    schema_source: str = "schema",
) -> SqlFileLineage:
    """Lineage of every query-producing statement in `sql` (see the module docstring).

    `schema_source` names the schema in error messages (its file, when read from one).

    Raises `DialectError` for an unknown dialect and `UserError` naming `path` and the line when
    a statement cannot be parsed or when the text holds no statement that can be traced.
    """
    dialect = check_dialect(dialect)
    catalog = _catalog(dialect, schema or {}, schema_source)
    view_lineage = _analyze_views(views or {}, dialect, catalog, path)
    pieces = split_statements(sql)
    if not pieces:
        raise UserError(f"{path}: no SQL statement found")
    results: list[StatementResult] = []
    skipped: list[Skipped] = []
    parse_errors: list[UserError] = []
    for index, (line, text) in enumerate(pieces, start=1):
        try:
            piece = _read_piece(text, dialect, catalog, time_budget)
        except SqlError as err:
            error = UserError(_where(path, line, err) + f": cannot parse SQL: {err}")
            if len(pieces) == 1:
                raise error from err
            # one statement of a script (say a procedural IF) should not hide the others
            log.warning("warning: %s; statement skipped", error)
            parse_errors.append(error)
            skipped.append(Skipped(index, line, "unparsed", str(err)))
            continue
        kind, lineage = piece.kind, piece.lineage
        if lineage is None:
            why = "no column lineage"
            if piece.declared is not None:
                # CREATE TABLE t (a int, ...): later statements may read t
                catalog.add(*piece.declared)
                why = f"declares the columns of {piece.declared[0]}"
            log.debug("%s:%d: skipping %s statement (%s)", path, line, kind.upper(), why)
            skipped.append(Skipped(index, line, kind, why))
            continue
        if kind not in QUERY_KINDS and _declined(lineage):
            # UPDATE / MERGE the engine does not trace, INSERT ... VALUES
            why = "; ".join(x.message for x in lineage.reasons)
            log.debug("%s:%d: %s not traced: %s", path, line, kind.upper(), why)
            skipped.append(Skipped(index, line, kind, why))
            continue
        lineage = _shift_lines(lineage, line - 1)
        if view_lineage:
            lineage = compose(lineage, view_lineage, dialect)
        results.append(StatementResult(index, line, kind, lineage))
        if kind == "create" and lineage.target and lineage.columns and "*" not in lineage.columns:
            # a table created here feeds the statements after it
            catalog.add(lineage.target, [(c, None) for c in lineage.columns],
                        complete=not any(_open_output(x) for x in lineage.reasons))
    results = [dataclasses.replace(st, lineage=_plain_names(st.lineage, dialect)) for st in results]
    if not results:
        if parse_errors:
            raise parse_errors[0]
        kinds = ", ".join(sorted({x.kind.upper() for x in skipped}))
        raise UserError(f"{path}: no statement to trace (found {kinds}); expected SELECT, "
                        "CREATE TABLE/VIEW ... AS or INSERT ... SELECT")
    return SqlFileLineage(path, dialect, tuple(results), tuple(skipped))


@dataclass(frozen=True)
class _Piece:
    """What one statement of a file is: its kind, and its lineage or (not traced) the columns
    it declares."""

    kind: str
    lineage: r.StatementLineage | None
    declared: tuple[str, list[tuple[str, str | None]]] | None = None


def _read_piece(text: str, dialect: str, catalog: Catalog, time_budget: float | None) -> _Piece:
    """Parse and analyse one statement; a long one (`lineage.ISOLATE_CHARS`) with a budget
    entirely in a child killed at the hard deadline, its parse included (a 1.4 MB WHERE clause
    takes seconds to parse). `SqlError` when it does not parse."""
    if time_budget is None or len(text) < ISOLATE_CHARS or not hard_deadline.can_isolate():
        return _piece(text, dialect, catalog, time_budget, time.monotonic())
    try:
        return hard_deadline.run(_piece, text, dialect, catalog, time_budget, time.monotonic(),
                                 seconds=hard_seconds(time_budget))
    except hard_deadline.DeadlineExceeded:
        return _Piece(_leading_kind(text), time_budget_spent(time_budget, len(text)))


def _piece(text: str, dialect: str, catalog: Catalog, time_budget: float | None, started: float) -> _Piece:
    statement = parse_statement(text, dialect)
    kind = statement_kind(statement)
    if not _traceable(statement):
        return _Piece(kind, None, _declared_columns(statement, dialect))
    return _Piece(kind, analyze(text, dialect=dialect, catalog=catalog, time_budget=time_budget, isolate=False,
                                started=started))


def _leading_kind(text: str) -> str:
    """A statement's kind from its first word, for one never parsed (`select` for WITH)."""
    word = re.match(r"\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*\(*\s*(\w+)", text, re.S)
    kind = word.group(1).lower() if word else "select"
    return "select" if kind == "with" else kind


def _plain_names(lineage: r.StatementLineage, dialect: str) -> r.StatementLineage:
    """Relation names as OpenLineage names datasets: plain dotted, without SQL quoting
    (`"date"."date"` is `date.date`, `` `bq-proj`.ds.t `` is `bq-proj.ds.t`)."""
    def plain(name: str) -> str:
        return plain_name(name, dialect)

    return dataclasses.replace(
        lineage,
        target=plain(lineage.target) if lineage.target else lineage.target,
        edges=tuple(dataclasses.replace(e, source=r.ColumnRef(plain(e.source.relation), e.source.column))
                    for e in lineage.edges),
        row_influences=tuple(dataclasses.replace(x, relation=plain(x.relation)) for x in lineage.row_influences),
    )


def _declined(lineage: r.StatementLineage) -> bool:
    """True when the engine declined a statement as a whole (FAILED, only unsupported)."""
    return lineage.status is r.Status.FAILED and all(
        x.code is r.ReasonCode.UNSUPPORTED for x in lineage.reasons
    )


def _declared_columns(statement: object, dialect: str) -> tuple[str, list[tuple[str, str | None]]] | None:
    """(table, [(column, type)]) of a `CREATE TABLE t (a int, ...)` without a query, else None."""
    if statement_kind(statement) != "create":
        return None
    schema = getattr(statement, "this", None)
    if statement_kind(schema) != "schema":
        return None
    columns = []
    for col in getattr(schema, "expressions", []):
        if statement_kind(col) != "columndef":
            continue
        kind = col.args.get("kind")
        columns.append((col.this.sql(dialect=dialect), kind.sql(dialect=dialect) if kind else None))
    if not columns:
        return None
    try:
        # names as the dialect resolves them (`a` is `A` in Snowflake, `"a"` stays `a`)
        return normalize_relation(schema.this, dialect), [
            (normalize_relation(name, dialect), typ) for name, typ in columns
        ]
    except SqlError:
        return None


def analyze_file(
    path: str | Path,
    *,
    dialect: str = DEFAULT_DIALECT,
    schema_path: str | Path | None = None,
    time_budget: float | None = None,
) -> SqlFileLineage:
    """`lineage-tools sql FILE`: read the file (`-` for stdin) and the schema, then analyse."""
    dialect = check_dialect(dialect)  # a bad dialect is reported before a missing file
    schema = load_schema(schema_path) if schema_path is not None else None
    sql = read_sql(path)
    name = "<stdin>" if str(path) == "-" else str(path)
    return analyze_text(sql, dialect=dialect, schema=schema, path=name, time_budget=time_budget,
                        schema_source=str(schema_path))


def _where(path: str, line: int, err: SqlError) -> str:
    at = line + (err.line - 1 if err.line else 0)
    return f"{path}:{at}"


def _catalog(dialect: str, schema: Mapping, source: str) -> Catalog:
    tables: dict[str, Mapping[str, str | None] | list[str]] = {}
    for name, cols in schema.items():
        if isinstance(cols, Mapping):
            tables[name] = dict(cols)
        elif all(isinstance(c, tuple) for c in cols):
            tables[name] = dict(cols)
        else:
            tables[name] = list(cols)
    try:
        # a schema file may list some of a table's columns: one it leaves out keeps its edge
        return Catalog(dialect, tables, complete=False)
    except LineageToolsError as err:
        raise UserError(f"schema {source}: {err}") from err


def _shift_lines(lineage: r.StatementLineage, offset: int) -> r.StatementLineage:
    """Lines of a statement's reasons and columns, counted from the top of the file."""
    if not offset:
        return lineage
    return dataclasses.replace(
        lineage,
        reasons=tuple(
            dataclasses.replace(x, line=x.line + offset) if x.line else x for x in lineage.reasons
        ),
        column_lines=tuple((c, ln + offset) for c, ln in lineage.column_lines),
    )


# ---------------------------------------------------------------------------------------------
# Views: named upstream queries, chained into the statements that read them


def _analyze_views(
    views: Mapping[str, str], dialect: str, catalog: Catalog, path: str
) -> dict[str, r.StatementLineage]:
    """Analyse each view once its inputs are known; register its columns in the catalog.

    Views may read each other in any order: they are analysed in rounds until their output
    columns stop changing (at most one round per view).
    """
    if not views:
        return {}
    names = {normalize_relation(k, dialect): sql for k, sql in views.items()}
    done: dict[str, r.StatementLineage] = {}
    for _ in range(len(names) + 1):
        changed = False
        for name, sql in names.items():
            lin = analyze(sql, dialect=dialect, catalog=catalog)
            if lin.status is r.Status.FAILED:
                raise UserError(f"{path}: view {name}: cannot analyse SQL: "
                                + "; ".join(x.message for x in lin.reasons))
            previous = done.get(name)
            done[name] = lin
            complete = "*" not in lin.columns  # an unexpanded star: columns unknown
            if lin.columns and complete and (previous is None or previous.columns != lin.columns):
                catalog.add(name, [(c, None) for c in lin.columns],
                            complete=not any(_open_output(x) for x in lin.reasons))
                changed = True
        if not changed:
            break
    resolved: dict[str, r.StatementLineage] = {}
    for name in done:
        resolved[name] = compose(done[name], done, dialect, seen=frozenset({name}))
    return resolved


def compose(
    lineage: r.StatementLineage,
    views: Mapping[str, r.StatementLineage],
    dialect: str,
    seen: frozenset[str] = frozenset(),
) -> r.StatementLineage:
    """Replace each edge from a view's column by the edges of that column inside the view.

    The composed subtype keeps what reached the output: INDIRECT wins over DIRECT; AGGREGATION
    over TRANSFORMATION over IDENTITY. A view's dataset-wide edges become dataset-wide edges of
    the reader. `*` columns of a view stand for any of its columns (unexpanded star).
    """
    edges: list[r.ColumnEdge] = []
    reasons = list(lineage.reasons)
    status = lineage.status
    used: set[str] = set()
    for edge in lineage.edges:
        view_name = _view_of(edge.source.relation, views)
        if view_name is None or view_name in seen:
            edges.append(edge)
            continue
        view = compose(views[view_name], views, dialect, seen | {view_name})
        if view_name not in used:
            used.add(view_name)
            # (a view's output that may have more columns than it names is its own matter)
            inherited = [x for x in view.reasons if not _open_output(x)]
            reasons += [dataclasses.replace(x, message=f"view {view_name}: {x.message}", line=None)
                        for x in inherited]
            if inherited and view.status is not r.Status.FULL and status is r.Status.FULL:
                status = r.Status.PARTIAL
        inner = [e for e in view.edges if e.target == edge.source.column]
        if not inner and edge.source.column != "*":
            inner = [e for e in view.edges if e.target == "*"]
        if edge.source.column == "*":
            inner = [e for e in view.edges if e.target is not None]
        for e in inner:
            edges.append(
                r.ColumnEdge(
                    target=edge.target,
                    source=e.source,
                    subtype=compose_subtype(edge.subtype, e.subtype),
                    masking=edge.masking or e.masking,
                    incremental_only=edge.incremental_only or e.incremental_only,
                )
            )
        edges.extend(
            r.ColumnEdge(None, e.source, e.subtype, e.masking, e.incremental_only)
            for e in view.edges
            if e.target is None
        )
    # a view read only through its unexpanded star leaves no edge: still say so
    for relation in _unknown_relations(lineage):
        view_name = _view_of(relation, views)
        if view_name is not None and view_name not in seen and view_name not in used:
            view = views[view_name]
            used.add(view_name)
            reasons += [dataclasses.replace(x, message=f"view {view_name}: {x.message}", line=None)
                        for x in view.reasons]
    unique = tuple(dict.fromkeys(edges))
    return dataclasses.replace(lineage, edges=unique, reasons=tuple(dict.fromkeys(reasons)),
                               status=status)


def _open_output(reason: r.Reason) -> bool:
    """The reason a statement gives when its `*` came from a partial column list (column "*")."""
    return reason.code is r.ReasonCode.UNEXPANDED_STAR and reason.column == "*"


def _unknown_relations(lineage: r.StatementLineage) -> list[str]:
    """Relations a lineage could not read columns from (named in its UNKNOWN_TABLE reasons)."""
    out = []
    for x in lineage.reasons:
        if x.code is r.ReasonCode.UNKNOWN_TABLE and x.message.startswith("relation "):
            out.append(x.message.split()[1])
    return out


def _view_of(relation: str, views: Mapping[str, r.StatementLineage]) -> str | None:
    if relation in views:
        return relation
    parts = relation.split(".")
    hits = [v for v in views if v.split(".") == parts[-len(v.split(".")) :]]
    return hits[0] if len(hits) == 1 else None


def compose_subtype(outer: r.Subtype, inner: r.Subtype) -> r.Subtype:
    """The subtype of `outer` applied on top of `inner`.

    >>> compose_subtype(r.Subtype.IDENTITY, r.Subtype.AGGREGATION).value
    'AGGREGATION'
    >>> compose_subtype(r.Subtype.TRANSFORMATION, r.Subtype.WINDOW).value
    'WINDOW'
    """
    if outer.type is r.EdgeType.INDIRECT:
        return outer
    if inner.type is r.EdgeType.INDIRECT:
        return inner
    rank = (r.Subtype.IDENTITY, r.Subtype.TRANSFORMATION, r.Subtype.AGGREGATION)
    return max(outer, inner, key=rank.index)
