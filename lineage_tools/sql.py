"""The only place that parses SQL and holds table schemas (sqlglot).

* `check_dialect` validates a dialect name,
* `normalize_relation` turns a relation name into the dotted, normalized form used everywhere,
* `Catalog` wraps ONE sqlglot `MappingSchema`, built incrementally,
* `parse_statement` parses one statement and turns parser errors into `errors.SqlError`,
* `qualify_statement` qualifies tables and columns against a catalog (used by `lineage`).

sqlglot is imported on first need: names in the forms dbt writes (`"db"."main"."t"`, plain
lower-case columns) are read without it once the dialect's naming rules are known, and
`NameRules` / `prime_names` let a caller hand over rules and relation names it has read
before (the project layer keeps them in its manifest digest), so a run served by the cache
does not import sqlglot at all.

>>> normalize_relation('"Pipeline"."main"."Stg"', "duckdb")
'pipeline.main.stg'
>>> cat = Catalog("duckdb", {"main.users": ["ID", "name"]})
>>> cat.columns("MAIN.Users")
('id', 'name')
>>> "users" in cat, "orders" in cat
(True, False)
>>> cat.add("main.events", ["id"], complete=False)
>>> cat.is_complete("main.users"), cat.is_complete("events")
(True, False)
"""

from __future__ import annotations

import difflib
import functools
import logging
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import DialectError, SqlError

if TYPE_CHECKING:  # imported where used: see the module docstring
    from sqlglot import exp
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.schema import MappingSchema

log = logging.getLogger(__name__)

# Stands in for the missing database/catalog parts of a relation named with fewer parts than
# the catalog's deepest one: sqlglot's MappingSchema wants every table at the same depth.
_PAD = "__lineage_tools_unnamed__"

ColumnSpec = Sequence[str] | Mapping[str, str | None]


@functools.lru_cache(maxsize=1)
def _known_dialects() -> frozenset[str]:
    from sqlglot.dialects.dialect import Dialects

    return frozenset(d.value for d in Dialects if d.value)


def check_dialect(name: str) -> str:
    """Return `name` as a sqlglot dialect name; raise `DialectError` listing close names.

    >>> check_dialect("DuckDB")
    'duckdb'
    """
    key = (name or "").strip().lower()
    if key in _RULES or key in _known_dialects():
        return key
    known = sorted(_known_dialects())
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
    hint = f" (did you mean: {', '.join(close)}?)" if close else f" (known: {', '.join(known)})"
    raise DialectError(f"unknown SQL dialect {name!r}{hint}")


@functools.lru_cache(maxsize=64)
def _dialect(dialect: str) -> Dialect:
    from sqlglot.dialects.dialect import Dialect

    return Dialect.get_or_raise(check_dialect(dialect))


def _is_table(value: object) -> bool:
    """True for a sqlglot Table (without importing sqlglot: no Table exists before it is)."""
    module = sys.modules.get("sqlglot.expressions")
    return module is not None and isinstance(value, module.Table)


def _table(name: str | exp.Table, dialect: str) -> exp.Table:
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    if isinstance(name, exp.Table):
        return name
    try:
        table = exp.to_table(name, dialect=dialect)
    except SqlglotError as err:
        raise SqlError(f"not a relation name: {name!r} ({err})") from err
    if not isinstance(table, exp.Table) or not table.name:
        raise SqlError(f"not a relation name: {name!r}")
    return table


def relation_parts(name: str | exp.Table, dialect: str) -> tuple[str, ...]:
    """The normalized parts (catalog, db, name; as many as given) of a relation name.

    >>> relation_parts('main."Users"', "postgres")
    ('main', 'Users')
    """
    if isinstance(name, str):
        return _relation_parts_of_text(name, dialect)
    return _relation_parts(name, dialect)


# Relation names read before (`prime_names`): (name, dialect) -> parts, as sqlglot read them.
_KNOWN_PARTS: dict[tuple[str, str], tuple[str, ...]] = {}


def _relation_parts_of_text(name: str, dialect: str) -> tuple[str, ...]:
    known = _KNOWN_PARTS.get((name, dialect))
    return known if known is not None else _relation_parts_of_new_text(name, dialect)


@functools.lru_cache(maxsize=16384)
def _relation_parts_of_new_text(name: str, dialect: str) -> tuple[str, ...]:
    # fast path for what dbt writes (`"db"."main"."stg_users"`): lower-case quoted parts that
    # the dialect's default rules keep as they are; anything else is parsed by sqlglot
    if name_rules(dialect).keeps_quoted_lower:
        parts = name.split(".")
        if 1 <= len(parts) <= 3 and all(_QUOTED_LOWER.fullmatch(p) for p in parts):
            return tuple(p[1:-1] for p in parts)
    return _relation_parts(name, dialect)


