"""Typed column-level lineage of ONE SQL statement: one parse, one qualify, one scope walk.

`analyze` parses the statement (`sql.parse_statement`), qualifies it against a `sql.Catalog`
(`*` expanded, USING joins and lateral aliases resolved), builds sqlglot's scope tree and walks
it once. Each scope's lineage (its output columns' inputs, its dataset-wide inputs and the row
influences of the relations feeding it) is computed once, memoized, and composed by the scopes
that read it, so CTEs and derived tables cost one visit however often they are used.
UPDATE and MERGE are traced as the INSERT ... SELECT they amount to; the columns of a `*` that
cannot be expanded are one output column "*" reading `relation.*` (PARTIAL, UNEXPANDED_STAR).

Edge vocabulary (OpenLineage): DIRECT IDENTITY < TRANSFORMATION < AGGREGATION (the strongest
wins along a path, `masking` is OR-ed along it); INDIRECT CONDITIONAL / WINDOW / FILTER per
output column; INDIRECT FILTER / JOIN / GROUP_BY / SORT for the whole output (target None).

>>> from lineage_tools.sql import Catalog
>>> cat = Catalog("duckdb", {"main.users": ["id", "name", "country"]})
>>> res = analyze("select id, upper(name) as name from main.users where country = 'NL'",
...               dialect="duckdb", catalog=cat)
>>> res.columns, res.status.value
(('id', 'name'), 'FULL')
>>> [(e.target, e.source.column, e.subtype.value) for e in res.edges]
[(None, 'country', 'FILTER'), ('id', 'id', 'IDENTITY'), ('name', 'name', 'TRANSFORMATION')]
"""

from __future__ import annotations

import functools
import gc
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.dialects.dialect import Dialect
from sqlglot.optimizer.scope import Scope, build_scope, find_all_in_scope

from . import deadline as hard_deadline
from .errors import SqlError
from .records import (
    ColumnEdge,
    ColumnRef,
    Reason,
    ReasonCode,
    RowEffect,
    RowInfluence,
    StatementLineage,
    Status,
    Subtype,
)
from .sql import Catalog, check_dialect, parse_statement, qualify_statement, relation_name, relation_parts

log = logging.getLogger(__name__)

_RANK = {Subtype.IDENTITY: 0, Subtype.TRANSFORMATION: 1, Subtype.AGGREGATION: 2}

# Window functions whose argument's value is passed through from another row, not aggregated.
_VALUE_WINDOW_FUNCS = (exp.Lag, exp.Lead, exp.FirstValue, exp.LastValue, exp.NthValue)
# Aggregates whose result hides the input's value: counts.
_COUNT_FUNCS = (exp.Count, exp.CountIf, exp.ApproxDistinct)
_HASH_CLASSES = tuple(
    getattr(exp, name)
    for name in ("MD5", "MD5Digest", "SHA", "SHA2", "SHA1Digest", "SHA2Digest", "StandardHash")
    if hasattr(exp, name)
)
_HASH_NAMES = frozenset(
    {
        "md5", "md5_number", "md5_number_lower", "md5_number_upper", "sha", "sha1", "sha2",
        "sha224", "sha256", "sha384", "sha512", "hash", "xxhash32", "xxhash64", "xxh3",
        "murmurhash3", "murmur3", "farm_fingerprint", "crc32", "fnv_hash", "hash_md5",
    }
)
# Table functions that generate rows from their arguments only (no data read).
_GENERATORS = frozenset({"range", "generate_series", "generate_date_array", "sequence", "unnest"})
# Nodes that never carry a column.
_LEAVES = (exp.Literal, exp.Null, exp.Boolean, exp.Star, exp.Identifier, exp.DataType,
           exp.Placeholder, exp.Var)
# Wrappers a window function may sit in while still being the window's function.
_WINDOW_WRAPPERS = (exp.IgnoreNulls, exp.RespectNulls, exp.Filter)
_PARTIAL_CODES = frozenset(
    {
        ReasonCode.UNKNOWN_COLUMN, ReasonCode.UNRESOLVED_COLUMN, ReasonCode.UNKNOWN_TABLE,
        ReasonCode.UNEXPANDED_STAR,
        ReasonCode.TIME_BUDGET, ReasonCode.UNSUPPORTED, ReasonCode.DUPLICATE_COLUMN,
    }
)


class _TimeBudget(Exception):
    """Raised inside the walk when the time budget is spent."""


def _is_direct(kind: Subtype) -> bool:
    return kind in _RANK


def _up(kind: Subtype) -> Subtype:
    """The kind of an argument of a non-trivial expression (identity becomes transformation)."""
    return Subtype.TRANSFORMATION if kind is Subtype.IDENTITY else kind


def _is_hash(node: exp.Expr) -> bool:
    if isinstance(node, _HASH_CLASSES):
        return True
    if isinstance(node, exp.Func):
        name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
        return name.lower() in _HASH_NAMES
    return False


class _Node:
    """How `_Walker.walk` treats an expression class (see `_classify`)."""

    LEAF = "leaf"
    COLUMN = "column"
    QUERY = "query"
    WINDOW = "window"
    LAMBDA = "lambda"
    CASE = "case"
    IF = "if"
    COALESCE = "coalesce"
    NULLIF = "nullif"
    FILTER = "filter"
    ORDER = "order"
    AGG = "agg"  # an aggregate
    AGG_VALUE = "agg_value"  # ... that passes a value from another row in a window
    AGG_COUNT = "agg_count"  # ... that counts (hides the value)
    AGG_VALUE_COUNT = "agg_value_count"
    PASS = "pass"  # Alias, Paren, Ordered: the children keep the kind
    WINDOW_WRAPPER = "window_wrapper"  # IGNORE / RESPECT NULLS: PASS inside a window
    HASH = "hash"
    ANONYMOUS = "anonymous"  # an unknown function: a hash or not by its name
    ROW = "row"  # a whole-row reference (`select t from t`)
    POSITION = "position"  # DuckDB `#n`: the n-th column of the FROM clause
    WITHIN_GROUP = "within_group"  # agg(...) WITHIN GROUP (ORDER BY x)
    UNNEST = "unnest"  # unnest / explode in an expression: multiplies rows
    OTHER = "other"


def _classify(cls: type) -> str:
    """The `_Node` code of an expression class: the first of `walk`'s cases that matches it,
    in `walk`'s order, decided once per class instead of by an isinstance chain per node."""
    if issubclass(cls, _LEAVES):
        return _Node.LEAF
    if issubclass(cls, exp.Column):
        return _Node.COLUMN
    for base, code in ((exp.TableColumn, _Node.ROW), (exp.PositionalColumn, _Node.POSITION),
                       (exp.WithinGroup, _Node.WITHIN_GROUP), (exp.Explode, _Node.UNNEST)):
        if issubclass(cls, base):
            return code
    if issubclass(cls, (exp.Subquery, exp.Query)):
        return _Node.QUERY
    for base, code in ((exp.Window, _Node.WINDOW), (exp.Lambda, _Node.LAMBDA),
                       (exp.Case, _Node.CASE), (exp.If, _Node.IF),
                       (exp.Coalesce, _Node.COALESCE), (exp.Nullif, _Node.NULLIF),
                       (exp.Filter, _Node.FILTER), (exp.Order, _Node.ORDER)):
        if issubclass(cls, base):
            return code
    if issubclass(cls, exp.AggFunc):
        value = issubclass(cls, _VALUE_WINDOW_FUNCS)
        count = issubclass(cls, _COUNT_FUNCS)
        if value and count:
            return _Node.AGG_VALUE_COUNT
        return _Node.AGG_VALUE if value else _Node.AGG_COUNT if count else _Node.AGG
    if issubclass(cls, (exp.Alias, exp.Paren, exp.Ordered)):
        return _Node.PASS
    if issubclass(cls, _WINDOW_WRAPPERS):
        return _Node.WINDOW_WRAPPER
    if issubclass(cls, exp.Anonymous):
        return _Node.ANONYMOUS
    if issubclass(cls, _HASH_CLASSES) or (
        issubclass(cls, exp.Func) and cls.sql_name().lower() in _HASH_NAMES
    ):
        return _Node.HASH
    return _Node.OTHER


_CODES: dict[type, str] = {}


_UNSEEN = object()  # a memo's "not computed yet" (None is a result)


def _line(node: exp.Expr | None) -> int | None:
    """The first 1-based line sqlglot recorded for a node or one of its descendants."""
    if node is None:
        return None
    if type(node) is exp.Alias:
        found = _alias_line(node)
        if found is not _UNSEEN:
            return found
    best = None
    for sub in node.walk():
        meta = sub._meta  # noqa: SLF001 - reading `.meta` would create an empty dict
        if meta:
            line = meta.get("line")
            if line is not None and (best is None or line < best):
                best = line
    return best


class _Col:
    """Inputs of one output column: DIRECT refs (strongest subtype, masking) and INDIRECT ones.

    A plain class with slots: one is made for every column of every scope. A `_Col` is only
    changed while the column it describes is being built; once in a `_ScopeLineage` it is
    read-only, so a scope that passes a column through unchanged may share its `_Col`."""

    __slots__ = ("direct", "indirect")

    def __init__(self) -> None:
        self.direct: dict[ColumnRef, tuple[Subtype, bool]] = {}
        self.indirect: dict[tuple[ColumnRef, Subtype], bool] = {}

    def add(self, ref: ColumnRef, kind: Subtype, masking: bool) -> None:
        rank = _RANK.get(kind)
        if rank is not None:
            direct = self.direct
            old = direct.get(ref)
            if old is None or rank > _RANK[old[0]]:
                direct[ref] = (kind, masking)
            elif kind is old[0]:
                direct[ref] = (kind, old[1] and masking)
        else:
            key = (ref, kind)
            prev = self.indirect.get(key)
            self.indirect[key] = masking if prev is None else (prev and masking)

    def use(self, src: _Col, kind: Subtype, masking: bool) -> None:
        """Compose: this column uses `src` (an inner column) as `kind`."""
        direct, indirect = self.direct, self.indirect
        if not direct and not indirect and kind is Subtype.IDENTITY and not masking:
            # the common pass-through into an empty column: a copy
            direct.update(src.direct)
            indirect.update(src.indirect)
            return
        rank = _RANK.get(kind)
        if rank is not None:
            for ref, (sub, m) in src.direct.items():
                new = sub if _RANK[sub] > rank else kind
                new_rank = _RANK[new]
                m = m or masking
                old = direct.get(ref)
                if old is None or new_rank > _RANK[old[0]]:
                    direct[ref] = (new, m)
                elif new is old[0]:
                    direct[ref] = (new, old[1] and m)
        else:
            for ref, (_sub, m) in src.direct.items():
                key = (ref, kind)
                m = m or masking
                prev = indirect.get(key)
                indirect[key] = m if prev is None else (prev and m)
        for key, m in src.indirect.items():
            m = m or masking
            prev = indirect.get(key)
            indirect[key] = m if prev is None else (prev and m)

    def refs(self) -> set[ColumnRef]:
        return set(self.direct) | {ref for ref, _ in self.indirect}


def _alias_line(node: exp.Alias) -> int | None | object:
    """`_line` of the commonest select item, `t.c AS c` (an Alias of a Column of Identifiers),
    without walking it; `_UNSEEN` for any other shape."""
    args = node.args
    column, alias = args.get("this"), args.get("alias")
    if type(column) is not exp.Column or (alias is not None and type(alias) is not exp.Identifier):
        return _UNSEEN
    nodes = [node, column]
    if alias is not None:
        nodes.append(alias)
    for value in column.args.values():
        if type(value) is exp.Identifier:
            nodes.append(value)
        elif isinstance(value, (exp.Expr, list)):
            return _UNSEEN
    for key, value in args.items():
        if key != "this" and key != "alias" and isinstance(value, (exp.Expr, list)):
            return _UNSEEN
    best = None
    for sub in nodes:
        meta = sub._meta  # noqa: SLF001
        if meta:
            line = meta.get("line")
            if line is not None and (best is None or line < best):
                best = line
    return best


@dataclass
class _ScopeLineage:
    """What a scope gives the scopes that read it."""

    names: list[str]
    cols: list[_Col]
    dataset: set[tuple[ColumnRef, Subtype]] = field(default_factory=set)
    sort: set[ColumnRef] = field(default_factory=set)
    rows: set[RowInfluence] = field(default_factory=set)
    feeding: set[str] = field(default_factory=set)  # base relations whose rows flow out
    reads: set[str] = field(default_factory=set)  # every base relation read
    # base relations read by subqueries whose values flow into the output columns
    values: set[str] = field(default_factory=set)
    limited: bool = False
    star: bool = False  # an unexpanded star: the column list is incomplete
    # a star expanded from a partial column list: the relation may have more columns, read
    # through `star_source` (as for an unexpanded star)
    open: bool = False
    opened: tuple[tuple[exp.Table | Scope, str], ...] = ()  # every relation that left it open
    # a select item that became several columns (`unnest(st)` of a struct): its name -> theirs
    expanded: dict[str, list[str]] = field(default_factory=dict)
    # what an unexpanded star reads when a column named through it can only come from there
    star_source: tuple[tuple[exp.Table | Scope, str], ...] = ()
    by_name: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i, name in enumerate(self.names):
            self.by_name.setdefault(name, i)


@dataclass
class _State:
    """Mutable bookkeeping while one SELECT scope is walked."""

    scope: Scope
    subqueries: dict[int, Scope]
    dataset: set[tuple[ColumnRef, Subtype]] = field(default_factory=set)
    rows: set[RowInfluence] = field(default_factory=set)
    reads: set[str] = field(default_factory=set)
    values: set[str] = field(default_factory=set)  # see _ScopeLineage.values
    aliases: dict[str, _Col] = field(default_factory=dict)
    outputs: list[_Col] = field(default_factory=list)  # the select items' columns, in order
    lateral: dict[str, _Col] = field(default_factory=dict)  # select items so far, by name
    aggregated: bool = False
    windowed: bool = False
    # inside a PIVOT: every column is read from this base through these pivots
    default_source: tuple[tuple[exp.Table | Scope, str], list[exp.Pivot]] | None = None


