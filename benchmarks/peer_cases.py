#!/usr/bin/env python
"""Peer-case accuracy: `lineage-tools sql` against the test suites of sqllineage and sqlglot.

Reads `../shared/eval/peer_cases_dev.json` (relative to the repository root; `--cases PATH` to
change it; the file is never copied into the repository), runs every case through the library
function behind `lineage-tools sql` (`lineage_tools.standalone.analyze_text`, in-process) and
through plain `sqlglot.lineage` (one call per output column, the baseline the cases' README
quotes), and prints per origin: exact cases, precision and recall of field-level edges, on the
core cases and on all cases, side by side.

Each suite is scored on its own semantics, mapped onto ours (see docs/lineage-semantics.md):
table names compare by dotted suffix, names case-insensitively; field-level edges are DIRECT
edges and field-level INDIRECT edges (CASE conditions, window keys); dataset-wide INDIRECT
edges (WHERE, JOIN ON, GROUP BY) are not compared.

    .venv/bin/python benchmarks/peer_cases.py                 # the figures table
    .venv/bin/python benchmarks/peer_cases.py --failures      # failing cases, grouped by cause
    .venv/bin/python benchmarks/peer_cases.py --only-core --origin sqllineage --failures
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from rich.console import Console
from rich.table import Table
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.lineage import lineage as sqlglot_lineage

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CASES = REPO_ROOT.parent / "shared" / "eval" / "peer_cases_dev.json"
GENERIC_DIALECTS = {"ansi", "sqlglot_default", ""}

# (target_table, target_column, source_table, source_column); names normalized by `_name`.
Pair = tuple[str | None, str, str | None, str]


# ---------------------------------------------------------------------------------------------
# Cases


@dataclass(frozen=True)
class Case:
    id: str
    origin: str  # "sqllineage" | "sqlglot"
    core: bool
    sql: str
    dialect: str  # as written in the case file
    schema: Mapping | None
    sources: Mapping[str, str] | None
    expected: frozenset[Pair]
    column: str | None  # sqlglot cases: the one output column the case is about
    features: tuple[str, ...]
    env: Mapping[str, str] | None


def _name(name: str | None) -> str | None:
    """Names compare case-insensitively; unnamed expressions also ignore whitespace and quotes."""
    if name is None:
        return None
    return re.sub(r"\s+", "", name).replace('"', "").replace("`", "").lower()


def load_cases(path: Path) -> list[Case]:
    data = json.loads(path.read_text(encoding="utf-8"))
    cases = []
    for raw in data["cases"]:
        origin = raw["origin_repo"].split("/")[-1].lower()  # sqllineage, sqlglot, openlineage, datahub
        expected = frozenset(
            (_name(e["target_table"]), _name(e["target_column"]), _name(e["source_table"]),
             _name(e["source_column"]))
            for e in raw["expected"]
        )
        column = None
        if origin == "sqlglot":
            names = [e["target_column"] for e in raw["expected"]] or list(
                raw.get("expected_no_source_columns") or []
            )
            column = _name(names[0]) if names else None
        cases.append(
            Case(
                id=raw["id"],
                origin=origin,
                core=bool(raw["core"]),
                sql=raw["sql"],
                dialect=raw["dialect"],
                schema=raw.get("schema"),
                sources=raw.get("sources"),
                expected=expected,
                column=column,
                features=tuple(raw.get("features") or ()),
                env=raw.get("env"),
            )
        )
    return cases


# ---------------------------------------------------------------------------------------------
# What a tool returns for a case, before the suite's semantics are applied


@dataclass(frozen=True)
class ToolStatement:
    target: str | None  # written table, None for a bare SELECT
    columns: tuple[str, ...]  # output columns in order, as the tool names them
    # (target column, source table, source column, subtype or None when the tool has no types)
    edges: tuple[tuple[str, str | None, str, str | None], ...]
    notes: tuple[str, ...] = ()  # reason codes / status the tool reported


@dataclass(frozen=True)
class ToolResult:
    statements: tuple[ToolStatement, ...] = ()
    error: str | None = None


# ---------------------------------------------------------------------------------------------
# Baseline: plain sqlglot.lineage, one call per output column


def _sqlglot_dialect(dialect: str) -> str | None:
    return None if dialect in GENERIC_DIALECTS else dialect


def _nested_schema(schema: Mapping | None) -> dict | None:
    """The case schema as sqlglot's MappingSchema wants it: nested by dotted parts, typed."""
    if not schema:
        return None
    nested: dict = {}

    def columns(cols) -> dict:
        if isinstance(cols, Mapping):
            return {c: (t or "UNKNOWN") for c, t in cols.items()}
        return {c: "UNKNOWN" for c in cols}

    def is_table(value) -> bool:
        return not isinstance(value, Mapping) or all(
            not isinstance(v, Mapping) for v in value.values()
        )

    def add(prefix: list[str], mapping: Mapping) -> None:
        for key, value in mapping.items():
            parts = prefix + key.split(".")
            if is_table(value):
                node = nested
                for part in parts[:-1]:
                    node = node.setdefault(part, {})
                node[parts[-1]] = columns(value)
            else:
                add(parts, value)

    add([], schema)
    return nested