_QUOTED_LOWER = re.compile(r'"[a-z_][a-z0-9_]*"')
_PLAIN_LOWER = re.compile(r"[a-z_][a-z0-9_]*")


@dataclass(frozen=True)
class NameRules:
    """What reading names in a dialect needs from sqlglot, as plain facts (JSON-ready).

    `keeps_quoted_lower`: `"abc"` is an identifier that the dialect keeps as it is;
    `keeps_plain_lower`: an unquoted lower-case name (`abc_1`) is kept as it is.
    """

    dialect: str
    keeps_quoted_lower: bool
    keeps_plain_lower: bool


# A dialect's rules, computed with sqlglot or handed over by `prime_names`.
_RULES: dict[str, NameRules] = {}


def name_rules(dialect: str) -> NameRules:
    """The naming rules of a (valid) dialect; sqlglot is imported unless they were primed.

    >>> name_rules("duckdb")
    NameRules(dialect='duckdb', keeps_quoted_lower=True, keeps_plain_lower=True)
    >>> name_rules("snowflake").keeps_plain_lower
    False
    """
    rules = _RULES.get(dialect)
    if rules is None:
        from sqlglot.dialects.dialect import Dialect, NormalizationStrategy

        dia = _dialect(dialect)
        default = type(dia).normalize_identifier is Dialect.normalize_identifier
        strategy = dia.normalization_strategy
        rules = _RULES[dialect] = NameRules(
            dialect=dialect,
            keeps_quoted_lower='"' in dia.tokenizer_class.IDENTIFIERS and default
            and strategy is not NormalizationStrategy.CASE_INSENSITIVE_UPPERCASE,
            keeps_plain_lower=default and strategy not in (
                NormalizationStrategy.UPPERCASE, NormalizationStrategy.CASE_INSENSITIVE_UPPERCASE),
        )
    return rules


def prime_names(rules: NameRules, relations: Mapping[str, Iterable[str]] = {}) -> None:  # noqa: B006
    """Hand over a dialect's naming rules and relation names already read (name -> parts),
    both as `name_rules` and `relation_parts` gave them with the same sqlglot: later lookups of
    these need no sqlglot. The caller vouches for them (e.g. a digest keyed on sqlglot's version).

    >>> prime_names(NameRules("duckdb", True, True), {"db.main.t": ("db", "main", "t")})
    >>> relation_parts("db.main.t", "duckdb")
    ('db', 'main', 't')
    """
    _RULES.setdefault(rules.dialect, rules)
    for name, parts in relations.items():
        _KNOWN_PARTS[(name, rules.dialect)] = tuple(parts)


def _relation_parts(name: str | exp.Table, dialect: str) -> tuple[str, ...]:
    from sqlglot import exp

    dia = _dialect(dialect)
    table = _table(name, dialect)
    parts = []
    for part in table.parts:
        if isinstance(part, exp.Identifier):
            parts.append(dia.normalize_identifier(part.copy()).name)
        else:
            parts.append(part.name)
    return tuple(parts)


def normalize_relation(name: str | exp.Table, dialect: str) -> str:
    """The dotted, normalized name of a relation following the dialect's identifier rules.

    A part that would not read back as itself (a quote, a dot, a space, a case-sensitive name)
    is quoted, so the name always round-trips through `relation_parts`.

    >>> normalize_relation("Main.Users", "snowflake")
    'MAIN.USERS'
    >>> normalize_relation('"db"."main"."a b"', "duckdb")
    'db.main."a b"'
    """
    return relation_name(relation_parts(name, dialect), dialect)


def plain_name(name: str, dialect: str) -> str:
    """A relation name as OpenLineage names datasets: its parts joined by dots, without the
    SQL quoting `normalize_relation` adds (quoting is syntax, not part of a name).

    >>> plain_name('"date"."date"', "duckdb"), plain_name("`bq-proj`.dataset.t", "bigquery")
    ('date.date', 'bq-proj.dataset.t')
    >>> plain_name("db.[schema].t", "tsql")
    'db.schema.t'
    """
    if not any(q in name for q in '"`['):
        return name  # nothing quoted: already plain (and no sqlglot needed)
    try:
        return ".".join(relation_parts(name, dialect))
    except SqlError:
        return name