class _Walker:
    """One walk over a qualified statement's scope tree."""

    def __init__(self, dialect: str, catalog: Catalog, root: Scope, deadline: float | None,
                 sql: str = ""):
        self.dialect = dialect
        # DuckDB's COLUMNS(...) can only be there if the text says so: skip the search otherwise
        self.maybe_columns = "columns" in sql.lower()
        self.definition_lines: dict[tuple[int, str], int | None] = {}
        self.select_sources: dict[tuple[int, str], object] = {}  # (SELECT, table) -> source
        self.select_index: dict[int, dict[str, exp.Expr]] = {}
        self.catalog = catalog
        self.deadline = deadline
        self.reasons: dict[tuple[ReasonCode, str], Reason] = {}
        self.memo: dict[int, _ScopeLineage] = {}
        self.active: set[int] = set()
        self.relations: dict[int, str | None] = {}
        self.catalog_columns: dict[str, frozenset[str] | None] = {}
        self.catalog_parts: dict[str, tuple[str, ...]] = {}
        traversed = list(root.traverse())
        self.traversed = {id(s) for s in traversed}
        self.by_expression = {id(s.expression): s for s in traversed}
        self.root = root
        # a CTE read through PIVOT / UNPIVOT is a Table source to sqlglot: its CTE scope
        self.pivoted_ctes: dict[int, Scope] = {
            id(src): s.cte_sources[src.name]
            for s in traversed for src in s.sources.values()
            if isinstance(src, exp.Table) and src.args.get("pivots") and not src.args.get("db")
            and src.name in s.cte_sources
        }
        self.pivot_names: dict[tuple[int, int, bool], list[str] | None] = {}
        self.stars: dict[int, list[str | None]] = {}  # see _star_items
        # recursive CTEs: the base cases' SELECTs that a self-reference reads (by id), and the
        # lineage of each CTE so far while `set_operation` iterates it
        left_arms = {id(s.set_operation_scopes[0].expression) for s in traversed if s.set_operation_scopes}
        self.recursive_bases = {
            id(src.expression) for s in traversed for src in s.sources.values()
            if isinstance(src, Scope) and id(src) not in self.traversed and id(src.expression) in left_arms
        }
        self.recursion: dict[int, _ScopeLineage] = {}
        # the root SELECT's names, columns and state as they are built (for a time-out)
        self.progress: tuple[list[str], list[_Col], _State] | None = None

    # -- bookkeeping ---------------------------------------------------------------------
    def reason(self, code: ReasonCode, message: str, line: int | None = None,
               column: str | None = None) -> None:
        """Record a reason once per code and column (once per code and message without one)."""
        self.reasons.setdefault((code, column) if column else (code, message),
                                Reason(code, message, line, column))

    def check_time(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _TimeBudget

    def relation(self, table: exp.Table) -> str | None:
        """Normalized (catalog-resolved when known) name of a base table; None for a function."""
        key = id(table)
        if key in self.relations:
            return self.relations[key]
        name: str | None
        if not table.name or isinstance(table.this, exp.Func):
            name = None
            func = table.this
            func_name = (func.name if isinstance(func, exp.Anonymous) else func.sql_name()).lower()
            if func_name not in _GENERATORS:
                self.reason(ReasonCode.UNSUPPORTED, f"table function {func.sql(self.dialect)} "
                            "reads data the catalog does not describe", _line(table))
        else:
            # qualify() already normalized the identifiers
            parts = tuple(part.name for part in table.parts)
            name = self.catalog.resolve(parts)
            if name is not None:
                self.catalog_parts[name] = parts
            else:
                name = relation_name(parts, self.dialect)
                self.reason(ReasonCode.UNKNOWN_TABLE, f"relation {name} is not in the catalog",
                            _line(table))
        self.relations[key] = name
        return name

    def known_columns(self, relation: str) -> frozenset[str] | None:
        """The catalog's columns of a relation named by `relation()`; None when unknown."""
        if relation not in self.catalog_columns:
            cols = self.catalog.columns(self.catalog_parts.get(relation, (relation,)))
            self.catalog_columns[relation] = frozenset(cols) if cols is not None else None
        return self.catalog_columns[relation]

    # -- scopes --------------------------------------------------------------------------
    def warm(self, root: Scope) -> None:
        """Compute the scopes the root reads, innermost first, so that long CTE chains are
        composed from memoized results instead of one deep recursion."""
        order: list[Scope] = []
        seen: set[int] = set()
        stack: list[tuple[Scope, bool]] = [(root, False)]
        while stack:
            scope, done = stack.pop()
            if done:
                order.append(scope)
                continue
            if id(scope) in seen:
                continue
            seen.add(id(scope))
            stack.append((scope, True))
            stack.extend((child, False) for child in _used_scopes(scope) if id(child) not in seen)
        for scope in order:
            if scope is not root:
                self.lineage(scope)

    def lineage(self, scope: Scope) -> _ScopeLineage:
        key = id(scope)
        found = self.memo.get(key)
        if found is not None:
            return found
        if key not in self.traversed:
            # sqlglot gives a recursive CTE's self-reference an untraversed scope of its base
            # case: while `set_operation` iterates the CTE to its fixpoint, the approximation
            # so far; else the base case (one step), a reason
            current = self.recursion.get(id(scope.expression))
            if current is not None:
                return current
            real = self.by_expression.get(id(scope.expression))
            if id(scope.expression) not in self.recursive_bases:
                self.reason(ReasonCode.UNSUPPORTED, "recursive CTE: lineage of the recursive step "
                            "is approximated", _line(scope.expression))
            if real is None or id(real) in self.active:
                return _ScopeLineage([], [], star=True)
            return self.lineage(real)
        if key in self.active:
            self.reason(ReasonCode.UNSUPPORTED, "cyclic scope reference", _line(scope.expression))
            return _ScopeLineage([], [], star=True)
        self.check_time()
        self.active.add(key)
        try:
            expression = scope.expression
            if isinstance(expression, exp.Select):
                result = self.select(scope)
            elif isinstance(expression, exp.SetOperation):
                result = self.set_operation(scope)
            elif isinstance(expression, exp.Lateral) and scope.subquery_scopes:
                result = self.lineage(scope.subquery_scopes[0])
            elif isinstance(expression, (exp.Unnest, exp.Explode, exp.Lateral, exp.TableFromRows)):
                result = self.unnest(scope)
            elif isinstance(expression, exp.Values):
                alias = expression.args.get("alias")
                names = [c.name for c in alias.columns] if isinstance(alias, exp.TableAlias) else []
                result = _ScopeLineage(names, [_Col() for _ in names])
            else:
                self.reason(ReasonCode.UNSUPPORTED,
                            f"unsupported scope {type(expression).__name__}", _line(expression))
                result = _ScopeLineage([], [], star=True)
        finally:
            self.active.discard(key)
        self.memo[key] = result
        return result

    def source_lineage(self, source: exp.Table | Scope) -> tuple[set[str], set[str], _ScopeLineage | None]:
        """(feeding relations, read relations, child lineage) of a FROM/JOIN source."""
        if isinstance(source, Scope):
            child = self.lineage(source)
            return child.feeding, child.reads, child
        cte = self.pivoted_ctes.get(id(source))
        if cte is not None:  # a CTE read through PIVOT / UNPIVOT
            child = self.lineage(cte)
            return child.feeding, child.reads, child
        rel = self.relation(source)
        rels = {rel} if rel else set()
        return rels, rels, None

    def select(self, scope: Scope) -> _ScopeLineage:
        sel: exp.Select = scope.expression
        st = _State(scope, {id(s.expression): s for s in scope.subquery_scopes})
        feeding: set[str] = set()
        optional: set[str] = set()

        def take(source_node: exp.Expr | None, semi: RowEffect | None = None) -> set[str]:
            """Feeding relations of a FROM/JOIN source; its inner edges and rows carry over.
            A SEMI/ANTI join source feeds no rows: everything it reads gets `semi`."""
            if source_node is None:
                return set()
            source = scope.sources.get(source_node.alias_or_name)
            if source is None:
                return set()
            rels, reads, child = self.source_lineage(source)
            st.reads |= reads
            if semi is not None:
                st.rows |= {RowInfluence(r, semi) for r in reads}
            if child is not None:
                st.dataset |= child.dataset
                if semi is None:
                    st.rows |= child.rows
                    st.values |= child.values
                if child.limited:
                    st.dataset |= {(ref, Subtype.SORT) for ref in child.sort}
            return set() if semi is not None else set(rels)

        from_ = sel.args.get("from_")
        if from_ is not None:
            feeding |= take(from_.this)
        for join in sel.args.get("joins") or []:
            kind = (join.kind or "").upper()
            side = (join.side or "").upper()
            if kind in ("SEMI", "ANTI"):
                take(join.this, RowEffect.SEMI_JOIN if kind == "SEMI" else RowEffect.ANTI_JOIN)
                self.clause(join.args.get("on"), Subtype.FILTER, st)
                continue
            rels = take(join.this)
            if side == "LEFT":
                optional |= rels
            elif side == "RIGHT":
                optional |= feeding
            elif side == "FULL" or (join.method or "").upper() == "POSITIONAL":
                # a positional join pads the shorter side with NULLs, like a full join
                optional |= rels | feeding
            feeding |= rels
            self.clause(join.args.get("on"), Subtype.JOIN, st)
            for ident in join.args.get("using") or []:
                self.using_key(ident, st)
        for lateral in sel.args.get("laterals") or []:  # LATERAL VIEW explode(...) (Hive, Spark)
            feeding |= take(lateral)
        st.rows |= {RowInfluence(r, RowEffect.OUTER_JOIN_OPTIONAL) for r in optional}

        names: list[str] = []
        cols: list[_Col] = []
        expanded: dict[str, list[str]] = {}
        projected: list[tuple[exp.Expr, _Col]] = []
        star = False
        star_sources: list[tuple[exp.Table | Scope, str] | None] = []
        star_col: _Col | None = None
        if scope is self.root:
            self.progress = (names, cols, st)
        outer_reads, st.reads = st.reads, set()  # to tell what subqueries in values read
        timed = self.deadline is not None
        for projection in sel.expressions:
            if timed:
                self.check_time()
            if type(projection) is not exp.Alias and (isinstance(projection, exp.Star) or (
                isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
            )):
                late = self.expand_star(projection, scope, sel)
                if late is not None:  # a star qualify() left over relations we know
                    for name, col in late:
                        names.append(name)
                        cols.append(col)
                    continue
                star = True
                self.reason(ReasonCode.UNEXPANDED_STAR,
                            f"cannot expand {projection.sql(self.dialect)}: columns unknown",
                            _line(projection))
                star_sources.append(_star_source(projection, scope, sel))
                if star_col is None:
                    # the columns an unexpanded star stands for: one output column "*"
                    star_col = _Col()
                    names.append("*")
                    cols.append(star_col)
                self.star_inputs(projection, scope, sel, star_col)
                continue
            columns_expr = projection.find(exp.Columns) if self.maybe_columns else None
            if columns_expr is not None:
                # DuckDB COLUMNS(...) selects columns by pattern at run time
                star = True
                self.reason(ReasonCode.UNSUPPORTED, f"{columns_expr.sql(self.dialect)} picks "
                            "columns at run time: not traced", _line(projection))
                continue
            bare = projection.this if type(projection) is exp.Alias else projection
            if type(bare) is exp.Dot and isinstance(bare.expression, exp.Star) or (
                    type(bare) is exp.Explode and bare.this is not None
                    and self.struct_fields(bare.this, scope) is not None):
                # st.* / unnest(st) of a struct: one column per field, each from the struct
                col = _Col()
                self.walk(bare.this, Subtype.TRANSFORMATION, False, col, st, field_level=True)
                fields = self.struct_fields(bare.this, scope)
                if fields is None:
                    star = True
                    self.reason(ReasonCode.UNEXPANDED_STAR, f"{bare.sql(self.dialect)}: the "
                                "struct's fields are not known", _line(projection))
                    fields = ["*"] if "*" not in names else []
                expanded[projection.alias_or_name] = list(fields)
                for name in fields:
                    names.append(name)
                    cols.append(col)
                continue
            if type(bare) is exp.Column and type(bare.this) is exp.Identifier and bare.table:
                # an outer `*` qualify() expanded to the one item that became several columns
                child = scope.sources.get(bare.table)
                child = self.lineage(child) if isinstance(child, Scope) else None
                fields = child.expanded.get(bare.name) if child is not None else None
                if fields is not None:
                    for name in fields:
                        idx = child.by_name.get(name)
                        names.append(name)
                        cols.append(child.cols[idx] if idx is not None else _Col())
                    expanded[projection.alias_or_name] = list(fields)
                    continue
            col = self.passed_through(projection, st)
            if col is None:
                col = _Col()
                self.walk(projection, Subtype.IDENTITY, False, col, st, field_level=True)
            auto = type(projection) is not exp.Alias or projection.alias.startswith("_col_")
            names.append(self.positional_name(bare, scope) if type(bare) is exp.PositionalColumn
                         and auto else projection.alias_or_name)
            cols.append(col)
            st.lateral.setdefault(names[-1], col)
            projected.append((projection, col))
        st.values |= st.reads
        st.reads |= outer_reads
        for name, col in zip(names, cols):
            st.aliases.setdefault(name, col)
        st.outputs = cols

        for pivot in scope.pivots:
            self.pivot_dataset(pivot, st)

        where = sel.args.get("where")
        if where is not None:
            self.clause(where.this, Subtype.FILTER, st)
        group = sel.args.get("group")
        if group is not None:
            for key in group.expressions:
                self.clause(key, Subtype.GROUP_BY, st)
            for arg in ("rollup", "cube", "grouping_sets"):
                for key in group.args.get(arg) or []:
                    self.clause(key, Subtype.GROUP_BY, st)
            if group.args.get("all"):
                for projection, col in projected:
                    if not _has_aggregate(projection):
                        st.dataset |= {(ref, Subtype.GROUP_BY) for ref in col.refs()}
        having = sel.args.get("having")
        if having is not None:
            self.clause(having.this, Subtype.FILTER, st)
        qualify = sel.args.get("qualify")
        if qualify is not None:
            st.windowed = True
            self.clause(qualify.this, Subtype.FILTER, st)
        distinct = sel.args.get("distinct")
        if distinct is not None:
            on = distinct.args.get("on")
            if on is not None:
                self.clause(on, Subtype.GROUP_BY, st)
            else:  # every output column is a deduplication key, as in GROUP BY ALL
                for col in cols:
                    st.dataset |= {(ref, Subtype.GROUP_BY) for ref in col.refs()}
        sort_state = _State(scope, st.subqueries, aliases=st.aliases, outputs=st.outputs)
        order = sel.args.get("order")
        if order is not None and _orders_by_all(order):
            for col in cols:  # ORDER BY ALL: every output column, left to right
                sort_state.dataset |= {(ref, Subtype.SORT) for ref in col.refs()}
        elif order is not None:
            self.clause(order, Subtype.SORT, sort_state)
        sort = {ref for ref, _ in sort_state.dataset}
        st.rows |= sort_state.rows
        st.reads |= sort_state.reads
        st.aggregated |= sort_state.aggregated
        st.windowed |= sort_state.windowed

        limited = any(sel.args.get(a) is not None for a in ("limit", "offset", "fetch"))
        if group is not None or st.aggregated or scope.pivots and not _all_unpivot(scope.pivots):
            st.rows |= {RowInfluence(r, RowEffect.AGGREGATE) for r in feeding}
        if st.windowed:
            st.rows |= {RowInfluence(r, RowEffect.WINDOW) for r in feeding}
        if distinct is not None:
            # without ON, the values decide which rows merge, wherever they come from
            merged = feeding if distinct.args.get("on") is not None else feeding | st.values
            st.rows |= {RowInfluence(r, RowEffect.DISTINCT) for r in merged}
        if limited:
            st.rows |= {RowInfluence(r, RowEffect.LIMIT) for r in feeding}
        opened = self.open_stars(scope, sel) if id(sel) in self.stars else []
        if star:
            source = (star_sources[0],) if len(star_sources) == 1 and star_sources[0] else ()
        else:
            source = tuple(opened) if len(opened) == 1 else ()
        return _ScopeLineage(
            names, cols, dataset=st.dataset, sort=sort, rows=st.rows, feeding=feeding,
            reads=st.reads | feeding, values=st.values, limited=limited, star=star,
            open=bool(opened), star_source=source, opened=tuple(opened), expanded=expanded,
        )

    def partial_relations(self, lineage: _ScopeLineage, depth: int = 0) -> set[str]:
        """The relations with partial column lists an open scope's stars were expanded from."""
        found: set[str] = set()
        for source, name in lineage.opened or lineage.star_source:
            if isinstance(source, Scope):
                if depth < 50:
                    found |= self.partial_relations(self.lineage(source), depth + 1)
            else:
                found.add(self.relation(source) or name)
        return found

    def open_stars(self, scope: Scope, sel: exp.Select) -> list[tuple[exp.Table | Scope, str]]:
        """The relations a star of this SELECT was expanded from whose columns are partly
        known (a partial column list, or a scope itself open): the output may have more."""
        found: list[tuple[exp.Table | Scope, str]] = []
        for qualifier in self.stars.get(id(sel), ()):
            if qualifier:
                names = [qualifier]
            else:
                from_ = sel.args.get("from_")
                names = [from_.this.alias_or_name] if from_ is not None else []
                names += [j.this.alias_or_name for j in sel.args.get("joins") or []
                          if (j.kind or "").upper() not in ("SEMI", "ANTI")]
            for name in names:
                source = scope.sources.get(name)
                if isinstance(source, Scope):
                    if self.lineage(source).open:
                        found.append((source, name))
                elif isinstance(source, exp.Table) and not source.args.get("pivots"):
                    rel = self.relation(source)
                    if rel is not None and self.known_columns(rel) is not None and not self.complete(rel):
                        found.append((source, name))
        return list(dict.fromkeys(found))

    def positional_name(self, node: exp.Expr, scope: Scope) -> str:
        """The name of an unaliased `#n` select item: the n-th column of FROM."""
        columns = self.from_columns(scope)
        try:
            n = int(node.this.name)
        except (AttributeError, ValueError):
            n = 0
        return columns[n - 1][2] if columns and 1 <= n <= len(columns) else f"#{n}"

    def struct_fields(self, node: exp.Expr, scope: Scope, depth: int = 0) -> list[str] | None:
        """The field names of a struct-valued expression: a struct built in the SQL, a cast to
        a struct type, or a column whose catalog type (or defining expression) is a struct."""
        while isinstance(node, (exp.Paren, exp.Alias)):
            node = node.this
        if depth > 20:
            return None
        if isinstance(node, exp.Struct):
            keys = [x.this.name if isinstance(x, (exp.PropertyEQ, exp.Alias)) else None
                    for x in node.expressions]
            return None if None in keys else keys
        if isinstance(node, (exp.Cast, exp.TryCast)) and isinstance(node.to, exp.DataType):
            return _struct_type_fields(node.to.sql(dialect="duckdb"))
        if isinstance(node, exp.PositionalColumn):  # #n: the n-th column of FROM
            columns = self.from_columns(scope)
            n = int(node.this.name) if node.this.name.isdigit() else 0
            if columns is None or not 1 <= n <= len(columns):
                return None
            source_name, _, name = columns[n - 1]
            return self.struct_fields(exp.column(name, table=source_name), scope, depth + 1)
        if not isinstance(node, exp.Column) or not node.table:
            return None
        source = None
        while scope is not None and source is None:
            source = scope.sources.get(node.table)
            scope = scope.parent
        if isinstance(source, exp.Table) and not source.args.get("pivots"):
            rel = self.relation(source)
            types = self.catalog.column_types(self.catalog_parts.get(rel, (rel,))) if rel else None
            typ = dict(types or ()).get(node.name)
            return _struct_type_fields(typ) if typ else None
        if isinstance(source, Scope):
            query = source.expression
            while isinstance(query, exp.SetOperation):
                query = query.this
            if isinstance(query, exp.Select):
                for p in query.expressions:
                    if p.alias_or_name == node.name:
                        return self.struct_fields(p, source, depth + 1)
        return None

    def passed_through(self, projection: exp.Expr, st: _State) -> _Col | None:
        """The column of a projection `source.column [AS name]` that reads a column of the
        scope's own source unchanged, as `walk` would build it but without walking: the
        source's own `_Col` (shared, not copied) for a CTE or derived table, one IDENTITY
        input for a base table. None for anything else (then `walk` does it)."""
        bare = projection.args.get("this") if type(projection) is exp.Alias else projection
        if type(bare) is not exp.Column or st.default_source is not None:
            return None
        args = bare.args
        table, this = args.get("table"), args.get("this")
        if type(table) is not exp.Identifier or type(this) is not exp.Identifier \
                or args.get("db") is not None:
            return None
        # what Column.table / .name read: the identifiers' text
        table_name = table.args.get("this")
        if not table_name:
            return None
        name = this.args.get("this")
        source = st.scope.sources.get(table_name)
        if type(source) is Scope:
            child = self.memo.get(id(source)) or self.lineage(source)
            idx = child.by_name.get(name)
            return child.cols[idx] if idx is not None else None
        if not isinstance(source, exp.Table) or source.args.get("pivots"):
            return None
        rel = self.relation(source)
        if rel is None:
            return None
        known = self.known_columns(rel)
        if known is not None and name not in known:
            return None
        col = _Col()
        col.direct[ColumnRef(rel, name)] = (Subtype.IDENTITY, False)
        return col

    def set_operation(self, scope: Scope) -> _ScopeLineage:
        left_scope, right_scope = scope.set_operation_scopes
        base = id(left_scope.expression)
        if base not in self.recursive_bases:
            return self.combine(scope, self.lineage(left_scope), self.lineage(right_scope))
        # a recursive CTE: its self-reference reads the CTE's own output, so iterate from the
        # base case until the lineage stops growing (a fixpoint: every step the data can take)
        left = self.lineage(left_scope)
        approx = left
        for _ in range(100):
            self.recursion[base] = approx
            for inner in right_scope.traverse():
                self.memo.pop(id(inner), None)
            result = self.combine(scope, left, self.lineage(right_scope))
            if _same_lineage(result, approx):
                break
            approx = result
        else:
            self.reason(ReasonCode.UNSUPPORTED, "recursive CTE: lineage did not settle in 100 "
                        "steps", _line(scope.expression))
        del self.recursion[base]
        return result

    def combine(self, scope: Scope, left: _ScopeLineage, right: _ScopeLineage) -> _ScopeLineage:
        """A set operation's lineage from its arms'."""
        setop: exp.SetOperation = scope.expression
        distinct = bool(setop.args.get("distinct"))
        star = left.star or right.star
        opened = left.open or right.open
        if setop.args.get("by_name"):
            names = list(left.names) + [n for n in right.names if n not in left.by_name]
            pairs = [(left.by_name.get(n), right.by_name.get(n)) for n in names]
        else:
            names = list(left.names)
            if len(left.names) != len(right.names) and not star:
                self.reason(ReasonCode.UNSUPPORTED, f"{setop.key} arms have different column "
                            "counts", _line(setop))
            pairs = [(i, i if i < len(right.cols) else None) for i in range(len(names))]
        rows = left.rows | right.rows
        dataset = left.dataset | right.dataset
        if left.limited:
            dataset |= {(ref, Subtype.SORT) for ref in left.sort}
        if right.limited:
            dataset |= {(ref, Subtype.SORT) for ref in right.sort}
        cols: list[_Col] = []
        if isinstance(setop, exp.Except):
            for li, _ in pairs:
                col = _Col()
                if li is not None:
                    col.use(left.cols[li], Subtype.IDENTITY, False)
                cols.append(col)
            dataset = set(left.dataset)
            if left.limited:
                dataset |= {(ref, Subtype.SORT) for ref in left.sort}
            for compared in left.cols + right.cols:  # rows are compared whole: FILTER
                dataset |= {(ref, Subtype.FILTER) for ref in compared.refs()}
            dataset |= {(ref, Subtype.FILTER) for ref, _ in right.dataset}
            if right.limited:
                dataset |= {(ref, Subtype.FILTER) for ref in right.sort}
            rows = left.rows | {RowInfluence(r, RowEffect.SET_DIFFERENCE) for r in right.reads}
            feeding = set(left.feeding)
            values = set(left.values)
            if distinct:
                rows |= {RowInfluence(r, RowEffect.DISTINCT) for r in feeding | values}
        else:
            for li, ri in pairs:
                col = _Col()
                if li is not None:
                    col.use(left.cols[li], Subtype.IDENTITY, False)
                if ri is not None:
                    col.use(right.cols[ri], Subtype.IDENTITY, False)
                cols.append(col)
            feeding = left.feeding | right.feeding
            values = left.values | right.values
            # the output columns decide which rows exist: compared (FILTER, as EXCEPT's) or
            # deduplication keys (GROUP_BY, as a SELECT DISTINCT's)
            key = Subtype.FILTER if isinstance(setop, exp.Intersect) else Subtype.GROUP_BY
            if isinstance(setop, exp.Intersect) or distinct:
                for col in cols:
                    dataset |= {(ref, key) for ref in col.refs()}
            if isinstance(setop, exp.Intersect):
                rows |= {RowInfluence(r, RowEffect.SET_DIFFERENCE) for r in feeding}
            if distinct:
                rows |= {RowInfluence(r, RowEffect.DISTINCT) for r in feeding | values}
        result = _ScopeLineage(names, cols, dataset=dataset, rows=rows, feeding=feeding,
                               reads=left.reads | right.reads, values=values, star=star,
                               open=opened, opened=left.opened + right.opened,
                               expanded=left.expanded if not setop.args.get("by_name") else {},
                               star_source=left.star_source + right.star_source if star or opened else ())
        order = setop.args.get("order")
        if order is not None and _orders_by_all(order):
            for col in cols:  # ORDER BY ALL: every output column, left to right
                result.sort |= col.refs()
        elif order is not None:
            for node in order.find_all(exp.Column):
                idx = result.by_name.get(node.name)
                if idx is not None:
                    result.sort |= cols[idx].refs()
            for key in order.expressions:  # ORDER BY #n / ORDER BY n: the n-th output column
                pos = key.this if isinstance(key, exp.Ordered) else key
                text = pos.this.name if isinstance(pos, exp.PositionalColumn) else (
                    pos.name if isinstance(pos, exp.Literal) and not pos.is_string else "")
                if text.isdigit() and 1 <= int(text) <= len(cols):
                    result.sort |= cols[int(text) - 1].refs()
        if any(setop.args.get(a) is not None for a in ("limit", "offset", "fetch")):
            result.limited = True
            result.rows |= {RowInfluence(r, RowEffect.LIMIT) for r in feeding}
        return result

    def unnest(self, scope: Scope) -> _ScopeLineage:
        """UNNEST / LATERAL VIEW EXPLODE in FROM: each output is a TRANSFORMATION of its list."""
        node = scope.expression
        st = _State(scope, {id(s.expression): s for s in scope.subquery_scopes})
        cols = []
        for arg in node.expressions if isinstance(node, exp.Unnest) else [node.this]:
            col = _Col()
            self.walk(arg, Subtype.TRANSFORMATION, False, col, st, field_level=True)
            cols.append(col)
            # each element is a row: the list decides how many rows (a lateral join)
            st.dataset |= {(ref, Subtype.JOIN) for ref in col.refs()}
        alias = node.args.get("alias")
        names = [c.name for c in alias.columns] if isinstance(alias, exp.TableAlias) else []
        if not names and self.dialect == "snowflake" and isinstance(node.this, exp.Explode):
            # FLATTEN(...): every output column is derived from its input
            norm = Dialect.get_or_raise(self.dialect)
            names = [norm.normalize_identifier(exp.to_identifier(n)).name
                     for n in ("seq", "key", "path", "index", "value", "this")]
        if not names:
            names = [alias.name if alias is not None and alias.name else "unnest"]
        if len(cols) == 1 and len(names) > 1 and not node.args.get("offset"):
            cols = [cols[0]] * len(names)  # explode(map) AS (key, value): both from the map
        if node.args.get("offset"):
            cols.append(_Col())
        cols = (cols + [_Col() for _ in names])[: len(names)]
        feeding = {ref.relation for col in cols for ref in col.refs()}
        return _ScopeLineage(names, cols, dataset=st.dataset, rows=st.rows, feeding=feeding,
                             reads=st.reads | feeding)

    def expand_star(self, star: exp.Expr, scope: Scope, sel: exp.Select) -> list[tuple[str, _Col]] | None:
        """The columns of a `*` / `t.*` qualify() did not expand (sqlglot cannot name the
        columns of some scopes, such as one holding a struct's star), when the walk knows every
        relation it covers completely; None otherwise. EXCLUDE is honoured; a star with
        REPLACE or RENAME is left unexpanded."""
        if star.args.get("replace") or star.args.get("rename") or (
                isinstance(star, exp.Column) and (star.this.args.get("replace") or star.this.args.get("rename"))):
            return None
        inner = star.this if isinstance(star, exp.Column) else star
        excluded = {e.name for e in inner.args.get("except_") or inner.args.get("except") or []}
        if isinstance(star, exp.Column) and star.table:
            names = [star.table]
        else:
            from_ = sel.args.get("from_")
            names = [from_.this.alias_or_name] if from_ is not None else []
            for join in sel.args.get("joins") or []:
                if (join.kind or "").upper() in ("SEMI", "ANTI") or join.args.get("using"):
                    if join.args.get("using"):
                        return None  # USING merges the key columns: leave it to qualify()
                    continue
                names.append(join.this.alias_or_name)
        out: list[tuple[str, _Col]] = []
        for name in names:
            source = scope.sources.get(name)
            if not isinstance(source, Scope):
                return None
            child = self.lineage(source)
            if child.star or child.open:
                return None
            out += [(n, c) for n, c in zip(child.names, child.cols) if n not in excluded]
        return out or None

    def star_inputs(self, star: exp.Expr, scope: Scope, sel: exp.Select, out: _Col) -> None:
        """What an unexpanded `*` / `t.*` reads: every column of each source it covers, as
        `relation.*` for a table whose columns are unknown (IDENTITY)."""
        if isinstance(star, exp.Column) and star.table:
            names = [star.table]
        else:
            from_ = sel.args.get("from_")
            names = [from_.this.alias_or_name] if from_ is not None else []
            names += [j.this.alias_or_name for j in sel.args.get("joins") or []
                      if (j.kind or "").upper() not in ("SEMI", "ANTI")]
        for name in names:
            source = scope.sources.get(name)
            if isinstance(source, Scope):
                for col in self.lineage(source).cols:
                    out.use(col, Subtype.IDENTITY, False)
            elif isinstance(source, exp.Table):
                cte = self.pivoted_ctes.get(id(source))
                if cte is not None or source.args.get("pivots"):
                    # a pivot over unknown columns: its columns come from those of its input
                    if cte is None:
                        rel = self.relation(source)
                        if rel is not None:
                            out.add(ColumnRef(rel, "*"), Subtype.TRANSFORMATION, False)
                    else:
                        for col in self.lineage(cte).cols:
                            out.use(col, Subtype.TRANSFORMATION, False)
                    continue
                rel = self.relation(source)
                if rel is not None:
                    out.add(ColumnRef(rel, "*"), Subtype.IDENTITY, False)

    # -- expressions ---------------------------------------------------------------------
    def clause(self, node: exp.Expr | None, subtype: Subtype, st: _State) -> None:
        """A dataset-wide clause: every input column becomes a `subtype` edge of the output."""
        if node is None:
            return
        col = _Col()
        self.walk(node, Subtype.IDENTITY, False, col, st, field_level=False)
        st.dataset |= {(ref, subtype) for ref in col.refs()}

    def using_key(self, ident: exp.Expr, st: _State) -> None:
        """A USING key sqlglot left unexpanded: the column of every source with that name."""
        for name, source in st.scope.sources.items():
            col = _Col()
            self.source_column(source, name, ident.name, Subtype.IDENTITY, False, col, None)
            st.dataset |= {(ref, Subtype.JOIN) for ref in col.refs()}

    def walk(self, root: exp.Expr, kind: Subtype, masking: bool, out: _Col, st: _State,
             field_level: bool) -> None:
        """Collect the input columns of `root` into `out`, typed by how each is used."""
        bare = root.this if type(root) is exp.Alias else root
        if type(bare) is exp.Column and not isinstance(bare.this, exp.Star):
            self.column(bare, kind, masking, out, st, frozenset())  # the common case
            return
        stack: list[tuple[exp.Expr, Subtype, bool, bool, frozenset[str]]] = [
            (root, kind, masking, False, frozenset())
        ]
        push = stack.append
        while stack:
            node, kind, masking, in_window, bound = stack.pop()
            cls = type(node)
            code = _CODES.get(cls)
            if code is None:
                code = _CODES[cls] = _classify(cls)
            if code is _Node.LEAF:
                continue
            if code is _Node.COLUMN:
                if not isinstance(node.this, exp.Star):
                    self.column(node, kind, masking, out, st, bound)
                continue
            if code is _Node.QUERY:
                self.subquery(node, kind, masking, out, st, field_level)
                continue
            if code is _Node.WINDOW:
                st.windowed = True
                push((node.this, kind, masking, True, bound))
                for key in _window_keys(node, st.scope):
                    push((key, Subtype.WINDOW, masking, False, bound))
                continue
            if code is _Node.ROW:
                self.row_reference(node, kind, masking, out, st)
                continue
            if code is _Node.POSITION:
                self.positional(node, kind, masking, out, st)
                continue
            if code is _Node.WITHIN_GROUP:
                # agg(args) WITHIN GROUP (ORDER BY x): an ordered-set aggregate (percentile,
                # mode) aggregates x; any other (listagg) aggregates its args, ordered by x
                agg = node.this
                if not in_window:
                    st.aggregated = True
                value = _is_ordered_set(agg)
                order = node.expression
                keys = order.expressions if isinstance(order, exp.Order) else [order]
                direct = _is_direct(kind)
                for key in keys:
                    key_kind = (Subtype.AGGREGATION if value else Subtype.SORT) if direct else kind
                    push((key, key_kind, masking, False, bound))
                push((agg, kind, masking, in_window, bound))
                continue
            if code is _Node.UNNEST:
                # each element becomes a row: the list decides how many rows (dataset-wide)
                lists = _Col()
                for child in _children(node):
                    self.walk(child, Subtype.IDENTITY, False, lists, st, field_level=False)
                st.dataset |= {(ref, Subtype.JOIN) for ref in lists.refs()}
                for child in _children(node):
                    push((child, _up(kind), masking, False, bound))
                continue
            if code is _Node.LAMBDA:
                names = frozenset(e.name for e in node.expressions)
                push((node.this, _up(kind), masking, False, bound | names))
                continue
            if code is _Node.CASE:
                if node.args.get("this") is not None:
                    push((node.this, Subtype.CONDITIONAL, masking, False, bound))
                for branch in node.args.get("ifs") or []:
                    push((branch.this, Subtype.CONDITIONAL, masking, False, bound))
                    push((branch.args["true"], _up(kind), masking, False, bound))
                if node.args.get("default") is not None:
                    push((node.args["default"], _up(kind), masking, False, bound))
                continue
            if code is _Node.IF:
                push((node.this, Subtype.CONDITIONAL, masking, False, bound))
                for arg in ("true", "false"):
                    if node.args.get(arg) is not None:
                        push((node.args[arg], _up(kind), masking, False, bound))
                continue
            if code is _Node.COALESCE and _is_using_key(node):
                for child in _children(node):
                    push((child, kind, masking, False, bound))
                continue
            if code is _Node.COALESCE or code is _Node.NULLIF:
                for child in _children(node):
                    push((child, _up(kind), masking, False, bound))
                    push((child, Subtype.CONDITIONAL, masking, False, bound))
                continue
            if code is _Node.FILTER:
                push((node.this, kind, masking, in_window, bound))
                push((node.expression, Subtype.CONDITIONAL, masking, False, bound))
                continue
            if code is _Node.ORDER and node is not root:
                # agg(x ORDER BY y): x is the value, y only orders it
                if node.this is not None:
                    push((node.this, kind, masking, False, bound))
                for child in node.expressions:
                    push((child, Subtype.SORT if _is_direct(kind) else kind, masking, False, bound))
                continue
            if code is _Node.AGG or code is _Node.AGG_VALUE or code is _Node.AGG_COUNT \
                    or code is _Node.AGG_VALUE_COUNT:
                if in_window and (code is _Node.AGG_VALUE or code is _Node.AGG_VALUE_COUNT):
                    child_kind = _up(kind)
                else:
                    child_kind = Subtype.AGGREGATION if _is_direct(kind) else kind
                    if not in_window:
                        st.aggregated = True
                child_masking = masking or code is _Node.AGG_COUNT or code is _Node.AGG_VALUE_COUNT
                for child in _children(node):
                    push((child, child_kind, child_masking, False, bound))
                continue
            if code is _Node.PASS or (in_window and code is _Node.WINDOW_WRAPPER):
                for child in _children(node):
                    push((child, kind, masking, in_window, bound))
                continue
            child_kind = _up(kind)
            # a hash hides its input (an Anonymous function is a hash by its name)
            child_masking = masking or code is _Node.HASH or (
                code is _Node.ANONYMOUS and _is_hash(node))
            for child in _children(node):
                push((child, child_kind, child_masking, False, bound))

    def column(self, node: exp.Column, kind: Subtype, masking: bool, out: _Col, st: _State,
               bound: frozenset[str]) -> None:
        table, name = node.table, node.name
        if st.default_source is not None:  # inside a PIVOT: every column is the input's
            base, pivots = st.default_source
            self.through_pivots(base, pivots, name, kind, masking, out, node)
            return
        if not table:
            if name in bound:
                return
            alias = st.aliases.get(name)
            if alias is not None:
                out.use(alias, kind, masking)
                return
            self.unqualified(node, name, kind, masking, out, st)
            return
        if node.args.get("db") is not None:
            named = self.named_table(st.scope, node)
            if named is not None:  # db.t.x: the column x of the relation db.t (aliased or not)
                self.source_column(named[1], named[0], name, kind, masking, out, node)
                return
            # a.b.c left as a column: struct field access on a qualified column
            table = node.args["db"].name
            name = node.args["table"].name
            kind = _up(kind)
        scope: Scope | None = st.scope
        while scope is not None:
            source = scope.sources.get(table)
            if source is not None:
                self.source_column(source, table, name, kind, masking, out, node)
                return
            for pivot in scope.pivots:
                if pivot.alias_or_name == table:
                    chain = self.pivot_chain(pivot)
                    if chain is None:
                        self.reason(ReasonCode.UNSUPPORTED, "pivot source not found",
                                    _line(pivot))
                    else:
                        self.through_pivots(*chain, name, kind, masking, out, node)
                    return
            scope = scope.parent
        # `s.f` where s is no relation in scope: the field f of a struct column s
        found = self.candidates(st.scope, table)
        if found is not None:
            source_name, source = found
            self.source_column(source, source_name, table, _up(kind), masking, out, node)
            return
        self.reason(ReasonCode.UNRESOLVED_COLUMN, f"column {table}.{name}: no relation or "
                    f"struct column {table} in scope", _line(node), name)

    def row_reference(self, node: exp.Expr, kind: Subtype, masking: bool, out: _Col,
                      st: _State) -> None:
        """A whole-row reference qualify() recognised (`select t from t`, `to_json(t)`)."""
        name = node.name
        scope: Scope | None = st.scope
        while scope is not None:
            source = scope.sources.get(name)
            if source is not None:
                self.whole_row(source, name, kind, masking, out)
                return
            scope = scope.parent
        self.reason(ReasonCode.UNRESOLVED_COLUMN, f"{name}: no relation {name} in scope",
                    _line(node), name)

    def from_columns(self, scope: Scope) -> list[tuple[str, exp.Table | Scope, str]] | None:
        """The columns of a SELECT's FROM clause in order (what `*` gives): (source name,
        source, column) each; None when some relation's columns are not all known."""
        sel = scope.expression
        if not isinstance(sel, exp.Select):
            return None
        items = []
        from_ = sel.args.get("from_")
        if from_ is not None:
            items.append((from_.this, ()))
        for join in sel.args.get("joins") or []:
            if (join.kind or "").upper() in ("SEMI", "ANTI"):
                continue
            if join.args.get("method") and str(join.args.get("method")).upper() == "NATURAL":
                return None
            items.append((join.this, tuple(i.name for i in join.args.get("using") or [])))
        out: list[tuple[str, exp.Table | Scope, str]] = []
        for item, using in items:
            name = item.alias_or_name
            source = scope.sources.get(name)
            if source is None:
                return None
            if isinstance(source, Scope):
                child = self.lineage(source)
                if child.star or child.open:
                    return None
                names = list(child.names)
            else:
                if source.args.get("pivots") or id(source) in self.pivoted_ctes:
                    base = self.pivot_base(source)
                    names = self.pivot_outputs(base, list(source.args.get("pivots") or [])) if base else None
                else:
                    rel = self.relation(source)
                    known = self.catalog.columns(self.catalog_parts.get(rel, (rel,))) if rel else None
                    names = list(known) if known is not None and self.complete(rel) else None
                    if names is None and rel is None:
                        alias = source.args.get("alias")
                        names = [c.name for c in alias.columns] if isinstance(alias, exp.TableAlias) and alias.columns else None
                if names is None:
                    return None
            out += [(name, source, c) for c in names if c not in using]
        return out

    def positional(self, node: exp.Expr, kind: Subtype, masking: bool, out: _Col,
                   st: _State) -> None:
        """DuckDB's `#n`: the n-th select item in ORDER BY, else the n-th column of FROM."""
        try:
            n = int(node.this.name)
        except (AttributeError, ValueError):
            n = 0
        order = node.find_ancestor(exp.Order, exp.Select)
        if isinstance(order, exp.Order) and order.parent is st.scope.expression:
            if 1 <= n <= len(st.outputs):
                out.use(st.outputs[n - 1], kind, masking)
                return
        else:
            columns = self.from_columns(st.scope)
            if columns is not None and 1 <= n <= len(columns):
                source_name, source, name = columns[n - 1]
                self.source_column(source, source_name, name, kind, masking, out, node)
                return
            if columns is None:
                # every column of FROM may be the one: an over-approximation, PARTIAL
                self.reason(ReasonCode.UNSUPPORTED, f"#{n}: the columns of FROM are not all known",
                            _line(node), f"#{n}")
                for source_name, source in _selected(st.scope):
                    self.whole_row(source, source_name, kind, masking, out)
                return
        self.reason(ReasonCode.UNRESOLVED_COLUMN, f"#{n} is out of range", _line(node), f"#{n}")

    def named_table(self, scope: Scope | None, node: exp.Column) -> tuple[str, exp.Table] | None:
        """The relation a column qualified by a relation's own name (`db.t.x`) refers to: a
        FROM item of `scope` (or a scope around it) whose name ends with those parts."""
        parts = tuple(p.name for p in node.parts[:-1])
        while scope is not None:
            for key, source in scope.sources.items():
                if isinstance(source, exp.Table) and not isinstance(source.this, exp.Func):
                    own = tuple(p.name for p in source.parts)
                    if len(own) >= len(parts) and own[-len(parts):] == parts:
                        return key, source
            scope = scope.parent
        return None

    def has_column(self, source: exp.Table | Scope, name: str) -> bool | None:
        """Does `source` have a column `name`? None when it may (its columns are unknown or
        partly known)."""
        if isinstance(source, Scope):
            child = self.lineage(source)
            if name in child.by_name:
                return True
            return None if child.star or child.open else False
        if source.args.get("pivots") or id(source) in self.pivoted_ctes:
            return None
        rel = self.relation(source)
        if rel is None:  # a table function: its alias names its columns, if any
            alias = source.args.get("alias")
            names = [c.name for c in alias.columns] if isinstance(alias, exp.TableAlias) else []
            return (name in names) if names else None
        known = self.known_columns(rel)
        if known is None:
            return None
        if name in known:
            return True
        return False if self.complete(rel) else None

    def lacks(self, source: exp.Table | Scope, name: str) -> bool:
        """Is `source` known not to have a column `name`?"""
        return self.has_column(source, name) is False

    def complete(self, relation: str) -> bool:
        """Are the catalog's columns of `relation` (named by `relation()`) all its columns?"""
        return self.catalog.is_complete(self.catalog_parts.get(relation, (relation,)))

    def candidates(self, scope: Scope, name: str) -> tuple[str, exp.Table | Scope] | None:
        """The one relation of `scope` (or a scope around it, for a correlated reference) that
        has, or may have, a column `name`; None when there is none or more than one."""
        inner = None
        while scope is not None:
            named = [(k, v) for k, v in _selected(scope) if v is not inner]
            has = [(k, v) for k, v in named if self.has_column(v, name)]
            maybe = [(k, v) for k, v in named if self.has_column(v, name) is None]
            if len(has) == 1:
                return has[0]
            if has or maybe:
                return maybe[0] if not has and len(maybe) == 1 else None
            if not scope.can_be_correlated:
                return None
            scope, inner = scope.parent, scope
        return None

    def unqualified(self, node: exp.Column, name: str, kind: Subtype, masking: bool, out: _Col,
                    st: _State) -> None:
        """A column qualify() could not attribute. Innermost scope first: the relation that has
        it, else the one relation whose columns are not all known (the column keeps its edge,
        PARTIAL); else a whole-row reference (`select t from t`); else, in a subquery, the
        scopes around it (a correlated reference)."""
        scope, inner = st.scope, None
        seen: list[tuple[str, exp.Table | Scope]] = []
        while scope is not None:
            # a LATERAL cannot read itself: its name is not a candidate around it
            named = [(k, v) for k, v in _selected(scope) if v is not inner]
            seen += named
            verdicts = [(k, v, self.has_column(v, name)) for k, v in named]
            has = [(k, v) for k, v, h in verdicts if h]
            maybe = [(k, v) for k, v, h in verdicts if h is None]
            if not has and not maybe and scope is st.scope and name in st.lateral:
                # an earlier select item's name (a lateral alias) that no relation has (a
                # relation's column takes precedence over it, as in DuckDB)
                out.use(st.lateral[name], kind, masking)
                return
            if len(has) == 1 or (not has and len(maybe) == 1):
                source_name, source = has[0] if has else maybe[0]
                self.source_column(source, source_name, name, kind, masking, out, node)
                return
            if has or maybe:
                which = ", ".join(k for k, _ in has or maybe)
                self.reason(ReasonCode.UNRESOLVED_COLUMN, f"column {name} is ambiguous: it may "
                            f"come from {which} (qualify it)", _line(node), name)
                return
            row = next((v for k, v in named if k == name), None)
            if row is not None:
                self.whole_row(row, name, kind, masking, out)
                return
            if not scope.can_be_correlated:
                break
            scope, inner = scope.parent, scope
        self.reason(ReasonCode.UNRESOLVED_COLUMN, self.no_column(name, seen), _line(node), name)

    def no_column(self, name: str, sources: list[tuple[str, exp.Table | Scope]]) -> str:
        """'column x is not a column of a, b (did you mean: y?)'."""
        labels: list[str] = []
        names: list[str] = []
        for source_name, source in sources:
            if isinstance(source, Scope):
                labels.append(source_name)
                names += self.lineage(source).names
            else:
                rel = self.relation(source)
                labels.append(rel or source_name)
                names += list(self.known_columns(rel) or ()) if rel else []
        where = f"not a column of {', '.join(dict.fromkeys(labels))}" if labels else "not in scope"
        return f"column {name} is {where}{_did_you_mean(name, names)}"

    def whole_row(self, source: exp.Table | Scope, name: str, kind: Subtype, masking: bool,
                  out: _Col) -> None:
        """`select t from t`, `to_json(t)`: the row of `t` as a struct reads every column of t."""
        kind = _up(kind)
        if isinstance(source, Scope):
            child = self.lineage(source)
            for col in child.cols:
                out.use(col, kind, masking)
            if child.star or child.open:
                for inner, inner_name in child.star_source:
                    self.whole_row(inner, inner_name, kind, masking, out)
            return
        if source.args.get("pivots") or id(source) in self.pivoted_ctes:
            base = self.pivot_base(source)
            outputs = self.pivot_outputs(base, list(source.args.get("pivots") or [])) if base else None
            if base is None or outputs is None:
                self.reason(ReasonCode.UNSUPPORTED, f"whole-row reference {name} to a pivot whose "
                            "columns are unknown", _line(source), name)
                return
            for col_name in outputs:
                self.through_pivots(base, list(source.args.get("pivots") or []), col_name, kind,
                                    masking, out, None)
            return
        rel = self.relation(source)
        if rel is None:
            return
        known = self.known_columns(rel)
        for col_name in known or ():
            out.add(ColumnRef(rel, col_name), kind, masking)
        if known is None or not self.complete(rel):
            out.add(ColumnRef(rel, "*"), kind, masking)  # the columns the catalog does not list

    def source_column(self, source: exp.Table | Scope, source_name: str, name: str,
                      kind: Subtype, masking: bool, out: _Col, node: exp.Expr | None,
                      via_pivot: bool = False) -> None:
        if isinstance(source, Scope):
            child = self.lineage(source)
            idx = child.by_name.get(name)
            if idx is not None:
                out.use(child.cols[idx], kind, masking)
            elif child.star or child.open:
                if child.star:
                    self.reason(ReasonCode.UNEXPANDED_STAR, f"column {source_name}.{name} comes "
                                "from an unexpanded star", _line(node), name)
                if not child.star_source:
                    self.reason(ReasonCode.UNRESOLVED_COLUMN, f"column {source_name}.{name}: "
                                "the star it would come from reads several relations",
                                _line(node), name)
                for inner, inner_name in child.star_source:
                    # `select * from t` with t's columns unknown: the name passes through
                    self.source_column(inner, inner_name, name, kind, masking, out, node)
            else:
                self.reason(ReasonCode.UNRESOLVED_COLUMN, f"column {name} is not a column of "
                            f"{source_name}{_did_you_mean(name, child.names)}", _line(node), name)
            return
        pivots = source.args.get("pivots")
        if pivots and not via_pivot:
            base = self.pivot_base(source)
            assert base is not None
            self.through_pivots(base, list(pivots), name, kind, masking, out, node)
            return
        rel = self.relation(source)
        if rel is None:
            return
        known = self.known_columns(rel)
        if known is not None and name not in known:
            if self.complete(rel):
                self.reason(ReasonCode.UNRESOLVED_COLUMN, f"column {name} is not a column of "
                            f"{rel}{_did_you_mean(name, known)}", _line(node), name)
                return
            self.reason(ReasonCode.UNKNOWN_COLUMN, f"column {name} is not in the partial column "
                        f"list of {rel}: traced as written", _line(node), name)
        out.add(ColumnRef(rel, name), kind, masking)

    def subquery(self, node: exp.Expr, kind: Subtype, masking: bool, out: _Col, st: _State,
                 field_level: bool) -> None:
        query = node.unnest() if isinstance(node, exp.Subquery) else node
        scope = st.subqueries.get(id(query))
        if scope is None:
            self.reason(ReasonCode.UNSUPPORTED, "subquery without scope", _line(node))
            return
        child = self.lineage(scope)
        effect = _subquery_effect(query)
        st.rows |= {RowInfluence(r, effect) for r in child.reads}
        st.reads |= child.reads
        value_kind = kind if effect is RowEffect.SCALAR_SUBQUERY or not field_level else Subtype.FILTER
        for col in child.cols:
            out.use(col, value_kind, masking)
        inner = set(child.dataset)
        if child.limited:
            inner |= {(ref, Subtype.SORT) for ref in child.sort}
        if field_level:
            for ref, sub in inner:
                out.add(ref, sub, masking)
        else:
            st.dataset |= inner

    # -- pivots --------------------------------------------------------------------------
    def pivot_base(self, holder: exp.Expr) -> tuple[exp.Table | Scope, str] | None:
        """What a pivoted FROM item reads before its pivots: a table, a CTE or a derived table."""
        if isinstance(holder, exp.Table):
            cte = self.pivoted_ctes.get(id(holder))
            return (cte, holder.name) if cte is not None else (holder, holder.alias_or_name)
        if isinstance(holder, exp.Subquery):
            inner = self.by_expression.get(id(holder.this))
            return (inner, holder.alias_or_name) if inner is not None else None
        return None

    def pivot_chain(self, pivot: exp.Pivot) -> tuple[tuple[exp.Table | Scope, str], list[exp.Pivot]] | None:
        """(base, the pivots applied up to and including `pivot`), in the order written."""
        holder = pivot.parent
        base = self.pivot_base(holder) if holder is not None else None
        if base is None:
            return None
        pivots = list(holder.args.get("pivots") or [])
        index = next((i for i, p in enumerate(pivots) if p is pivot), len(pivots) - 1)
        return base, pivots[: index + 1]

    def base_names(self, base: tuple[exp.Table | Scope, str]) -> list[str] | None:
        source, _ = base
        if isinstance(source, Scope):
            child = self.lineage(source)
            return None if child.star else list(child.names)
        rel = self.relation(source)
        cols = self.catalog.columns(self.catalog_parts.get(rel, (rel,))) if rel else None
        return list(cols) if cols is not None else None

    def pivot_outputs(self, base: tuple[exp.Table | Scope, str], pivots: list[exp.Pivot],
                      renamed: bool = True) -> list[str] | None:
        """The output column names after `pivots` (None when the base's columns are unknown).
        An UNPIVOT gives the other columns, then its name and value columns; a PIVOT the
        columns it does not use, then the generated ones; an alias list renames by position."""
        key = (id(base[0]), len(pivots), renamed)
        if key in self.pivot_names:
            return self.pivot_names[key]
        names: list[str] | None
        if not pivots:
            names = self.base_names(base)
        else:
            pivot = pivots[-1]
            inner = self.pivot_outputs(base, pivots[:-1])
            fields = [f for f in pivot.args.get("fields") or [] if isinstance(f, exp.In)]
            if inner is None:
                names = None
            elif pivot.args.get("unpivot"):
                used = {c.name for f in fields for e in f.expressions for c in e.find_all(exp.Column)}
                used |= {e.name for f in fields for e in f.expressions if isinstance(e, exp.Identifier)}
                made = [f.this.name for f in fields]
                values = _unpivot_values(pivot)
                made = values + made if pivot.args.get("value_columns_first") else made + values
                names = [n for n in inner if n not in used] + made
            else:
                used = {c.name for e in pivot.expressions for c in e.find_all(exp.Column)}
                used |= {c.name for f in fields for c in f.this.find_all(exp.Column)}
                generated = [c.name for c in pivot.args.get("columns") or []]
                names = [n for n in inner if n not in used] + generated
            alias = pivot.args.get("alias")
            aliases = [c.name for c in alias.columns] if isinstance(alias, exp.TableAlias) else []
            if names is not None and renamed and aliases:
                names = aliases + names[len(aliases):]
        self.pivot_names[key] = names
        return names

    def through_pivots(self, base: tuple[exp.Table | Scope, str], pivots: list[exp.Pivot],
                       name: str, kind: Subtype, masking: bool, out: _Col,
                       node: exp.Expr | None) -> None:
        """A column read after a chain of PIVOT / UNPIVOT: generated columns from the aggregate
        (or the unpivoted columns), the others passed through to the previous step."""
        source, source_name = base
        if not pivots:
            self.source_column(source, source_name, name, kind, masking, out, node, via_pivot=True)
            return
        pivot, rest = pivots[-1], pivots[:-1]
        alias = pivot.args.get("alias")
        aliases = [c.name for c in alias.columns] if isinstance(alias, exp.TableAlias) else []
        if aliases:
            outputs = self.pivot_outputs(base, pivots, renamed=False)
            if outputs is None:
                self.reason(ReasonCode.UNKNOWN_COLUMN, f"column {name} of {pivot.key} alias "
                            f"{alias.name or ''}({', '.join(aliases)}): the pivoted columns are "
                            "unknown", _line(node), name)
                return
            if name in aliases:
                index = aliases.index(name)
                if index >= len(outputs):
                    self.reason(ReasonCode.UNKNOWN_COLUMN, f"column {name} cannot be resolved",
                                _line(node), name)
                    return
                name = outputs[index]
        sub = _State(self.root, {}, default_source=(base, rest))
        fields = [f for f in pivot.args.get("fields") or [] if isinstance(f, exp.In)]
        if pivot.args.get("unpivot"):
            values = _unpivot_values(pivot)
            if name in values:
                index = values.index(name)
                for f in fields:
                    for entry in f.expressions:
                        entry = entry.this if isinstance(entry, (exp.PivotAlias, exp.Alias)) else entry
                        if isinstance(entry, exp.Tuple) and len(values) > 1:
                            items = entry.expressions
                            entry = items[index] if index < len(items) else None
                        if entry is not None:
                            self.walk(entry, kind, masking, out, sub, field_level=True)
                return
            if name in {f.this.name for f in fields}:
                return  # the name column holds the unpivoted columns' names: no input
        else:
            generated = [c.name for c in pivot.args.get("columns") or []]
            if not generated and pivot.expressions:
                self.reason(ReasonCode.UNSUPPORTED, "pivot output columns unknown", _line(pivot))
            if name in generated:
                aggs = pivot.expressions
                agg = aggs[generated.index(name) % len(aggs)] if aggs else None
                if agg is not None:
                    self.walk(agg, kind, masking, out, sub, field_level=True)
                for f in fields:
                    self.walk(f.this, Subtype.CONDITIONAL, masking, out, sub, field_level=True)
                return
        self.through_pivots(base, rest, name, kind, masking, out, node)

    def pivot_dataset(self, pivot: exp.Pivot, st: _State) -> None:
        """A PIVOT groups by the pivoted input's other columns: GROUP_BY edges. An UNPIVOT
        (without INCLUDE NULLS) drops the rows whose unpivoted value is NULL: FILTER edges."""
        chain = self.pivot_chain(pivot)
        if chain is None:
            return
        base, pivots = chain
        rest = pivots[:-1]
        if pivot.args.get("unpivot"):
            if not pivot.args.get("include_nulls"):
                sub = _State(self.root, {}, default_source=(base, rest))
                col = _Col()
                for f in pivot.args.get("fields") or []:
                    if isinstance(f, exp.In):
                        for entry in f.expressions:
                            self.walk(entry, Subtype.IDENTITY, False, col, sub, field_level=False)
                st.dataset |= {(ref, Subtype.FILTER) for ref in col.refs()}
            return
        used = {c.name for e in pivot.expressions for c in e.find_all(exp.Column)}
        used |= {c.name for f in pivot.args.get("fields") or [] for c in f.find_all(exp.Column)}
        for col_name in self.pivot_outputs(base, rest) or []:
            if col_name not in used:
                col = _Col()
                self.through_pivots(base, rest, col_name, Subtype.IDENTITY, False, col, None)
                st.dataset |= {(ref, Subtype.GROUP_BY) for ref in col.refs()}


def _pivot_columns(pivot: exp.Pivot) -> list[str]:
    """The columns a PIVOT generates, as sqlglot names them, with boolean IN values named as
    DuckDB names them (`true`, `false`: sqlglot gives them no name)."""
    names = [c.name for c in pivot.args.get("columns") or []]
    fields = [f for f in pivot.args.get("fields") or [] if isinstance(f, exp.In)]
    if all(names) and not any(isinstance(v, exp.Boolean) for f in fields for v in f.expressions):
        return names
    import itertools

    ours = [[("true" if v.this else "false") if isinstance(v, exp.Boolean) else None
             for v in f.expressions] for f in fields]
    aggs = max(1, len(pivot.expressions))
    combos = list(itertools.product(*[range(len(f.expressions)) for f in fields]))
    if len(combos) * aggs != len(names):
        return names
    fixed = []
    for i, name in enumerate(names):
        combo = combos[i // aggs]
        if all(ours[k][j] is None for k, j in enumerate(combo)):
            fixed.append(name)
            continue
        # sqlglot's name is its value parts ('' for a boolean) joined by '_', then a suffix
        parts = name.split("_")
        mine = [ours[k][j] if ours[k][j] is not None else parts[k] if k < len(parts) else ""
                for k, j in enumerate(combo)]
        fixed.append("_".join(mine + parts[len(combo):]))
    return fixed


def _unpivot_values(pivot: exp.Pivot) -> list[str]:
    """The value column names of an UNPIVOT (`(a, b) FOR ...` gives two)."""
    names: list[str] = []
    for e in pivot.expressions:
        names += [i.name for i in e.expressions] if isinstance(e, exp.Tuple) else [e.name]
    return names

@functools.lru_cache(maxsize=1024)
def _struct_type_fields(typ: str) -> list[str] | None:
    """Field names of a STRUCT type (DuckDB syntax), else None.

    >>> _struct_type_fields("STRUCT(x INTEGER, y VARCHAR)"), _struct_type_fields("INTEGER[]")
    (['x', 'y'], None)
    """
    if "struct" not in typ.lower():
        return None
    try:
        data = exp.DataType.build(typ, dialect="duckdb")
    except (SqlglotError, ValueError):
        return None
    if data.this != exp.DataType.Type.STRUCT:
        return None
    return [e.name for e in data.expressions]


def _window_keys(window: exp.Window, scope: Scope) -> list[exp.Expr]:
    """PARTITION BY and ORDER BY keys of a window, with those of the named window it refers to
    (`OVER w`, `OVER (w ORDER BY x)`, `WINDOW w2 AS (w ...)`) from the SELECT's WINDOW clause."""
    keys: list[exp.Expr] = []
    seen: set[str] = set()
    node: exp.Expr | None = window
    definitions = scope.expression.args.get("windows") or [] if isinstance(scope.expression, exp.Select) else []
    while node is not None:
        keys += node.args.get("partition_by") or []
        if node.args.get("order") is not None:
            keys.append(node.args["order"])
        base = node.args.get("alias")
        name = base.name if isinstance(base, exp.Identifier) else ""
        if not name or name in seen:
            break
        seen.add(name)
        node = next((d for d in definitions if isinstance(d.this, exp.Identifier) and d.this.name == name), None)
    return keys


_ORDERED_SET = frozenset({"percentile_cont", "percentile_disc", "mode", "median", "quantile",
                          "quantile_cont", "quantile_disc", "percent_rank", "cume_dist", "rank",
                          "dense_rank"})


def _is_ordered_set(agg: exp.Expr) -> bool:
    """Does `agg WITHIN GROUP (ORDER BY x)` compute its value from x (percentile_cont, mode)
    rather than order its own arguments (listagg)?"""
    if isinstance(agg, (exp.PercentileCont, exp.PercentileDisc, exp.Mode, exp.Median)):
        return True
    name = agg.name if isinstance(agg, exp.Anonymous) else agg.sql_name() if isinstance(agg, exp.Func) else ""
    return name.lower() in _ORDERED_SET


def _same_lineage(a: _ScopeLineage, b: _ScopeLineage) -> bool:
    """Do two lineages of one scope give the same columns, inputs and row influences?"""
    return (a.names == b.names and a.dataset == b.dataset and a.rows == b.rows
            and a.sort == b.sort and a.reads == b.reads
            and all(x.direct == y.direct and x.indirect == y.indirect for x, y in zip(a.cols, b.cols)))


def _did_you_mean(name: str, names: Iterable[str]) -> str:
    """' (did you mean: a, b?)' for close names, else ''.

    >>> _did_you_mean("nick_name", ["nickname", "name", "id"])
    ' (did you mean: nickname, name?)'
    """
    import difflib

    close = difflib.get_close_matches(name, list(dict.fromkeys(n for n in names if n != "*")), n=3, cutoff=0.6)
    return f" (did you mean: {', '.join(close)}?)" if close else ""


def _children(node: exp.Expr) -> Iterable[exp.Expr]:
    for value in node.args.values():
        if isinstance(value, exp.Expr):
            yield value
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, exp.Expr):
                    yield item


def _is_using_key(node: exp.Coalesce) -> bool:
    """Is this the COALESCE sqlglot wrote for a USING / NATURAL join key (not in the SQL)?"""
    if node._meta is not None:  # noqa: SLF001 - parsed nodes carry positions
        return False
    args = list(_children(node))
    return len(args) > 1 and all(
        isinstance(a, exp.Column) and a.name == args[0].name for a in args
    )


def _used_scopes(scope: Scope) -> list[Scope]:
    """The child scopes a scope reads (CTEs it selects from, not every CTE it could see)."""
    kids: list[Scope] = [*scope.subquery_scopes, *scope.set_operation_scopes, *scope.table_scopes]
    try:
        selected = [source for _, source in scope.selected_sources.values()]
    except SqlglotError:
        selected = list(scope.sources.values())
    selected += [scope.sources[n] for n in scope.semi_or_anti_join_tables if n in scope.sources]
    kids += [s for s in selected if isinstance(s, Scope)]
    return kids


def _selected(scope: Scope) -> list[tuple[str, exp.Table | Scope]]:
    """The named relations a scope's FROM and JOINs read (not the CTEs it merely sees)."""
    try:
        return [(k, source) for k, (_, source) in scope.selected_sources.items() if k]
    except SqlglotError:
        return [(k, v) for k, v in scope.sources.items() if k]


def _star_source(star: exp.Expr, scope: Scope, sel: exp.Select) -> tuple[exp.Table | Scope, str] | None:
    """The one source an unexpanded `*` / `t.*` reads, if there is exactly one."""
    if isinstance(star, exp.Column) and star.table:
        source = scope.sources.get(star.table)
        return (source, star.table) if source is not None else None
    if sel.args.get("joins"):
        return None
    from_ = sel.args.get("from_")
    name = from_.this.alias_or_name if from_ is not None else None
    source = scope.sources.get(name) if name else None
    return (source, name) if source is not None else None


def _orders_by_all(order: exp.Order) -> bool:
    keys = order.expressions
    return len(keys) == 1 and isinstance(keys[0].this, exp.Var) and keys[0].this.name.upper() == "ALL"


def _has_aggregate(node: exp.Expr) -> bool:
    """Does the expression aggregate (an aggregate function outside any window)?"""
    for agg in find_all_in_scope(node, exp.AggFunc):
        parent = agg.parent
        while parent is not None and parent is not node and not isinstance(parent, exp.Window):
            parent = parent.parent
        if not isinstance(parent, exp.Window):
            return True
    return False


def _all_unpivot(pivots: list[exp.Pivot]) -> bool:
    return all(p.args.get("unpivot") for p in pivots)


def _subquery_effect(query: exp.Expr) -> RowEffect:
    """How a subquery in an expression uses its rows: IN/EXISTS (NOT: anti) or scalar."""
    node = query
    while isinstance(node.parent, exp.Subquery):
        node = node.parent
    parent = node.parent
    if isinstance(parent, (exp.In, exp.Exists, exp.Any, exp.All)):
        outer = parent.parent
        while isinstance(outer, exp.Paren):
            outer = outer.parent
        return RowEffect.ANTI_JOIN if isinstance(outer, exp.Not) else RowEffect.SEMI_JOIN
    return RowEffect.SCALAR_SUBQUERY


# -- statements ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Statement:
    query: exp.Expr | None
    target: str | None = None
    target_columns: tuple[str, ...] = ()


def _split_statement(stmt: exp.Expr, dialect: str, catalog: Catalog) -> _Statement:
    """The query of a SELECT / CREATE ... AS / INSERT ... SELECT, and the table it writes.
    UPDATE and MERGE are traced as the INSERT ... SELECT that writes the same values."""
    if isinstance(stmt, exp.Query):
        return _Statement(stmt)
    if isinstance(stmt, (exp.Update, exp.Merge)) and isinstance(stmt.this, exp.Table):
        made = _update_query(stmt) if isinstance(stmt, exp.Update) else _merge_query(stmt, dialect, catalog)
        if made is None:
            return _Statement(None)
        query, names, target_table = made
        with_ = stmt.args.get("with_")
        if with_ is not None:
            query.set("with_", with_.pop())
        parts = relation_parts(target_table, dialect)
        columns = tuple(_normalized_name(n, dialect) for n in names)
        return _Statement(query, catalog.resolve(parts) or relation_name(parts, dialect), columns)
    if isinstance(stmt, (exp.Create, exp.Insert)):
        query = stmt.expression
        while isinstance(query, exp.Subquery) and isinstance(query.this, exp.Query):
            if query.args.get("limit") or query.args.get("order"):
                break
            query = query.this
        if not isinstance(query, exp.Query):
            return _Statement(None)
        with_ = stmt.args.get("with_")
        if with_ is not None and query.args.get("with_") is None:
            query.set("with_", with_.pop())
        target_node = stmt.this
        columns: tuple[str, ...] = ()
        if isinstance(target_node, exp.Schema):
            columns = tuple(
                _normalized_name(c, dialect) for c in target_node.expressions
                if isinstance(c, (exp.Identifier, exp.ColumnDef, exp.Column))
            )
            target_node = target_node.this
        target = None
        if isinstance(target_node, exp.Table):
            parts = relation_parts(target_node, dialect)
            target = catalog.resolve(parts) or relation_name(parts, dialect)
            if not columns and isinstance(stmt, exp.Insert):
                columns = catalog.columns(parts) or ()
        query.pop() if query.parent is not None else None
        return _Statement(query, target, columns)
    return _Statement(None)


def _pivot_statement_sql(stmt: exp.Pivot, dialect: str, catalog: Catalog) -> tuple[str, str | None]:
    """DuckDB's PIVOT / UNPIVOT statement as the SELECT it amounts to (SQL text), and a
    reason when its columns cannot all be named:

    * `PIVOT r ON c IN (v, ...) USING agg GROUP BY g` -> `SELECT * FROM r PIVOT (agg FOR c IN
      (v, ...) GROUP BY g)` (no USING: `count(*)`);
    * without an IN list the value columns are named by the data: one column `*` holding the
      aggregate of each value, next to the grouping columns (`GROUP BY`, else every column
      the pivot does not use);
    * `UNPIVOT r ON a, b INTO NAME n VALUE v` -> `SELECT * FROM r UNPIVOT (v FOR n IN (a, b))`.

    >>> import sqlglot
    >>> _pivot_statement_sql(sqlglot.parse_one("pivot t on b in ('x') using sum(a) group by k",
    ...                                        read="duckdb"), "duckdb", Catalog("duckdb"))[0]
    "SELECT * FROM (SELECT k, b, a FROM t) PIVOT (SUM(a) FOR b IN ('x'))"
    """
    rel = stmt.this.sql(dialect=dialect)
    ons = list(stmt.expressions)
    if stmt.args.get("unpivot"):
        into = stmt.args.get("into")
        name = into.this.name if into is not None and into.this is not None else "name"
        values = [v.name for v in into.expressions] if into is not None and into.expressions else ["value"]
        if any(isinstance(o, exp.Columns) or o.find(exp.Columns) for o in ons):
            columns = _unpivot_columns_expr(stmt, dialect, catalog)
            if columns is None:
                return f"SELECT * FROM {rel}", "UNPIVOT ON COLUMNS(...) over a relation whose columns are not all known: not traced"
            ons = [exp.column(c) for c in columns]
        value = values[0] if len(values) == 1 else "(" + ", ".join(values) + ")"
        items = ", ".join(o.sql(dialect=dialect) for o in ons)
        return f"SELECT * FROM {rel} UNPIVOT ({value} FOR {name} IN ({items}))", None
    using = stmt.args.get("using") or [exp.Count(this=exp.Star())]
    group = stmt.args.get("group")
    group_sql = f" {group.sql(dialect=dialect)}" if group is not None else ""
    aggs = ", ".join(u.sql(dialect=dialect) for u in using)
    if all(isinstance(o, exp.In) for o in ons):
        fields = " ".join(o.sql(dialect=dialect) for o in ons)
        if group is not None:
            # the pivot groups by every column it does not use: keep only the GROUP BY keys (a
            # key the pivot also reads is read under another name, so that it stays a key)
            keys = [k.sql(dialect=dialect) for k in group.expressions]
            key_names = {k.name for k in group.expressions if isinstance(k, exp.Column)}
            ons, using = [o.copy() for o in ons], [u.copy() for u in using]
            renamed: dict[str, str] = {}
            for e in [*ons, *using]:
                for c in list(e.find_all(exp.Column)):
                    if c.name in key_names:
                        renamed[c.name] = f"__pivot_{c.name}"
                        c.replace(exp.column(renamed[c.name]))
            used = [c.sql(dialect=dialect) for e in [*ons, *using] for c in e.find_all(exp.Column)
                    if c.name not in renamed.values()]
            inner = ", ".join(dict.fromkeys(keys + used + [f"{k} AS {v}" for k, v in renamed.items()]))
            rel = f"(SELECT {inner} FROM {rel})"
            fields = " ".join(o.sql(dialect=dialect) for o in ons)
            aggs = ", ".join(u.sql(dialect=dialect) for u in using)
        return f"SELECT * FROM {rel} PIVOT ({aggs} FOR {fields})", None
    # the value columns come from the data: one column "*" stands for them
    on_cols = [o.this if isinstance(o, exp.In) else o for o in ons]
    on_sql = " AND ".join(f"{c.sql(dialect=dialect)} IS NOT NULL" for c in on_cols)
    values = [f"{(u.this if isinstance(u, exp.Alias) else u).sql(dialect=dialect)} FILTER (WHERE {on_sql})"
              for u in using]
    value = values[0] if len(values) == 1 else f"list_value({', '.join(values)})"
    if group is not None:
        keys = ", ".join(k.sql(dialect=dialect) for k in group.expressions)
        select = f"SELECT {keys}, {value} AS \"*\" FROM {rel}{group_sql}"
    else:
        used = {c.name for e in [*on_cols, *using] for c in e.find_all(exp.Column)}
        exclude = ", ".join(sorted(used))
        select = f"SELECT * EXCLUDE ({exclude}), {value} AS \"*\" FROM {rel} GROUP BY ALL"
    on_names = ", ".join(c.sql(dialect=dialect) for c in on_cols)
    return select, (f"PIVOT without an IN list: its value columns are named by the values of "
                    f"{on_names} in the data; they are one column * here")


def _unpivot_columns_expr(stmt: exp.Pivot, dialect: str, catalog: Catalog) -> list[str] | None:
    """The columns `UNPIVOT r ON COLUMNS(* EXCLUDE (a, b))` picks, when r's columns are known."""
    if len(stmt.expressions) != 1 or not isinstance(stmt.this, exp.Table):
        return None
    columns = stmt.expressions[0]
    star = columns.this if isinstance(columns, exp.Columns) else None
    if not isinstance(star, exp.Star):
        return None
    parts = relation_parts(stmt.this, dialect)
    known = catalog.columns(parts)
    if known is None or not catalog.is_complete(parts):
        return None
    excluded = {_normalized_name(e, dialect) for e in star.args.get("except_") or star.args.get("except") or []}
    return [c for c in known if c not in excluded]


def _struct_stars(query: exp.Expr) -> None:
    """`st.*` where st names no relation of its SELECT is DuckDB's star of a struct column:
    written `(st).*` so that qualify() reads it as a column, not as a relation it lacks."""
    for select in query.find_all(exp.Select):
        items = select.expressions
        stars = [p for p in items if isinstance(p, exp.Column) and isinstance(p.this, exp.Star)
                 and p.args.get("table") is not None and p.args.get("db") is None]
        if not stars:
            continue
        from_ = select.args.get("from_")
        items = [from_.this] if from_ is not None else []
        items += [j.this for j in select.args.get("joins") or []]
        names = {item.alias_or_name for item in items}
        names |= {lat.alias_or_name for lat in select.args.get("laterals") or []}
        # a relation's own name where an alias hides it (`select t.* from t as a`): its star
        hidden = {item.name: item.alias for item in items
                  if isinstance(item, exp.Table) and item.alias and item.name not in names}
        for p in stars:
            if p.table in hidden:
                p.set("table", exp.to_identifier(hidden[p.table]))
            elif p.table not in names:
                p.replace(exp.Dot(this=exp.Paren(this=exp.column(p.args["table"].copy())),
                                  expression=exp.Star()))


def _star_items(query: exp.Expr, dialect: str) -> dict[int, list[str | None]]:
    """For each SELECT with stars in its select list: the relation each star names (`t.*`,
    normalized) or None (`*`), keyed by the SELECT's id (qualify() keeps the nodes)."""
    norm = Dialect.get_or_raise(dialect)
    found: dict[int, list[str | None]] = {}
    for select in query.find_all(exp.Select):
        for p in select.expressions:
            if isinstance(p, exp.Star):
                found.setdefault(id(select), []).append(None)
            elif isinstance(p, exp.Column) and isinstance(p.this, exp.Star):
                table = p.args.get("table")
                name = norm.normalize_identifier(table.copy()).name if isinstance(table, exp.Identifier) else None
                found.setdefault(id(select), []).append(name)
    return found


def _from_items(from_: exp.From | None, joins: list[exp.Expr] | None) -> list[exp.Join]:
    """An UPDATE's FROM list as cross joins (its tables' own joins follow them)."""
    items: list[exp.Join] = []
    if from_ is not None:
        first = from_.this
        nested = first.args.get("joins") or [] if isinstance(first, exp.Table) else []
        if nested:
            first.set("joins", None)
        items.append(exp.Join(this=first))
        items += nested
    return items + list(joins or [])


def _update_query(stmt: exp.Update) -> tuple[exp.Select, list[exp.Expr], exp.Table] | None:
    """`UPDATE t SET a = e FROM s WHERE c` -> `SELECT e AS a FROM t, s WHERE c` (target t.a).
    `UPDATE x SET ... FROM t AS x JOIN s` (T-SQL) updates the table aliased x in FROM."""
    sets = [eq for eq in stmt.expressions if isinstance(eq, exp.EQ) and isinstance(eq.this, exp.Column)]
    if not sets:
        return None
    select = exp.Select(expressions=[exp.alias_(eq.expression, eq.this.this.copy()) for eq in sets])
    items = _from_items(stmt.args.get("from_"), stmt.args.get("joins"))
    target = stmt.this
    aliased = None
    if len(target.parts) == 1 and not target.alias:
        aliased = next((j.this for j in items if isinstance(j.this, exp.Table)
                        and j.this.alias and j.this.alias == target.name), None)
    if aliased is not None:
        target = aliased
        select.set("from_", exp.From(this=items[0].this))
        items = items[1:]
    else:
        select.set("from_", exp.From(this=target.copy()))
    select.set("joins", items or None)
    where = stmt.args.get("where")
    if where is not None:
        select.set("where", where)
    return select, [eq.this for eq in sets], target


def _merge_query(stmt: exp.Merge, dialect: str,
                 catalog: Catalog) -> tuple[exp.Query, list[exp.Expr], exp.Table] | None:
    """MERGE as the UNION ALL of its WHEN clauses, each the SELECT of the values it writes:
    MATCHED reads target JOIN source ON ..., NOT MATCHED reads source ANTI JOIN target, NOT
    MATCHED BY SOURCE reads target ANTI JOIN source; a clause's AND condition is its WHERE.
    Columns a clause does not write are NULL in its arm; DELETE clauses write nothing."""
    target, using, on = stmt.this, stmt.args.get("using"), stmt.args.get("on")
    whens = stmt.args.get("whens")
    if using is None or whens is None:
        return None
    arms: list[tuple[exp.When, list[tuple[exp.Expr, exp.Expr]]]] = []
    for when in whens.expressions:
        then = when.args.get("then")
        pairs: list[tuple[exp.Expr, exp.Expr]] = []
        if isinstance(then, exp.Update):
            pairs = [(eq.this, eq.expression) for eq in then.expressions
                     if isinstance(eq, exp.EQ) and isinstance(eq.this, exp.Column)]
        elif isinstance(then, exp.Insert) and isinstance(then.expression, exp.Tuple):
            values = then.expression.expressions
            if isinstance(then.this, exp.Tuple):
                names = [c for c in then.this.expressions if isinstance(c, exp.Column)]
            else:
                names = [exp.column(c) for c in catalog.columns(relation_parts(target, dialect)) or ()]
            pairs = list(zip(names, values)) if len(names) == len(values) else []
        if pairs:
            arms.append((when, pairs))
    if not arms:
        return None
    order: dict[str, exp.Expr] = {}
    for _, pairs in arms:
        for col, _value in pairs:
            order.setdefault(_normalized_name(col, dialect), col)
    selects: list[exp.Select] = []
    for when, pairs in arms:
        written = {_normalized_name(col, dialect): value for col, value in pairs}
        select = exp.Select(expressions=[
            exp.alias_(written[key].copy() if key in written else exp.null(), col.this.copy())
            for key, col in order.items()
        ])
        if when.args.get("matched"):
            left, right, kind = target, using, None
        elif when.args.get("source"):
            left, right, kind = target, using, "ANTI"
        else:
            left, right, kind = using, target, "ANTI"
        select.set("from_", exp.From(this=left.copy()))
        select.set("joins", [exp.Join(this=right.copy(), on=on.copy() if on is not None else None,
                                      kind=kind)])
        condition = when.args.get("condition")
        if condition is not None:
            select.set("where", exp.Where(this=condition.copy()))
        selects.append(select)
    query: exp.Query = selects[0]
    for other in selects[1:]:
        query = exp.union(query, other, distinct=False)
    return query, list(order.values()), target


def _normalized_name(node: exp.Expr, dialect: str) -> str:
    ident = node.this if isinstance(node, (exp.ColumnDef, exp.Column)) else node
    return Dialect.get_or_raise(dialect).normalize_identifier(ident.copy()).name


def _inline_opaque_ctes(query: exp.Expr, opaque: Mapping[str, str], dialect: str) -> None:
    """Drop the CTEs named in `opaque` and read their relation instead, under the CTE's name."""
    norm = Dialect.get_or_raise(dialect)

    def key(ident: exp.Expr | str) -> str:
        ident = exp.to_identifier(ident) if isinstance(ident, str) else ident.copy()
        return norm.normalize_identifier(ident).name

    targets = {key(name): relation for name, relation in opaque.items()}
    if not targets:
        return
    for cte in list(query.find_all(exp.CTE)):
        if key(cte.args["alias"].this) in targets:
            with_ = cte.parent
            cte.pop()
            if isinstance(with_, exp.With) and not with_.expressions:
                with_.pop()
    for table in list(query.find_all(exp.Table)):
        if table.args.get("db") is not None or not isinstance(table.this, exp.Identifier):
            continue
        relation = targets.get(key(table.this))
        if relation is None:
            continue
        replacement = exp.to_table(relation, dialect=dialect)
        alias = table.args.get("alias")
        replacement.set("alias", alias.copy() if alias is not None
                        else exp.TableAlias(this=table.this.copy()))
        for arg in ("joins", "pivots", "laterals"):
            if table.args.get(arg):
                replacement.set(arg, table.args[arg])
        table.replace(replacement)


def _root_selects(query: exp.Expr) -> list[exp.Expr]:
    node = query
    while isinstance(node, exp.SetOperation):
        node = node.this
    while isinstance(node, exp.Subquery):
        node = node.this
    return list(node.selects) if isinstance(node, exp.Select) else []


def _failed(code: ReasonCode, message: str, line: int | None = None,
            target: str | None = None) -> StatementLineage:
    return StatementLineage(columns=(), edges=(), status=Status.FAILED,
                            reasons=(Reason(code, message, line),), target=target)


# A statement at least this long is analysed under a hard deadline, in a forked child (see
# `deadline`): sqlglot's parser and qualify() never return to the walk's checkpoints while they
# work, and their cost grows faster than the text (a 1,000-term sum takes 0.4 s, 6,000 terms
# 11 s). Smaller statements stay in this process, where forking (about 20 ms with a loaded
# project) would cost more than the work.
ISOLATE_CHARS = 16_384


def hard_seconds(time_budget: float) -> float:
    """When a child given `time_budget` is killed: the budget and a little time to hand back
    what the walk finished (a quarter of the budget, 0.5 to 2 s).

    >>> hard_seconds(5), hard_seconds(60), hard_seconds(1)
    (6.25, 62.0, 1.5)
    """
    return time_budget + min(2.0, max(0.5, time_budget / 4))


def time_budget_spent(time_budget: float, chars: int, what: str = "statement") -> StatementLineage:
    """The answer for a statement stopped at its hard deadline: PARTIAL, no column known."""
    return StatementLineage(columns=(), edges=(), status=Status.PARTIAL, reasons=(Reason(
        ReasonCode.TIME_BUDGET,
        f"time budget of {time_budget:g}s spent before the {what} ({chars:,} characters) was parsed and "
        "qualified: stopped, its columns and inputs are unknown (raise --time-budget, or simplify it)"),))


def analyze(
    sql: str,
    *,
    dialect: str,
    catalog: Catalog,
    opaque_ctes: Mapping[str, str] | None = None,
    time_budget: float | None = None,
    isolate: bool = True,
    started: float | None = None,
) -> StatementLineage:
    """The typed column lineage of one SQL statement (see the module docstring).

    Never raises for bad SQL: a parse error gives FAILED, what cannot be traced gives PARTIAL
    with reasons. Raises `DialectError` for an unknown dialect.

    With a `time_budget`, the walk stops at its checkpoints when the budget is spent (PARTIAL,
    reason `time_budget_exceeded`, keeping what it finished); a statement of `ISOLATE_CHARS` or
    more (unless `isolate` is False) runs in a forked child killed at `hard_seconds(budget)`,
    so that even sqlglot's parser and qualify() cannot run past it. The budget counts from
    `started` (a `time.monotonic()` value; default: now).

    Python's cyclic garbage collector is paused while the statement is traced and its youngest
    generation collected afterwards: a parsed statement is thousands of nodes that point at
    their parents (cycles only the collector frees), and collections in the middle of the
    work repeatedly scanned everything a project keeps alive (a third of a cold export's CPU
    time at 1,000 models). A caller that turned the collector off keeps it off.
    """
    if time_budget is not None and isolate and len(sql) >= ISOLATE_CHARS and hard_deadline.can_isolate():
        try:
            return hard_deadline.run(analyze, sql, dialect=dialect, catalog=catalog, opaque_ctes=opaque_ctes,
                                     time_budget=time_budget, isolate=False, started=started or time.monotonic(),
                                     seconds=hard_seconds(time_budget))
        except hard_deadline.DeadlineExceeded:
            log.debug("time budget of %gs spent on a statement of %d characters: stopped", time_budget, len(sql))
            return time_budget_spent(time_budget, len(sql))
    if not gc.isenabled():
        return _analyze(sql, dialect, catalog, opaque_ctes, time_budget, started)
    gc.disable()
    try:
        return _analyze(sql, dialect, catalog, opaque_ctes, time_budget, started)
    finally:
        gc.enable()
        gc.collect(0)  # the statement's nodes, scopes and walker: garbage now


def _analyze(sql: str, dialect: str, catalog: Catalog, opaque_ctes: Mapping[str, str] | None,
             time_budget: float | None, started: float | None = None) -> StatementLineage:
    dialect = check_dialect(dialect)
    lowered = sql.lower()
    started = time.monotonic() if started is None else started
    deadline = None if time_budget is None else started + time_budget

    notes: list[Reason] = []  # reasons found while preparing (PIVOT statements)
    given: dict[str, str] = {}  # names given to unaliased expressions, normalized -> as given

    def pivot_statement(node: exp.Pivot) -> exp.Expr:
        """The SELECT a PIVOT / UNPIVOT statement amounts to, named and placed at its line."""
        line = _line(node)
        text, note = _pivot_statement_sql(node, dialect, catalog)
        if note:
            notes.append(Reason(ReasonCode.UNEXPANDED_STAR if "IN list" in note else ReasonCode.UNSUPPORTED,
                                note, line))
        query = parse_statement(text, dialect)
        _name_projections(query, text, dialect, given)
        for sub in query.walk():
            meta = sub._meta  # noqa: SLF001
            if meta:
                meta.pop("start", None), meta.pop("end", None)
                if line is not None:
                    meta["line"] = line
                else:
                    meta.pop("line", None)
        return query

    def prepare() -> _Statement | StatementLineage:
        notes.clear()
        given.clear()
        try:
            stmt = parse_statement(sql, dialect)
            if isinstance(stmt, exp.Pivot) and stmt.this is not None:
                stmt = pivot_statement(stmt)
        except SqlError as err:
            return _failed(ReasonCode.PARSE_ERROR, str(err), err.line)
        split = _split_statement(stmt, dialect, catalog)
        if split.query is None:
            return _failed(ReasonCode.UNSUPPORTED,
                           f"{type(stmt).__name__.upper()} statements have no column lineage",
                           _line(stmt))
        if opaque_ctes:
            _inline_opaque_ctes(split.query, opaque_ctes, dialect)
        for node in list(split.query.find_all(exp.Pivot)) if "pivot" in lowered else ():
            if node.this is not None and node.args.get("using") is not None:  # a nested statement
                try:
                    node.replace(pivot_statement(node))
                except SqlError as err:
                    notes.append(Reason(ReasonCode.UNSUPPORTED, f"PIVOT statement: {err}", _line(node)))
        for node in split.query.find_all(exp.Pivot) if "pivot" in lowered else ():
            if node.args.get("columns"):  # the names qualify() expands `*` to
                node.set("columns", [exp.to_identifier(n) for n in _pivot_columns(node)])
        _name_projections(split.query, sql, dialect, given)
        if ".*" in sql:
            _struct_stars(split.query)
        return split

    prepared = prepare()
    if isinstance(prepared, StatementLineage):
        return prepared
    reasons: list[Reason] = []
    star_lines = [_line(p) for p in _root_selects(prepared.query) if p.find(exp.Star)]
    # stars qualify() expands: those over a partial column list leave the output open
    stars = _star_items(prepared.query, dialect) if catalog.has_partial else {}
    try:
        query = qualify_statement(prepared.query, dialect, catalog)
    except SqlError as err:
        log.debug("qualification failed, tracing with tables qualified only: %s", err)
        prepared = prepare()
        assert isinstance(prepared, _Statement)
        stars = _star_items(prepared.query, dialect) if catalog.has_partial else {}
        # no reason of its own: the walk resolves the columns itself and names what it cannot
        try:
            query = qualify_statement(prepared.query, dialect, catalog, columns=False)
        except SqlError as err2:
            return _failed(ReasonCode.UNSUPPORTED, str(err2), target=prepared.target)
    try:
        root = build_scope(query)
    except SqlglotError as err:
        return _failed(ReasonCode.UNSUPPORTED, f"cannot build scopes: {err}",
                       target=prepared.target)
    if root is None:
        return _failed(ReasonCode.UNSUPPORTED, "statement has no query", target=prepared.target)

    reasons += notes
    walker = _Walker(dialect, catalog, root, deadline, sql)
    walker.stars = stars
    selects = _root_selects(query)
    try:
        walker.warm(root)
        result = walker.lineage(root)
    except RecursionError:
        return _failed(ReasonCode.UNSUPPORTED, "statement too deeply nested to trace",
                       target=prepared.target)
    except _TimeBudget:
        names = _output_names(selects)
        reasons.append(Reason(ReasonCode.TIME_BUDGET, f"time budget of {time_budget:g}s spent "
                              "before the lineage was complete"))
        # keep what the root scope finished: its first columns and dataset edges so far
        done_names, done_cols, done_state = walker.progress or ([], [], None)
        cols = list(done_cols) + [_Col() for _ in names[len(done_cols):]]
        result = _ScopeLineage(names, cols[: len(names)])
        result.dataset = set(done_state.dataset) if done_state is not None else set()
        for scope_lineage in walker.memo.values():  # an over-approximation, on purpose
            result.rows |= scope_lineage.rows
    except SqlglotError as err:
        return _failed(ReasonCode.UNSUPPORTED, f"cannot trace: {err}", target=prepared.target)

    if result.open:
        partial = sorted(walker.partial_relations(result)) or ["several relations"]
        reasons.append(Reason(ReasonCode.UNEXPANDED_STAR, f"* was expanded from the partial column "
                              f"list of {', '.join(partial)}: the output may have more columns",
                              next((x for x in star_lines if x is not None), None), "*"))
    names = [given.get(n, n) for n in result.names] if given else list(result.names)
    if prepared.target_columns and len(prepared.target_columns) == len(names):
        names = list(prepared.target_columns)
    # each edge once, keyed by the tuple it sorts by (target, dataset-wide ones first, source,
    # subtype, masking) without ColumnRef's and ColumnEdge's Python-level hashing and ordering
    found: dict[tuple, tuple[str | None, ColumnRef, Subtype, bool]] = {}
    for name, col in zip(names, result.cols):
        head = (name or "", name is not None)
        for ref, (sub, masking) in col.direct.items():
            found[(*head, ref.relation, ref.column, sub.value, masking)] = (name, ref, sub, masking)
        for (ref, sub), masking in col.indirect.items():
            found[(*head, ref.relation, ref.column, sub.value, masking)] = (name, ref, sub, masking)
    for ref, sub in result.dataset:
        found[("", False, ref.relation, ref.column, sub.value, False)] = (None, ref, sub, False)
    for ref in result.sort:
        found[("", False, ref.relation, ref.column, Subtype.SORT.value, False)] = (
            None, ref, Subtype.SORT, False)
    edges = [ColumnEdge(*found[key]) for key in sorted(found)]

    seen: set[str] = set()
    doubled: dict[str, None] = {}
    for name in names:
        if name in seen:
            doubled[name] = None
        seen.add(name)
    reasons += [Reason(ReasonCode.DUPLICATE_COLUMN, f"output column {name} appears more than once",
                       column=name) for name in doubled]  # once per column
    reasons.extend(walker.reasons.values())

    lines = _column_lines(selects, star_lines, len(names), walker)
    status = Status.PARTIAL if any(r.code in _PARTIAL_CODES for r in reasons) else Status.FULL
    return StatementLineage(
        columns=tuple(names),
        edges=tuple(edges),
        row_influences=tuple(sorted(result.rows)),
        status=status,
        reasons=tuple(reasons),
        target=prepared.target,
        column_lines=tuple(
            (name, line) for name, line in zip(names, lines) if line is not None
        ),
    )


def _is_star(projection: exp.Expr) -> bool:
    return isinstance(projection, exp.Star) or (
        isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star))