def _leaf_pairs(node) -> list[tuple[str | None, str]]:
    """Leaf (table, column) pairs of a sqlglot lineage node; non-table leaves give nothing."""
    pairs = []
    for n in node.walk():
        if n.downstream:
            continue
        if isinstance(n.source, exp.Table):
            table = ".".join(p.name for p in n.source.parts)
            pairs.append((table, n.name.split(".")[-1]))
    return pairs


def _query_of(statement: exp.Expression) -> tuple[str | None, exp.Expression | None]:
    """(written table, query) of a statement sqlglot.lineage can trace, else (None, None)."""
    if isinstance(statement, (exp.Insert, exp.Create)):
        query = statement.expression
        if not isinstance(query, exp.Query):
            return None, None
        target = statement.this
        if isinstance(target, exp.Schema):
            target = target.this
        name = ".".join(p.name for p in target.parts) if isinstance(target, exp.Table) else None
        while isinstance(query, exp.Subquery):
            query = query.this
        return name, query
    if isinstance(statement, exp.Query):
        return None, statement
    return None, None


def run_baseline(case: Case) -> ToolResult:
    dialect = _sqlglot_dialect(case.dialect)
    try:
        schema = _nested_schema(case.schema)
        statements = [s for s in sqlglot.parse(case.sql, read=dialect) if s is not None]
    except Exception as exc:  # noqa: BLE001 - a peer tool's failure is a measured outcome
        return ToolResult(error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
    out = []
    errors = []
    for statement in statements:
        target, query = _query_of(statement)
        if query is None:
            continue
        try:
            names = list(
                sqlglot_lineage(None, query, schema=schema, sources=case.sources, dialect=dialect,
                                trim_selects=False)
            )
            edges = []
            for name in names:
                node = sqlglot_lineage(name, query, schema=schema, sources=case.sources,
                                       dialect=dialect, trim_selects=False)
                edges.extend((name, t, c, None) for t, c in _leaf_pairs(node))
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
            continue
        out.append(ToolStatement(target=target, columns=tuple(names), edges=tuple(edges)))
    if not out and errors:
        return ToolResult(error=errors[0])
    return ToolResult(statements=tuple(out))


# ---------------------------------------------------------------------------------------------
# Suite semantics -> comparable pairs


def _suite_names(case: Case) -> dict[str | None, list[str | None]]:
    """sqllineage's names of each written table's output columns, by position.

    A target column list (`INSERT INTO t (a, b)`, `CREATE VIEW v (a, b)`) names the columns;
    otherwise an alias or a plain column names it, and an unnamed expression is named by its own
    text (`max(col1)`); sqllineage names an unaliased `x::type` after `x`. A `*` in the select
    list makes positions unknowable: None there, and the tool's names are kept.
    """
    names: dict[str | None, list[str | None]] = {}
    try:
        statements = sqlglot.parse(case.sql, read=_sqlglot_dialect(case.dialect))
    except Exception:  # noqa: BLE001
        return names
    for statement in statements:
        if statement is None:
            continue
        target, query = _query_of(statement)
        if query is None:
            continue
        listed = None
        this = statement.this if isinstance(statement, (exp.Insert, exp.Create)) else None
        if isinstance(this, exp.Schema) and this.expressions:
            listed = [e.name for e in this.expressions]
        selects = query.selects if isinstance(query, exp.Query) else []
        if any(isinstance(s, exp.Star) or (isinstance(s, exp.Column) and s.is_star) for s in selects):
            cols: list[str | None] = [None] * len(selects)
        else:
            cols = [_projection_name(s, case.sql) for s in selects]
        if listed is not None and len(listed) == len(cols):
            cols = listed
        names.setdefault(_name(target), [_name(c) for c in cols])
    return names


def _projection_name(select: exp.Expression, sql: str) -> str:
    if isinstance(select, exp.Alias) or isinstance(select, exp.Column):
        return select.alias_or_name
    if (
        isinstance(select, exp.Cast)
        and isinstance(select.this, exp.Column)
        and re.search(rf"\b{re.escape(select.this.name)}\s*::", sql, re.IGNORECASE)
    ):
        return select.this.name
    return select.sql()


def pairs_for(case: Case, result: ToolResult, mapped: bool = True) -> frozenset[Pair]:
    """The tool's field-level edges as the case's suite would name them (`mapped`), or as the
    tool names them (names still compare case-insensitively, tables by dotted suffix)."""
    pairs: set[Pair] = set()
    if case.origin == "sqlglot":
        pivot_keys = _pivot_for_columns(case) if mapped else frozenset()
        for st in result.statements:
            for target_column, table, column, subtype in st.edges:
                if _name(target_column) != case.column:
                    continue
                if subtype == "CONDITIONAL" and _name(column) in pivot_keys:
                    continue  # sqlglot does not count a PIVOT's FOR column (see module doc)
                pairs.add((None, _name(target_column), _name(table), _name(column)))
        return frozenset(pairs)
    suite = _suite_names(case) if mapped else {}
    for st in result.statements:
        rename: dict[str, str] = {}
        names = next((v for k, v in suite.items() if _table_match(k, _name(st.target))), None)
        if names is not None and len(names) == len(st.columns):
            rename = {
                _name(ours): theirs for ours, theirs in zip(st.columns, names) if theirs is not None
            }
        for target_column, table, column, _subtype in st.edges:
            tc = _name(target_column)
            pairs.add((_name(st.target), rename.get(tc, tc), _name(table), _name(column)))
    return frozenset(pairs)


def _parsed(case: Case) -> list[exp.Expression]:
    try:
        return [s for s in sqlglot.parse(case.sql, read=_sqlglot_dialect(case.dialect)) if s]
    except Exception:  # noqa: BLE001
        return []


def _pivot_for_columns(case: Case) -> frozenset[str]:
    """Names of the FOR columns of the case's PIVOTs (not UNPIVOTs)."""
    names = set()
    for statement in _parsed(case):
        for pivot in statement.find_all(exp.Pivot):
            if pivot.args.get("unpivot"):
                continue
            for f in pivot.args.get("fields") or []:
                names |= {_name(c.name) for c in f.this.find_all(exp.Column)} if f.this else set()
    return frozenset(names)


def _unpivot_name_columns(case: Case) -> frozenset[str]:
    """Names of the name (FOR) columns UNPIVOTs create: they hold column names, not values.
    A name column renamed by an alias list (`AS t(e, d, m, s)`) is found by position when the
    pivoted input's columns are known (the case's schema, or a CTE's select list)."""
    names = set()
    for statement in _parsed(case):
        for pivot in statement.find_all(exp.Pivot):
            if not pivot.args.get("unpivot"):
                continue
            for f in pivot.args.get("fields") or []:
                if f.this is not None:
                    names.add(_name(f.this.name))
        for holder in statement.find_all(exp.Table, exp.Subquery):
            if holder.args.get("pivots"):
                names |= _renamed_name_columns(case, statement, holder)
    return frozenset(names)


def _renamed_name_columns(case: Case, statement: exp.Expression, holder: exp.Expression) -> set[str]:
    """Follow a chain of pivots by position: which final names hold an UNPIVOT's name column."""
    columns: list[tuple[str, bool]] | None = None  # (name, is an UNPIVOT name column)
    if isinstance(holder, exp.Table):
        schema = {_name(k.split(".")[-1]): v for k, v in (case.schema or {}).items()}
        cols = schema.get(_name(holder.name))
        if isinstance(cols, Mapping):
            cols = list(cols)
        if cols is None:
            for cte in statement.find_all(exp.CTE):
                if _name(cte.alias) == _name(holder.name) and isinstance(cte.this, exp.Select):
                    if not any(isinstance(p, exp.Star) for p in cte.this.expressions):
                        cols = [p.alias_or_name for p in cte.this.expressions]
        columns = [(_name(c), False) for c in cols] if cols is not None else None
    found: set[str] = set()
    for pivot in holder.args["pivots"]:
        if columns is None:
            return found
        fields = [f for f in pivot.args.get("fields") or [] if isinstance(f, exp.In)]
        if pivot.args.get("unpivot"):
            used = {_name(c.name) for f in fields for c in f.find_all(exp.Column)}
            values = []
            for e in pivot.expressions:
                values += list(e.expressions) if isinstance(e, exp.Tuple) else [e]
            columns = [c for c in columns if c[0] not in used]
            columns += [(_name(f.this.name), True) for f in fields]
            columns += [(_name(v.name), False) for v in values]
        else:
            return found
        alias = pivot.args.get("alias")
        aliases = [_name(c.name) for c in alias.columns] if isinstance(alias, exp.TableAlias) else []
        columns = [(a, c[1]) for a, c in zip(aliases, columns)] + columns[len(aliases):]
    return found | {n for n, is_name in columns or [] if is_name}


def expected_for(case: Case, mapped: bool = True) -> frozenset[Pair]:
    """The case's expected pairs under our semantics (see docs/lineage-semantics.md).

    sqlglot counts the unpivoted columns as inputs of an UNPIVOT's name column; in OpenLineage
    terms that column holds column names (constants) and has no input field.
    """
    if mapped and case.origin == "sqlglot" and case.column in _unpivot_name_columns(case):
        return frozenset()
    if mapped and case.origin == "sqllineage":
        counted = _count_star_columns(case)
        if counted:
            return frozenset(e for e in case.expected if not (e[3] == "*" and e[1] in counted))
    return case.expected


def _count_star_columns(case: Case) -> frozenset[str]:
    """sqllineage's names of the output columns that hold `count(*)`: sqllineage has them read
    `T.*`; in OpenLineage terms `count(*)` reads no field (it depends on the rows only)."""
    found: set[str] = set()
    for statement in _parsed(case):
        _target, query = _query_of(statement)
        if not isinstance(query, exp.Query):
            continue
        selects = query.selects
        if any(isinstance(p, exp.Star) or (isinstance(p, exp.Column) and p.is_star) for p in selects):
            continue
        names = [_projection_name(p, case.sql) for p in selects]
        this = statement.this if isinstance(statement, (exp.Insert, exp.Create)) else None
        if isinstance(this, exp.Schema) and len(this.expressions) == len(names):
            names = [e.name for e in this.expressions]
        for name, projection in zip(names, selects):
            if any(isinstance(c.this, exp.Star) for c in projection.find_all(exp.Count)):
                found.add(_name(name))
    return frozenset(found)


# ---------------------------------------------------------------------------------------------
# Scoring


def _table_match(a: str | None, b: str | None) -> bool:
    """Tables match when one dotted name is a suffix of the other (`tab1` ~ `main.tab1`)."""
    if a is None or b is None:
        return a is b
    pa, pb = a.split("."), b.split(".")
    n = min(len(pa), len(pb))
    return pa[-n:] == pb[-n:]


def _pair_match(e: Pair, g: Pair, star_names: bool = False) -> bool:
    """Same target and source. With `star_names`, a leaf `T.*` of output column c (the suites'
    name for "c, read through T's unexpanded star") also matches `T.c` (ours: the name passes
    through the star to the one relation it reads)."""
    same_column = e[3] == g[3] or (star_names and e[3] == "*" and g[3] == e[1])
    return (
        e[1] == g[1] and same_column and _table_match(e[0], g[0]) and _table_match(e[2], g[2])
    )


def match(expected: frozenset[Pair], got: frozenset[Pair],
          star_names: bool = False) -> tuple[list[Pair], list[Pair], int]:
    """(missing, extra, true positives): a greedy one-to-one matching of the two sets."""
    unused = sorted(got, key=str)
    missing = []
    tp = 0
    for e in sorted(expected, key=str):
        for i, g in enumerate(unused):
            if _pair_match(e, g, star_names):
                del unused[i]
                tp += 1
                break
        else:
            missing.append(e)
    return missing, unused, tp


@dataclass(frozen=True)
class Outcome:
    case: Case
    got: frozenset[Pair]
    missing: tuple[Pair, ...]
    extra: tuple[Pair, ...]
    tp: int
    error: str | None
    notes: tuple[str, ...]

    @property
    def exact(self) -> bool:
        return self.error is None and not self.missing and not self.extra


def score(case: Case, result: ToolResult, mapped: bool = True) -> Outcome:
    got = pairs_for(case, result, mapped) if result.error is None else frozenset()
    missing, extra, tp = match(expected_for(case, mapped), got, star_names=mapped)
    notes = tuple(sorted({n for st in result.statements for n in st.notes}))
    return Outcome(case, got, tuple(missing), tuple(extra), tp, result.error, notes)


@dataclass
class Tally:
    cases: int = 0
    exact: int = 0
    tp: int = 0
    expected: int = 0
    got: int = 0

    def add(self, o: Outcome) -> None:
        self.cases += 1
        self.exact += o.exact
        self.tp += o.tp
        self.expected += o.tp + len(o.missing)
        self.got += o.tp + len(o.extra)

    @property
    def precision(self) -> float:
        return self.tp / self.got if self.got else 1.0

    @property
    def recall(self) -> float:
        return self.tp / self.expected if self.expected else 1.0


def tally(outcomes: Iterable[Outcome], core_only: bool) -> dict[str, Tally]:
    tallies: dict[str, Tally] = defaultdict(Tally)
    for o in outcomes:
        if core_only and not o.case.core:
            continue
        tallies[o.case.origin].add(o)
    return tallies


# ---------------------------------------------------------------------------------------------
# Failure causes


def cause_of(o: Outcome) -> str:
    """A short label for why a case failed, used to group failures.

    Labels name the construct (from the case's own `features` and the tool's reason codes), so
    that one engine fix maps to one group; they never look at case ids.
    """
    feats = set(o.case.features)
    notes = set(o.notes)
    err = o.error or ""
    star_expected = any(m[3] == "*" for m in o.missing)
    if "found UPDATE" in err or "found MERGE" in err or "stmt:update" in feats and err:
        return "UPDATE / MERGE statements are not traced"
    if err:
        kind = "procedural SQL (CREATE PROCEDURE ... BEGIN ... END)" if any(
            f.startswith("stmt:create_procedure") for f in feats) else "dialect-specific syntax"
        return f"cannot parse: {kind}"
    if {"stmt:create_procedure", "stmt:endstatement"} & feats:
        return "cannot parse: procedural SQL (CREATE PROCEDURE ... BEGIN ... END)"
    if star_expected and "unexpanded_star" in notes:
        return ("unexpanded * (no schema): the star's relation is not found (a name hidden by "
                "an alias) or a column is renamed by position through it")
    if star_expected:
        return "count(*) / * without a column: no edge to the table read"
    if "unnest_lateral" in feats:
        return "LATERAL FLATTEN / UNNEST table functions"
    if "pivot_unpivot" in feats:
        if o.extra and not (o.missing or o.tp):
            return "PIVOT / UNPIVOT: the suite expects no source (sqlglot cannot resolve it)"
        return "PIVOT / UNPIVOT: chained, aliased (AS t(a, b)) or over a CTE"
    unresolved = {"unknown_column", "unresolved_column"} & notes
    if unresolved and "subquery" in feats:
        return "unqualified column inside a scalar subquery, no schema: not resolved"
    if unresolved and o.missing and any(m[2] is None for m in o.missing):
        return "unqualified column over a join, no schema: the suite keeps it with table None"
    if "lateral_column_alias" in feats or "unresolved_source_qualifier" in feats:
        return "lateral column alias vs table column (no schema)"
    if o.missing and o.extra and {(m[2], m[3]) for m in o.missing} == {(x[2], x[3]) for x in o.extra}:
        return "target column named differently"
    if o.extra and not (o.missing or o.tp):
        return "edges where the suite expects none"
    if o.missing and not o.extra:
        return "missing edges" + (f" ({', '.join(sorted(notes))})" if notes else "")
    if o.extra and not o.missing:
        return "extra edges" + (f" ({', '.join(sorted(notes))})" if notes else "")
    return "missing and extra edges"


# ---------------------------------------------------------------------------------------------
# Ours: the library function behind `lineage-tools sql`


def run_ours(case: Case) -> ToolResult:
    from lineage_tools import standalone  # imported late: the baseline runs without the engine
    from lineage_tools.errors import LineageToolsError

    dialect = engine_dialect(case.dialect)
    try:
        schema = standalone.schema_from_mapping(case.schema, case.id) if case.schema else None
        if schema and case.origin == "sqlglot":
            schema = _as_unquoted_identifiers(schema, dialect)
        result = standalone.analyze_text(
            case.sql, dialect=dialect, schema=schema, views=case.sources, path=case.id
        )
    except LineageToolsError as exc:
        return ToolResult(error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
    except Exception as exc:  # noqa: BLE001 - an engine crash is a measured outcome too
        return ToolResult(error=f"crash {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
    statements = []
    for st in result.statements:
        lin = st.lineage
        edges = tuple(
            (e.target, e.source.relation or None, e.source.column, e.subtype.value)
            for e in lin.edges
            if e.target is not None
        )
        notes = tuple(
            [r.code.value for r in lin.reasons] + ([lin.status.value] if lin.status.value != "FULL" else [])
        )
        statements.append(ToolStatement(lin.target, tuple(lin.columns), edges, notes))
    return ToolResult(statements=tuple(statements))


def _as_unquoted_identifiers(schema: Mapping, dialect: str) -> dict:
    """sqlglot's tests name schema columns as unquoted identifiers (its MappingSchema normalizes
    them: `jan` is `JAN` in Snowflake); our catalog takes names as stored. Normalize them."""
    norm = Dialect.get_or_raise(dialect)

    def ident(name: str) -> str:
        return norm.normalize_identifier(exp.to_identifier(name, quoted=False)).name

    return {table: tuple((ident(c), t) for c, t in cols) for table, cols in schema.items()}


def engine_dialect(dialect: str) -> str:
    """Case dialect -> a dialect name `lineage-tools sql --dialect` accepts."""
    return "duckdb" if dialect in GENERIC_DIALECTS else dialect


# ---------------------------------------------------------------------------------------------
# Output


TOOLS: dict[str, Callable[[Case], ToolResult]] = {
    "lineage-tools": run_ours,
    "sqlglot.lineage": run_baseline,
}


def _fmt_pair(p: Pair) -> str:
    return f"{p[0] or '-'}.{p[1]} <- {p[2] or '?'}.{p[3]}"


def print_table(console: Console, results: dict[str, list[Outcome]], title: str) -> None:
    table = Table(title=title)
    table.add_column("origin")
    table.add_column("cases")
    for tool in results:
        table.add_column(f"{tool}\nexact", justify="right")
        table.add_column(f"{tool}\nprecision / recall", justify="right")
    for label, core_only in (("core", True), ("all", False)):
        per_tool = {tool: tally(outs, core_only) for tool, outs in results.items()}
        origins = sorted({o for t in per_tool.values() for o in t})
        for origin in origins:
            first = next(iter(per_tool.values()))[origin]
            row = [origin, f"{label} {first.cases}"]
            for tool in results:
                t = per_tool[tool][origin]
                row += [f"{t.exact}/{t.cases}", f"{t.precision:.2f} / {t.recall:.2f}"]
            table.add_row(*row)
    console.print(table)


def print_failures(console: Console, tool: str, outcomes: Sequence[Outcome]) -> None:
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        if not o.exact:
            groups[cause_of(o)].append(o)
    console.print(f"\n[bold]{tool}: {sum(map(len, groups.values()))} failing cases[/bold]")
    for cause, outs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        core = sum(o.case.core for o in outs)
        console.print(f"\n[bold yellow]{cause}[/bold yellow] ({len(outs)}, core {core})")
        for o in outs:
            c = o.case
            flag = "" if c.core else " (not core)"
            console.print(f"  [cyan]{c.id}[/cyan]{flag} {c.dialect}  {' '.join(c.sql.split())[:160]}", soft_wrap=True,
                          markup=True, highlight=False)
            if o.error:
                console.print(f"    error: {o.error}", markup=False, highlight=False, soft_wrap=True)
            for p in o.missing:
                console.print(f"    missing  {_fmt_pair(p)}", markup=False, highlight=False, soft_wrap=True)
            for p in o.extra:
                console.print(f"    extra    {_fmt_pair(p)}", markup=False, highlight=False, soft_wrap=True)
            if o.notes:
                console.print(f"    notes    {', '.join(o.notes)}", markup=False, highlight=False, soft_wrap=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=DEFAULT_CASES, help="peer cases JSON file")
    parser.add_argument("--failures", action="store_true", help="list failing cases by cause")
    parser.add_argument("--tool", choices=[*TOOLS, "both"], default="both")
    parser.add_argument("--failures-of", choices=list(TOOLS), default="lineage-tools",
                        help="whose failures --failures lists")
    parser.add_argument("--origin", help="only cases of this origin (sqllineage, sqlglot)")
    parser.add_argument("--only-core", action="store_true", help="--failures: core cases only")
    parser.add_argument("--case", action="append", help="only this case id (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)

    if not args.cases.is_file():
        print(f"error: no cases file at {args.cases} (use --cases PATH)", file=sys.stderr)
        return 2
    cases = load_cases(args.cases)
    if args.origin:
        cases = [c for c in cases if c.origin == args.origin.lower()]
    if args.case:
        cases = [c for c in cases if c.id in set(args.case)]
    tools = list(TOOLS) if args.tool == "both" else [args.tool]
    console = Console(width=max(Console().width, 140))
    results: dict[str, list[Outcome]] = {}
    raw: dict[str, list[Outcome]] = {}
    for tool in tools:
        start = time.perf_counter()
        runs = [(c, TOOLS[tool](c)) for c in cases]
        console.print(f"{tool}: {len(cases)} cases in {time.perf_counter() - start:.1f} s",
                      style="dim")
        results[tool] = [score(c, res) for c, res in runs]
        raw[tool] = [score(c, res, mapped=False) for c, res in runs]
    print_table(console, results, "Peer-case accuracy: field-level edges, suite semantics mapped "
                "to ours (docs/lineage-semantics.md)")
    print_table(console, raw, "Same runs, no semantic mapping (names as each tool gives them)")
    if args.failures:
        who = args.failures_of if args.failures_of in results else tools[0]
        outs = [o for o in results[who] if o.case.core or not args.only_core]
        print_failures(console, who, outs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