@functools.lru_cache(maxsize=16384)
def relation_name(parts: tuple[str, ...], dialect: str) -> str:
    """Join normalized relation parts into a dotted name that `relation_parts` reads back.

    >>> relation_name(("main", "Users"), "postgres")
    'main."Users"'
    """
    from sqlglot import exp

    dia = _dialect(dialect)
    plain_kept = name_rules(dialect).keeps_plain_lower
    rendered = []
    for part in parts:
        if plain_kept and _PLAIN_LOWER.fullmatch(part) and part.upper() not in dia.tokenizer_class.KEYWORDS:
            rendered.append(part)  # what the test below gives such a part, without building identifiers
            continue
        bare = exp.to_identifier(part)
        if (
            not bare.quoted
            and part.upper() not in dia.tokenizer_class.KEYWORDS
            and dia.normalize_identifier(bare.copy()).name == part
        ):
            rendered.append(part)
        else:
            rendered.append(exp.to_identifier(part, quoted=True).sql(dialect=dia))
    return ".".join(rendered)


@functools.lru_cache(maxsize=65536)
def normalize_column(name: str, dialect: str) -> str:
    """A catalog column name normalized as the dialect resolves it.

    A plain name is treated like an unquoted identifier, as sqlglot's
    `MappingSchema(normalize=True)` does (DuckDB lowercases every name); write it quoted in the
    dialect's syntax (`'"Country"'`) to keep a case-sensitive name as it is.

    >>> normalize_column("Country", "postgres"), normalize_column('"Country"', "postgres")
    ('country', 'Country')
    """
    if _PLAIN_LOWER.fullmatch(name) and name_rules(dialect).keeps_plain_lower:
        return name  # what the branch below gives such a name, without sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    dia = _dialect(dialect)
    ident: exp.Identifier | None = None
    if name[:1] in dia.tokenizer_class.IDENTIFIERS:
        try:
            ident = exp.parse_identifier(name, dialect=dia)
        except SqlglotError:
            ident = None
    if ident is None:
        ident = exp.to_identifier(name)
    return dia.normalize_identifier(ident).name