def _output_names(selects: list[exp.Expr]) -> list[str]:
    """Output names of a select list, unexpanded stars as one column "*" where the first is."""
    names: list[str] = []
    for projection in selects:
        if not _is_star(projection):
            names.append(projection.alias_or_name)
        elif "*" not in names:
            names.append("*")
    return names


def _column_lines(selects: list[exp.Expr], star_lines: list[int | None], count: int,
                  walker: _Walker | None = None) -> list[int | None]:
    """1-based line of each output column's expression. A column expanded from a star has no
    position of its own: it takes the line where its source CTE / derived table defines it,
    else the star's line."""
    lines: list[int | None] = []
    star_line = next((line for line in star_lines if line is not None), None)
    last: int | None = None
    starred = False
    for projection in selects:
        if _is_star(projection):
            if not starred:  # the one "*" column of all unexpanded stars
                starred = True
                line = _line(projection) or star_line
                lines.append(line)
                last = line if line is not None else last
            continue
        line = _line(projection)
        if line is None and walker is not None:
            line = _definition_line(projection, walker)
        if line is None:
            line = star_line if star_line is not None else last
        lines.append(line)
        last = line if line is not None else last
    return (lines + [None] * count)[:count]


def _definition_line(projection: exp.Expr, walker: _Walker, depth: int = 0) -> int | None:
    """Line of the select item that defines a star-expanded column in an inner scope."""
    column = projection.this if isinstance(projection, exp.Alias) else projection
    if not isinstance(column, exp.Column) or depth > 50:
        return None
    parent = projection.parent  # a select item's parent is its SELECT: skip the search
    select = parent if type(parent) is exp.Select else projection.parent_select
    table = column.table
    where = (id(select), table)
    source = walker.select_sources.get(where, _UNSEEN)
    if source is _UNSEEN:
        scope = walker.by_expression.get(id(select)) if select is not None else None
        source = walker.select_sources[where] = (
            scope.sources.get(table) if scope is not None else None)
    if not isinstance(source, Scope):
        return None
    key = (id(source), column.name)
    line = walker.definition_lines.get(key, _UNSEEN)
    if line is not _UNSEEN:
        return line
    index = walker.select_index.get(id(source))
    if index is None:
        query = source.expression
        while isinstance(query, exp.SetOperation):
            query = query.this
        index = {}
        if isinstance(query, exp.Select):
            for inner in query.selects:
                index.setdefault(inner.alias_or_name, inner)
        walker.select_index[id(source)] = index
    inner = index.get(column.name)
    line = None
    if inner is not None:
        line = _line(inner) or _definition_line(inner, walker, depth + 1)
    walker.definition_lines[key] = line
    return line