class Catalog:
    """Columns (and types when known) of the relations a statement may read.

    Wraps ONE sqlglot `MappingSchema` (normalize=True, the catalog's dialect), built once and
    extended with `add`. Relation names are dotted names of 1 to 3 parts; a shorter name matches
    a longer one when its trailing parts are unique (`stg` finds `pipeline.main.stg`).

    A relation's columns are **complete** (every column it has: a model's output, a seed's CSV
    header, dbt's catalog.json) or **partial** (some of them: a source whose YAML lists a few, a
    hand-written schema file). Lineage reads a column missing from a complete list as a column
    that does not exist, and one missing from a partial list as a column the list left out.
    `complete` gives the default for `tables` and `add`.
    """

    def __init__(
        self,
        dialect: str,
        tables: Mapping[str, ColumnSpec] | None = None,
        *,
        complete: bool = True,
    ):
        self.dialect = check_dialect(dialect)
        self._schema: MappingSchema | None = None  # built on first use (a warm run never needs it)
        self._depth = 0
        self._tables: dict[tuple[str, ...], tuple[tuple[str, str | None], ...]] = {}
        self._partial: set[tuple[str, ...]] = set()
        self._suffixes: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
        for relation, columns in (tables or {}).items():
            if isinstance(columns, Mapping):
                self.add(relation, list(columns.items()), complete=complete)
            else:
                self.add(relation, [(c, None) for c in columns], complete=complete)

    @property
    def schema(self) -> MappingSchema:
        """The sqlglot schema (for qualification); building it imports sqlglot."""
        if self._schema is None:
            self._rebuild()
        return self._schema

    def add(self, relation: str, columns: Sequence[tuple[str, str | None]], *,
            complete: bool = True) -> None:
        """Register (or replace) a relation's columns, in order; a type may be None.
        `complete=False`: the relation may have columns the list leaves out."""
        parts = relation_parts(relation, self.dialect)
        if not 1 <= len(parts) <= 3:
            raise SqlError(f"relation name must have 1 to 3 parts: {relation!r}")
        cols = tuple((normalize_column(name, self.dialect), typ) for name, typ in columns)
        self._tables[parts] = cols
        if complete:
            self._partial.discard(parts)
        else:
            self._partial.add(parts)
        for i in range(len(parts)):
            self._suffixes.setdefault(parts[i:], set()).add(parts)
        if len(parts) > self._depth:
            self._depth = len(parts)
            self._schema = None  # rebuilt at the new depth on first use
        elif self._schema is not None:
            self._add_to_schema(parts, cols)
            # sqlglot caches lookups by table; a short name may now resolve differently
            cache = getattr(self._schema, "_find_cache", None)
            if isinstance(cache, dict):
                cache.clear()

    def _add_to_schema(self, parts: tuple[str, ...], cols: tuple[tuple[str, str | None], ...]) -> None:
        from sqlglot import exp
        from sqlglot.errors import SchemaError

        padded = (_PAD,) * (self._depth - len(parts)) + parts
        table = exp.Table(
            this=exp.to_identifier(padded[-1], quoted=True),
            db=exp.to_identifier(padded[-2], quoted=True) if len(padded) > 1 else None,
            catalog=exp.to_identifier(padded[-3], quoted=True) if len(padded) > 2 else None,
        )
        mapping = {exp.to_identifier(c, quoted=True): _type_or_unknown(t) for c, t in cols}
        try:
            self._schema.add_table(
                table, {ident.name: typ for ident, typ in mapping.items()}, normalize=False
            )
        except SchemaError as err:  # pragma: no cover - guarded by the depth bookkeeping
            raise SqlError(f"cannot register {'.'.join(parts)}: {err}") from err

    def _rebuild(self) -> None:
        from sqlglot.schema import MappingSchema

        self._schema = MappingSchema(dialect=self.dialect, normalize=True)
        for parts, cols in self._tables.items():
            self._add_to_schema(parts, cols)

    def _resolve_parts(self, relation: str | exp.Table | Sequence[str]) -> tuple[str, ...] | None:
        if isinstance(relation, str) or _is_table(relation):
            parts = relation_parts(relation, self.dialect)
        else:
            parts = tuple(relation)
        found = self._suffixes.get(parts)
        if found and len(found) == 1:
            return next(iter(found))
        return None

    def resolve(self, relation: str | exp.Table | Sequence[str]) -> str | None:
        """The full dotted name a (possibly shorter) relation name refers to, if known and unique.

        `relation` is a dotted name, a sqlglot Table, or already-normalized parts.
        """
        parts = self._resolve_parts(relation)
        return relation_name(parts, self.dialect) if parts else None

    def columns(self, relation: str | exp.Table | Sequence[str]) -> tuple[str, ...] | None:
        """The relation's column names in order, or None when it is unknown."""
        try:
            parts = self._resolve_parts(relation)
        except SqlError:
            return None
        return None if parts is None else tuple(c for c, _ in self._tables[parts])

    def column_types(self, relation: str | exp.Table | Sequence[str]) -> tuple[tuple[str, str | None], ...] | None:
        """The relation's (column, type or None) pairs in order, or None when it is unknown."""
        try:
            parts = self._resolve_parts(relation)
        except SqlError:
            return None
        return None if parts is None else self._tables[parts]

    def is_complete(self, relation: str | exp.Table | Sequence[str]) -> bool:
        """Are the relation's columns all known? False for a partial list or an unknown relation."""
        try:
            parts = self._resolve_parts(relation)
        except SqlError:
            return False
        return parts is not None and parts not in self._partial

    @property
    def has_partial(self) -> bool:
        """Does some relation have a partial column list?"""
        return bool(self._partial)

    def __contains__(self, relation: object) -> bool:
        if not (isinstance(relation, str) or _is_table(relation)):
            return False
        try:
            return self.resolve(relation) is not None
        except SqlError:
            return False

    def __len__(self) -> int:
        return len(self._tables)

    def __repr__(self) -> str:
        return f"Catalog({self.dialect!r}, {len(self._tables)} relations)"


def _type_or_unknown(typ: str | None) -> str:
    return typ if typ else "UNKNOWN"


def _line_of(sql: str, context: str) -> int | None:
    """Line where the tokenizer stopped: its message quotes the text up to that point."""
    idx = sql.find(context) if context else -1
    return sql.count("\n", 0, idx + len(context)) + 1 if idx >= 0 else None


def parse_statement(sql: str, dialect: str) -> exp.Expr:
    """Parse exactly one SQL statement; raise `SqlError` with the parser's message and position.

    >>> parse_statement("select 1 as x;", "duckdb").sql()
    'SELECT 1 AS x'
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    dialect = check_dialect(dialect)
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except ParseError as err:
        first = err.errors[0] if err.errors else {}
        message = first.get("description") or str(err)
        raise SqlError(message, first.get("line"), first.get("col")) from err
    except TokenError as err:
        message = str(err)
        context = message.partition("'")[2].rpartition("'")[0]
        raise SqlError(message, _line_of(sql, context)) from err
    except RecursionError as err:
        raise SqlError("statement too deeply nested to parse") from err
    if not statements:
        raise SqlError("no SQL statement found", 1)
    if len(statements) == 1 and isinstance(statements[0], exp.Command):
        # sqlglot keeps what it cannot parse as an opaque command instead of failing
        command = statements[0]
        line = next((n.meta["line"] for n in command.walk() if n._meta and "line" in n.meta), 1)
        raise SqlError(f"cannot parse {command.name.upper() or 'statement'} statement", line)
    if len(statements) > 1:
        second = statements[1]
        line = next((n.meta["line"] for n in second.walk() if n.meta.get("line")), None)
        raise SqlError(f"expected one statement, found {len(statements)}", line)
    return statements[0]


def qualify_statement(
    expression: exp.Expr, dialect: str, catalog: Catalog, *, columns: bool = True
) -> exp.Expr:
    """Qualify tables and columns in place against the catalog: expands `*` (with EXCLUDE /
    REPLACE), USING joins and lateral column aliases. Columns the catalog does not know are
    left as written (the caller reports them). `columns=False` qualifies tables only, the
    fallback when sqlglot cannot qualify columns. Raises `SqlError` if qualification fails."""
    from sqlglot.errors import SqlglotError
    from sqlglot.optimizer.qualify import qualify

    try:
        return qualify(
            expression,
            dialect=dialect,
            schema=catalog.schema,
            validate_qualify_columns=False,
            allow_partial_qualification=True,
            qualify_columns=columns,
            identify=False,
            quote_identifiers=False,  # the engine reads names, never SQL text: 30% of qualify
        )
    except SqlglotError as err:
        raise SqlError(f"cannot qualify statement: {err}") from err
    except RecursionError as err:
        raise SqlError("statement too deeply nested to qualify") from err


# --------------------------------------------------------------------------------------------
# Translating between dialects (verify runs other engines' SQL in DuckDB)

@functools.lru_cache(maxsize=1)
def _list_funcs() -> tuple[type, ...]:
    """Functions whose result is a list: `reverse` of one is DuckDB's `list_reverse`."""
    from sqlglot import exp

    return (exp.Array, exp.ArrayAgg, exp.ArrayConcat, exp.ArrayDistinct, exp.ArrayFilter, exp.ArraySlice,
            exp.ArraySort, exp.ArrayUniqueAgg, exp.Flatten, exp.RegexpExtractAll, exp.Split)


def _int_literal(node: exp.Expr | None) -> int | None:
    from sqlglot import exp

    return int(node.name) if isinstance(node, exp.Literal) and not node.is_string and node.name.isdigit() else None


def _to_duckdb(node: exp.Expr) -> exp.Expr:
    """What sqlglot leaves untranslated from Spark / Hive to DuckDB, rewritten where the
    equivalent is exact: ``pmod(a, b)`` -> ``((a % b) + b) % b``; ``conv(x, 16, 10)`` (hex text to
    decimal text, at most 16 hex digits: NULL on overflow where Spark saturates) ->
    ``CAST(TRY_CAST('0x' || x AS UBIGINT) AS TEXT)``; ``reverse`` of a list -> ``list_reverse``;
    ``raise_error(msg)`` -> ``error(msg)``.
    Other ``conv`` bases stay as written (DuckDB then names ``conv`` as unknown)."""
    from sqlglot import exp

    name = node.name.lower() if isinstance(node, exp.Anonymous) else ""
    args = node.expressions if isinstance(node, exp.Anonymous) else []
    if name == "pmod" and len(args) == 2:
        a, b = (exp.paren(x, copy=False) if isinstance(x, exp.Binary) else x for x in args)
        inner = exp.Add(this=exp.paren(exp.Mod(this=a, expression=b)), expression=b.copy())
        return exp.paren(exp.Mod(this=exp.paren(inner), expression=b.copy()))
    if name == "raise_error" and len(args) == 1:  # Spark's raise_error(msg) is DuckDB's error(msg)
        return exp.Anonymous(this="ERROR", expressions=[args[0]])
    if name == "conv" and len(args) == 3 and (_int_literal(args[1]), _int_literal(args[2])) == (16, 10):
        hex_text = exp.DPipe(this=exp.Literal.string("0x"), expression=args[0])
        number = exp.TryCast(this=hex_text, to=exp.DataType.build("UBIGINT", dialect="duckdb"))
        return exp.cast(number, exp.DataType.build("TEXT"))
    if isinstance(node, exp.Reverse) and (isinstance(node.this, _list_funcs()) or node.this.is_type(exp.DataType.Type.ARRAY)):
        return exp.Anonymous(this="LIST_REVERSE", expressions=[node.this])
    return node