# -- output names of unaliased expressions -----------------------------------------------------

# DuckDB's keywords (`select keyword_name from duckdb_keywords()`, DuckDB 1.x): a function
# whose name is one is written quoted in the names DuckDB gives columns (`"if"(...)`).
_DUCKDB_KEYWORDS = frozenset((
    "abort absolute access action add admin after aggregate all also alter always analyse "
    "analyze and anti any approx array as asc asof assertion assignment asymmetric at attach "
    "attribute authorization backward before begin between bigint binary bit boolean both by "
    "cache call called cascade cascaded case cast catalog centuries century chain char character "
    "characteristics check checkpoint class close cluster coalesce collate collation column "
    "columns columns comment comments commit committed compression concurrently configuration "
    "conflict connect connection constraint constraints content continue conversion copy cost "
    "create cross csv cube current cursor cycle data database day days deallocate dec decade "
    "decades decimal declare default defaults deferrable deferred definer delete delimiter "
    "delimiters depends desc describe destroy detach dictionary disable discard disconnect "
    "distance distinct do document domain double drop each else enable encoding encrypted end "
    "enum error escape event exact except exclude excluding exclusive execute exists explain "
    "export export_state extension extensions external extract false family fetch filter first "
    "float following for force foreign forward freeze from full function functions generated "
    "generated glob global grant granted group grouping grouping_id groups handler having header "
    "hold hour hours identity if ignore ilike immediate immutable implicit import in include "
    "including increment index indexes inherit inherits initially inline inner inout input "
    "insensitive insert install instead int integer intersect interval into invoker is isnull "
    "isolation join json key label lambda language large last lateral leading leakproof left "
    "level like limit listen load local location lock locked logged macro map map mapping match "
    "matched materialized maxvalue merge method microsecond microseconds millennia millennium "
    "millisecond milliseconds minute minutes minvalue mode month months move name names national "
    "natural nchar nearest new next no none not nothing notify notnull nowait null nullif nulls "
    "numeric object of off offset oids old on only operator option options or order ordinality "
    "others out outer over overlaps overlay overriding owned owner parallel parser partial "
    "partition partitioned passing password percent persistent pivot pivot_longer pivot_wider "
    "placing plans policy position positional pragma preceding precision prepare prepared "
    "preserve primary prior privileges procedural procedure program publication qualify quarter "
    "quarters quote range read real reassign recheck recursive ref references referencing "
    "refresh register reindex relative release rename repeatable replace replica reset resource "
    "resources respect restart restrict returning returns revoke right role rollback rollup row "
    "rows rule sample savepoint schema schemas scope scroll search second seconds secret secure "
    "security select semi sequence sequences serializable server session set setof sets share "
    "show similar similarity simple skip smallint snapshot some sorted source sql stable "
    "standalone start statement statistics stdin stdout storage stored strict strip struct "
    "struct subscription substring summarize symmetric sysid system table tables tablesample "
    "tablespace target temp template temporary text then ties time timestamp to trailing "
    "transaction transform treat trigger trim true truncate trusted try_cast try_cast tuple "
    "tuple type types unbounded uncommitted unencrypted union unique unknown unlisten unlogged "
    "unpack unpivot until update use user using vacuum valid validate validator value values "
    "varchar variable variadic varying verbose version view views virtual volatile week weeks "
    "when where whitespace window with within without work wrapper write xml xmlattributes "
    "xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot xmlserialize "
    "xmltable year years yes zone "
).split())
_BINARY_OPS: dict[type, str] = {
    exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/", exp.IntDiv: "//", exp.Mod: "%",
    exp.Pow: "^", exp.EQ: "=", exp.NEQ: "!=", exp.GT: ">", exp.GTE: ">=", exp.LT: "<",
    exp.LTE: "<=", exp.DPipe: "||", exp.Like: "~~", exp.ILike: "~~*", exp.Glob: "~~~",
    exp.BitwiseAnd: "&", exp.BitwiseOr: "|", exp.BitwiseLeftShift: "<<",
    exp.BitwiseRightShift: ">>", exp.NullSafeNEQ: "IS DISTINCT FROM",
    exp.NullSafeEQ: "IS NOT DISTINCT FROM",
}
_NOT_OPS: dict[type, str] = {exp.Like: "!~~", exp.ILike: "!~~*"}
_NO_PARENS = frozenset({"current_date", "current_timestamp", "current_time", "localtime",
                        "localtimestamp", "current_user", "current_role"})