def transpile(sql: str, read: str, write: str) -> str:
    """One statement of dialect `read` as SQL of dialect `write` (sqlglot's translation; to
    DuckDB from Spark / Hive / Databricks also `pmod`, hex `conv` and list `reverse`, see
    `_to_duckdb`). Raises `SqlError` when sqlglot cannot parse or translate it.

    >>> transpile("select pmod(a, 7) as b, collect_set(c) as s from t", "spark", "duckdb")
    'SELECT (((a % 7) + 7) % 7) AS b, LIST(DISTINCT c) FILTER(WHERE NOT c IS NULL) AS s FROM t'
    """
    from sqlglot.errors import SqlglotError

    expression = parse_statement(sql, check_dialect(read))
    write = check_dialect(write)
    if write == "duckdb" and read in ("spark", "spark2", "hive", "databricks"):
        for node in reversed(list(expression.walk())):  # inner calls first (hash of a hash)
            new = _to_duckdb(node)
            if new is not node:
                if node is expression:
                    expression = new
                else:
                    node.replace(new)
    try:
        return expression.sql(dialect=write)
    except SqlglotError as err:
        raise SqlError(f"cannot translate {read} SQL to {write}: {err}") from err
    except RecursionError as err:
        raise SqlError("statement too deeply nested to translate") from err


# --------------------------------------------------------------------------------------------
# The provenance view of a statement (provenance.py decides what a provenance column is)

@dataclass(frozen=True)
class ValueStep:
    """A step of a SELECT item that changes or drops the values it reads (`upper(x)`,
    `max(x)`, `coalesce(a, b)`), as `provenance_view` marked it."""

    sql: str  # the statement's line where the step reads its first column, shortened
    line: int | None  # 1-based line in the statement
    columns: tuple[str, ...]  # the names of the columns it reads, lower case


@dataclass(frozen=True)
class ProvenanceView:
    """A statement rewritten so that lineage tells provenance-preserving paths from the rest:
    every value-changing step is wrapped in `md5(...)` (so its edges come out masking), and the
    encode / decode steps of source masks are replaced by what they encode or decode."""

    sql: str
    steps: tuple[ValueStep, ...]


# Aggregates and row functions that keep the values they read, as a collection: a list of
# them, a list's elements, a union of lists or of source masks. sqlglot class names.
_COLLECTING = ("ArrayAgg", "ArrayUniqueAgg", "BitwiseOrAgg")
_PRESERVING = ("Array", "ArraySort", "SortArray", "ArrayDistinct", "Flatten", "ArrayConcat", "ArrayUnion",
               "ArrayCompact", "Explode", "ExplodeOuter", "Unnest", "BitwiseOr", "Alias", "Paren", "Distinct")
_ERROR_NAMES = frozenset({"error", "raise_error"})
_ID_TYPES = frozenset({"TEXT", "VARCHAR", "CHAR", "NCHAR", "NVARCHAR", "STRING", "BPCHAR", "NAME",
                       "BIGINT", "UBIGINT", "INT", "UINT", "HUGEINT", "UHUGEINT", "INT128"})


@functools.lru_cache(maxsize=1)
def _classes(names: tuple[str, ...]) -> tuple[type, ...]:
    from sqlglot import exp

    return tuple(getattr(exp, n) for n in names if hasattr(exp, n))


def provenance_view(sql: str, dialect: str, registry: str | None = None, id_column: str = "source_id") -> ProvenanceView:
    """The provenance view of one statement (see `ProvenanceView`): in every SELECT item (of
    every CTE, subquery and union branch), a step is kept when it passes the source ids it reads
    on unchanged: a column, a cast to a text or integer type, a collecting aggregate (`list`,
    `array_agg`, `collect_list` / `collect_set`, `bit_or`, also over a window), list functions
    that sort, de-duplicate, flatten, concatenate or unnest, a `coalesce` with constants, `|`;
    the encode step of a source mask (`1 << (select source_bit from <registry> where
    source_id = id)`, with a `case when id is null`) stands for `id` and the decode step (a
    subquery listing the registry's ids where `(mask >> source_bit) & 1 = 1`) for `mask`, where
    `<registry>` is the relation `registry` (a normalized name) read alone and `source_id` is
    `id_column`. Any other step that
    reads a column (a string function, `||`, an aggregate keeping one value, `coalesce` of two
    columns, `case`) is wrapped in `md5(...)` and listed in `steps`. Raises `SqlError`.

    >>> v = provenance_view("select upper(s) as s, list(distinct s) as l from t", "duckdb")
    >>> v.sql
    'SELECT MD5(UPPER(s)) AS s, ARRAY_AGG(DISTINCT s) AS l FROM t'
    >>> [(s.sql, s.line, s.columns) for s in v.steps]
    [('select upper(s) as s, list(distinct s) as l from t', 1, ('s',))]
    """
    from sqlglot import exp

    dialect = check_dialect(dialect)
    statement = parse_statement(sql, dialect)
    steps: list[ValueStep] = []
    lines = sql.splitlines()

    def over_registry(node: exp.Expr) -> bool:
        """A scalar subquery that reads the registry alone."""
        if registry is None or not isinstance(node, exp.Subquery) or not isinstance(node.this, exp.Select):
            return False
        select = node.this
        tables = list(select.find_all(exp.Table))
        return (len(tables) == 1 and not select.args.get("joins")
                and normalize_relation(tables[0], dialect) == registry)

    def outer_columns(node: exp.Expr) -> list[exp.Column]:
        """Columns of a registry subquery's WHERE that are not the registry's (its alias's)."""
        where = node.this.args.get("where")
        if where is None:
            return []
        alias = node.this.args["from_"].this.alias_or_name if node.this.args.get("from_") else ""
        return [c for c in where.find_all(exp.Column) if c.table != alias]

    def is_registry(node: exp.Expr) -> bool:
        """A registry subquery that reads none of the row's values: constants, no provenance."""
        return over_registry(node) and not outer_columns(node)

    def shifted(node: exp.Expr) -> list[exp.Expr]:
        """What `node` shifts right (`x >> n`, `shiftright(x, n)`): the masks it reads bits of."""
        out = []
        for s in node.find_all(exp.BitwiseRightShift, exp.Anonymous):
            if isinstance(s, exp.BitwiseRightShift):
                out.append(s.this)
            elif s.name.lower() == "shiftright" and len(s.expressions) == 2:
                out.append(s.expressions[0])
        return out

    def columns(node: exp.Expr) -> list[exp.Column]:
        """Columns read by `node`, outside registry subqueries and error calls."""
        out, stack = [], [node]
        while stack:
            cur = stack.pop()
            if isinstance(cur, exp.Column):
                out.append(cur)
                continue
            if is_registry(cur) or (isinstance(cur, exp.Anonymous) and cur.name.lower() in _ERROR_NAMES):
                continue
            stack.extend(cur.iter_expressions())
        return out

    def wrap(node: exp.Expr) -> exp.Expr:
        cols = columns(node)
        line = next((c.this.meta.get("line") for c in cols if isinstance(c.this, exp.Expr) and c.this.meta.get("line")), None)
        # the text as written (sqlglot would respell some functions: string_agg as listagg)
        text = lines[line - 1].strip() if line and line <= len(lines) else node.sql(dialect=dialect)
        steps.append(ValueStep(text if len(text) <= 80 else text[:77] + "...", line,
                               tuple(dict.fromkeys(c.name.lower() for c in cols))))
        return exp.MD5(this=node)

    def strip(node: exp.Expr) -> exp.Expr:
        """`x` of `(x)`, `x - 1`, `nullif(x, 0)`, `coalesce(x, error(...))`."""
        while True:
            if isinstance(node, exp.Paren):
                node = node.this
            elif isinstance(node, (exp.Sub, exp.Nullif)) and not columns(node.expression):
                node = node.this
            elif isinstance(node, exp.Coalesce) and node.expressions and not any(columns(e) for e in node.expressions):
                node = node.this
            else:
                return node

    def encoded(node: exp.Expr) -> exp.Expr | None:
        """The id of an encode step `1 << (select r.source_bit from <registry> as r where
        r.source_id = id)` (Spark `shiftleft`; `coalesce(..., error(...))` around it), else None."""
        if isinstance(node, exp.BitwiseLeftShift) and not columns(node.this):
            amount = strip(node.expression)
        elif isinstance(node, exp.Anonymous) and node.name.lower() == "shiftleft" and len(node.expressions) == 2 \
                and not columns(node.expressions[0]):
            amount = strip(node.expressions[1])
        else:
            return None
        where = amount.this.args.get("where") if over_registry(amount) else None
        eq = where.this if isinstance(where, exp.Where) else where
        if not isinstance(eq, exp.EQ):
            return None
        outer = {id(c) for c in outer_columns(amount)}
        sides = [s for s in (eq.this, eq.expression) if any(id(c) in outer for c in s.find_all(exp.Column))]
        other = [s for s in (eq.this, eq.expression) if s not in sides]
        if len(sides) != 1 or len(other) != 1 or not isinstance(other[0], exp.Column) \
                or other[0].name.lower() != id_column.lower():
            return None  # a lookup by the registry's id column only
        return sides[0]

    def decoded(node: exp.Expr) -> exp.Expr | None:
        """The mask of a decode step: a subquery on the registry alone whose WHERE reads one
        mask's bits (`(select list(r.source_id order by r.source_id) from <registry> as r where
        ((mask >> r.source_bit) & 1) = 1)`, Spark `sort_array(collect_list(...))`, `shiftright`)."""
        if not over_registry(node) or not outer_columns(node):
            return None
        masks = shifted(node.this.args["where"])
        outer = {id(c) for c in outer_columns(node)}
        if len(masks) != 1 or not outer <= {id(c) for c in masks[0].find_all(exp.Column)}:
            return None  # the row's values are read as one mask's bits, nothing else
        return masks[0]

    def null_guard(node: exp.Case) -> exp.Expr | None:
        """`default` of `case when x is null then <constant> else default end` (x read by default)."""
        default = node.args.get("default")
        if default is None or not node.args.get("ifs"):
            return None
        used = {c.sql() for c in columns(default)}
        for branch in node.args["ifs"]:
            cond = branch.this
            if not (isinstance(cond, exp.Is) and isinstance(cond.expression, exp.Null)):
                return None
            if columns(branch.args.get("true")) or not {c.sql() for c in columns(cond.this)} <= used:
                return None
        return default

    def view(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) or not columns(node):
            return node
        if isinstance(node, exp.Star):  # `* REPLACE (expr AS name)`: each replacement is an item
            if node.args.get("replace"):
                node.set("replace", [view(e) for e in node.args["replace"]])
            return node
        inner = encoded(node)
        if inner is None:
            inner = decoded(node)
        if inner is None and isinstance(node, exp.Case):
            inner = null_guard(node)
        if inner is not None:
            return view(inner)
        if isinstance(node, (exp.Cast, exp.TryCast)):
            to = node.to
            base = to.expressions[0] if to.is_type(exp.DataType.Type.ARRAY) and to.expressions else to
            if isinstance(base, exp.DataType) and base.this.name in _ID_TYPES:
                node.set("this", view(node.this))
                return node
            return wrap(node)
        if isinstance(node, exp.Coalesce):
            varying = [a for a in [node.this, *node.expressions] if columns(a)]
            return view(varying[0]) if len(varying) == 1 else wrap(node)
        if isinstance(node, exp.Window):
            agg = node.this
            if isinstance(agg, _classes(_COLLECTING)):
                node.set("this", view(agg))
                return node
            return wrap(node)
        if isinstance(node, exp.Filter):  # aggregate FILTER (WHERE ...): the condition is no value
            node.set("this", view(node.this))
            return node
        if isinstance(node, exp.Order):  # list(x ORDER BY y)
            node.set("this", view(node.this))
            return node
        if isinstance(node, exp.ArrayFilter):  # list_filter(list, lambda): the lambda is a condition
            node.set("this", view(node.this))
            return node
        if isinstance(node, _classes(_COLLECTING + _PRESERVING)):
            for key, value in list(node.args.items()):
                if isinstance(value, exp.Expr):
                    node.set(key, view(value))
                elif isinstance(value, list):
                    node.set(key, [view(v) if isinstance(v, exp.Expr) else v for v in value])
            return node
        return wrap(node)

    for select in list(statement.find_all(exp.Select)):
        if is_registry(select.parent):
            continue  # the registry's own columns: not provenance, not a value of the rows
        select.set("expressions", [view(e) for e in select.expressions])
    try:
        text = statement.sql(dialect=dialect)
    except RecursionError as err:
        raise SqlError("statement too deeply nested to rewrite") from err
    return ProvenanceView(text, tuple(steps))