def _position(node: exp.Expr) -> int:
    """Where a node starts in the SQL text (the smallest offset sqlglot recorded in it)."""
    best = None
    for sub in node.walk():
        meta = sub._meta  # noqa: SLF001
        if meta and meta.get("start") is not None and (best is None or meta["start"] < best):
            best = meta["start"]
    return best if best is not None else 1 << 30


def engine_name(node: exp.Expr, sql: str, dialect: str) -> str:
    """The name the engine gives an unaliased select item: DuckDB's (its expression printed
    as DuckDB prints it: `(a + b)`, `CASE  WHEN ((a > 1)) THEN (b) ELSE NULL END`, `'x'`,
    `count_star()`); in another dialect, the expression's own SQL.

    >>> import sqlglot
    >>> text = "select upper(b), a + 1, case when a > 1 then b end, 'ok', count(*) from t"
    >>> [engine_name(p, text, "duckdb") for p in sqlglot.parse_one(text, read="duckdb").expressions]
    ['upper(b)', '(a + 1)', 'CASE  WHEN ((a > 1)) THEN (b) ELSE NULL END', "'ok'", 'count_star()']
    """
    if dialect != "duckdb":
        return node.sql(dialect=dialect)
    try:
        return _duck(node, sql)
    except Exception:  # noqa: BLE001 - an unusual node: its SQL is still a faithful name
        return node.sql(dialect="duckdb")


def _duck(n: exp.Expr, sql: str) -> str:  # noqa: C901, PLR0911, PLR0912 - one case per node kind
    d = lambda x: _duck(x, sql)  # noqa: E731
    if isinstance(n, exp.Column):
        return ".".join(p.name for p in n.parts)
    if isinstance(n, (exp.Identifier, exp.Var)):
        return n.name
    if isinstance(n, exp.PositionalColumn):
        return f"#{n.this.name}"
    if isinstance(n, exp.Literal):
        return "'" + n.this.replace("'", "''") + "'" if n.is_string else n.this
    if isinstance(n, exp.Boolean):
        return "true" if n.this else "false"
    if isinstance(n, exp.Null):
        return "NULL"
    if isinstance(n, (exp.Paren, exp.Alias, exp.PropertyEQ)) and not isinstance(n, exp.PropertyEQ):
        return d(n.this)
    if isinstance(n, exp.Neg):
        return "-" + n.this.this if isinstance(n.this, exp.Literal) and not n.this.is_string else f"(-({d(n.this)}))"
    if isinstance(n, exp.BitwiseNot):
        return f"(~({d(n.this)}))"
    if isinstance(n, exp.Not):
        inner = n.this
        if isinstance(inner, exp.Is) and isinstance(inner.expression, exp.Null):
            return f"({d(inner.this)} IS NOT NULL)"
        if type(inner) in _NOT_OPS:
            return f"({d(inner.this)} {_NOT_OPS[type(inner)]} {d(inner.expression)})"
        return f"(NOT {d(inner)})"
    if isinstance(n, exp.Is):
        return f"({d(n.this)} IS {d(n.expression)})"
    if isinstance(n, (exp.And, exp.Or)):
        items, stack = [], [n]
        while stack:
            x = stack.pop()
            if type(x) is type(n):
                stack += [x.expression, x.this]
            else:
                items.append(d(x))
        return "(" + f" {'AND' if isinstance(n, exp.And) else 'OR'} ".join(items) + ")"
    if type(n) in _BINARY_OPS:
        op = _NOT_OPS[type(n)] if n.args.get("negate") and type(n) in _NOT_OPS else _BINARY_OPS[type(n)]
        return f"({d(n.this)} {op} {d(n.expression)})"
    if isinstance(n, exp.In) and not n.args.get("query") and not n.args.get("unnest"):
        return f"({d(n.this)} IN ({', '.join(d(x) for x in n.expressions)}))"
    if isinstance(n, exp.Between):
        return f"({d(n.this)} BETWEEN {d(n.args['low'])} AND {d(n.args['high'])})"
    if isinstance(n, (exp.Cast, exp.TryCast)) and isinstance(n.to, exp.DataType):
        typ = n.to.sql(dialect="duckdb")
        typ = re.sub(r"\bINT\b", "INTEGER", typ).replace("TEXT", "VARCHAR").replace("REAL", "FLOAT")
        return f"{'TRY_CAST' if isinstance(n, exp.TryCast) else 'CAST'}({d(n.this)} AS {typ})"
    if isinstance(n, exp.Case):
        parts = ["CASE "]
        for branch in n.args.get("ifs") or []:
            cond = branch.this
            if n.this is not None:
                cond = exp.EQ(this=n.this, expression=cond)
            parts.append(f" WHEN ({d(cond)}) THEN ({d(branch.args['true'])})")
        default = n.args.get("default")
        parts.append(f" ELSE {d(default) if default is not None else 'NULL'} END")
        return "".join(parts)
    if isinstance(n, exp.Coalesce):
        return f"COALESCE({', '.join(d(x) for x in [n.this, *n.expressions])})"
    if isinstance(n, exp.If):
        args = [n.this, n.args.get("true"), n.args.get("false")]
        return f'"if"({", ".join(d(x) for x in args if x is not None)})'
    if isinstance(n, exp.Nullif):
        return f'"nullif"({d(n.this)}, {d(n.expression)})'
    if isinstance(n, exp.Count) and (n.this is None or isinstance(n.this, exp.Star)):
        return "count_star()"
    if isinstance(n, exp.Distinct):
        return "DISTINCT " + ", ".join(d(x) for x in n.expressions)
    if isinstance(n, exp.Struct):
        fields = []
        for x in n.expressions:
            key = x.this.name if isinstance(x, (exp.PropertyEQ, exp.Alias)) else None
            value = x.expression if isinstance(x, exp.PropertyEQ) else x.this if isinstance(x, exp.Alias) else x
            fields.append(f"{key} := {d(value)}" if key else d(value))
        return f"struct_pack({', '.join(fields)})"
    if isinstance(n, exp.Array):
        return f"list_value({', '.join(d(x) for x in n.expressions)})"
    if isinstance(n, exp.Bracket):
        # sqlglot stores a 1-based DuckDB index 0-based (a new literal, without a position)
        keys = [str(int(x.this) + 1) if isinstance(x, exp.Literal) and not x.is_string
                and x.this.lstrip("-").isdigit() else d(x) for x in n.expressions]
        return f"{d(n.this)}[{', '.join(keys)}]"
    if isinstance(n, exp.Slice):
        return f"{d(n.this) if n.this is not None else ''}:{d(n.expression) if n.expression is not None else ''}"
    if isinstance(n, exp.Extract):
        return f"date_part('{n.this.name.upper()}', {d(n.expression)})"
    if isinstance(n, exp.Ordered):
        return d(n.this) + (" DESC" if n.args.get("desc") else "")
    if isinstance(n, exp.Order):
        return "ORDER BY " + ", ".join(d(x) for x in n.expressions)
    if isinstance(n, exp.Filter):
        where = n.expression.this if isinstance(n.expression, exp.Where) else n.expression
        return f"{d(n.this)} FILTER (WHERE {d(where)})"
    if isinstance(n, exp.Window) and not n.args.get("spec") and isinstance(n.args.get("over"), str):
        spec = []
        if n.args.get("partition_by"):
            spec.append("PARTITION BY " + ", ".join(d(x) for x in n.args["partition_by"]))
        if n.args.get("order") is not None:
            spec.append(d(n.args["order"]))
        if n.args.get("alias") is not None:
            raise ValueError("named window")
        inner = n.this
        func = "count()" if isinstance(inner, exp.Count) and (inner.this is None or isinstance(inner.this, exp.Star)) else d(inner)
        return f"{func} OVER ({' '.join(spec)})"
    if isinstance(n, exp.WithinGroup) and isinstance(n.this, (exp.PercentileCont, exp.PercentileDisc)):
        name = "quantile_cont" if isinstance(n.this, exp.PercentileCont) else "quantile_disc"
        return f"{name}({d(n.this.this)} {d(n.expression)})"
    if isinstance(n, exp.WithinGroup):
        return f"{_duck_func(n.this, sql)} WITHIN GROUP ( {d(n.expression)})"
    if isinstance(n, exp.Lambda):
        params = ", ".join(d(x) for x in n.expressions)
        return f"(lambda {params}: {d(n.this)})"
    if isinstance(n, exp.Func):
        return _duck_func(n, sql)
    raise ValueError(type(n).__name__)


def _duck_func(n: exp.Func, sql: str) -> str:
    """`name(args)` with the name as written (lower case; quoted when a DuckDB keyword) and
    the arguments in the order written, an aggregate's ORDER BY last."""
    args = list(n.expressions) if isinstance(n, exp.Anonymous) else sorted(_children(n), key=_position)
    if not isinstance(n, exp.Anonymous) and any(_position(x) >= len(sql) or isinstance(x, exp.Var) for x in args):
        raise ValueError("arguments rewritten by sqlglot")  # (date_trunc's unit): its SQL then
    meta = n._meta  # noqa: SLF001
    if meta and meta.get("start") is not None and meta.get("end") is not None:
        name = sql[meta["start"]: meta["end"] + 1].lower()
    elif isinstance(n, exp.Anonymous):
        name = n.name.lower()
    else:  # the name written before the first argument: `string_agg(` is a GroupConcat
        start = _position(args[0]) if args else len(sql)
        found = _FUNC_NAME.search(sql[:start])
        if found is None:
            raise ValueError("function name not found")
        name = found.group(1).lower()
    if not name.replace("_", "").isalnum():
        raise ValueError(name)
    order = None
    if args and isinstance(args[0], exp.Order) and args[0].this is not None:
        order, args = args[0], [args[0].this, *args[1:]]
    if not args and name in _NO_PARENS:
        return name
    text = ", ".join(_duck(x, sql) for x in args)
    if order is not None:
        text += " " + _duck(exp.Order(expressions=order.expressions), sql)
    quoted = f'"{name}"' if name in _DUCKDB_KEYWORDS else name
    return f"{quoted}({text})"


def _name_projections(query: exp.Expr, sql: str, dialect: str,
                      names: dict[str, str] | None = None) -> None:
    """Give every unaliased expression of every select list the name the engine gives it,
    as an explicit alias, so that qualify(), stars and outer scopes all see that name.
    `names` collects each name as the dialect normalizes it -> as given (DuckDB keeps the case
    of a column's name but resolves names without it: the output shows the name as given)."""
    norm = Dialect.get_or_raise(dialect) if names is not None else None
    for select in query.find_all(exp.Select):
        items = select.expressions
        if all(type(p) in _NAMED_ITEMS for p in items):
            continue
        named = []
        for p in items:
            if type(p) in _NAMED_ITEMS or isinstance(p, (exp.Star, exp.PositionalColumn)) or (
                    isinstance(p, exp.Column) and isinstance(p.this, exp.Star)):
                named.append(p)
            else:
                name = engine_name(p, sql, dialect)
                named.append(exp.Alias(this=p, alias=exp.to_identifier(name, quoted=True)))
                if norm is not None:
                    names[norm.normalize_identifier(exp.to_identifier(name, quoted=True)).name] = name
        select.set("expressions", named)


_NAMED_ITEMS = (exp.Alias, exp.Column)
_FUNC_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*(?:distinct\s+|all\s+)?\(*\s*$", re.I)
