"""Renderers for the edges of a plain SQL file (`lineage-tools sql`): json and text.

JSON (one object):

    {"status": "FULL", "dialect": "duckdb",
     "edges": [{"statement": 1, "target_table": "tab1", "target_column": "col1",
                "source_table": "tab2", "source_column": "col1",
                "type": "DIRECT", "subtype": "IDENTITY", "masking": false}, ...],
     "statements": [{"index": 1, "line": 1, "kind": "insert", "target_table": "tab1",
                     "columns": ["col1"], "status": "FULL", "reasons": []}],
     "reasons": [...]}

`target_table` is the written table of CREATE / INSERT (null for a bare SELECT);
dataset-wide INDIRECT edges (WHERE, JOIN ON, GROUP BY, ORDER BY inputs) have
`target_column: null`. Edges come in output-column order, then dataset-wide ones.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .. import records as r

if TYPE_CHECKING:  # pragma: no cover
    from ..standalone import SqlFileLineage, StatementResult

FORMATS = ("text", "json")


def _edge_key(st: StatementResult, edge: r.ColumnEdge) -> tuple:
    columns = st.lineage.columns
    pos = columns.index(edge.target) if edge.target in columns else len(columns)
    return (st.index, edge.target is None, pos, edge.target or "", edge.source.relation,
            edge.source.column, edge.subtype.value)


def sorted_edges(result: SqlFileLineage) -> list[tuple[StatementResult, r.ColumnEdge]]:
    """Edges of every statement, in statement order, then output-column order."""
    return sorted(result.edges, key=lambda pair: _edge_key(*pair))


def _reason(x: r.Reason, st: StatementResult) -> dict:
    return {"statement": st.index, "code": x.code.value, "message": x.message, "line": x.line,
            "column": x.column}


def to_dict(result: SqlFileLineage) -> dict:
    """The JSON-ready form of a file's lineage (see the module docstring)."""
    edges = [
        {
            "statement": st.index,
            "target_table": st.lineage.target,
            "target_column": e.target,
            "source_table": e.source.relation,
            "source_column": e.source.column,
            "type": e.type.value,
            "subtype": e.subtype.value,
            "masking": e.masking,
        }
        for st, e in sorted_edges(result)
    ]
    statements = [
        {
            "index": st.index,
            "line": st.line,
            "kind": st.kind,
            "target_table": st.lineage.target,
            "columns": list(st.lineage.columns),
            "status": st.lineage.status.value,
            "reasons": [_reason(x, st) for x in st.lineage.reasons],
        }
        for st in result.statements
    ]
    return {
        "status": result.status.value,
        "dialect": result.dialect,
        "edges": edges,
        "statements": statements,
        "reasons": [x for s in statements for x in s["reasons"]],
        "skipped": [{"index": x.index, "line": x.line, "kind": x.kind, "reason": x.reason}
                    for x in result.skipped],
    }


def render_json(result: SqlFileLineage) -> str:
    return json.dumps(to_dict(result), indent=2) + "\n"


def render_text(result: SqlFileLineage) -> str:
    """One block per statement: `target.column <- source.column  TYPE/SUBTYPE`.

    Dataset-wide inputs print as `target.(all rows)`; reasons for PARTIAL / FAILED follow.
    """
    by_statement: dict[int, list[r.ColumnEdge]] = {}
    for st, e in sorted_edges(result):
        by_statement.setdefault(st.index, []).append(e)
    lines: list[str] = []
    for st in result.statements:
        lin = st.lineage
        target = lin.target or "(select)"
        header = f"-- statement {st.index} (line {st.line}): {st.kind.upper()}"
        if lin.target:
            header += f" {lin.target}"
        lines.append(f"{header}  [{lin.status.value}]")
        edges = by_statement.get(st.index, [])
        fed = {e.target for e in edges}
        keyed = []
        for e in edges:
            left = f"{target}.{e.target}" if e.target is not None else f"{target}.(all rows)"
            kind = f"{e.type.value} {e.subtype.value}" + (" masking" if e.masking else "")
            keyed.append((_edge_key(st, e)[1:3], (left, e.source.qualified, kind)))
        keyed += [((False, i), (f"{target}.{c}", "(no input column)", ""))
                  for i, c in enumerate(lin.columns) if c not in fed]
        rows = [row for _, row in sorted(keyed, key=lambda kr: kr[0])]
        if rows:
            w1 = max(len(a) for a, _, _ in rows)
            w2 = max(len(b) for _, b, _ in rows)
            lines += [f"{a.ljust(w1)}  <-  {b.ljust(w2)}  {c}".rstrip() for a, b, c in rows]
        else:
            lines.append("(no output columns known)")
        for x in lin.reasons:
            where = f" (line {x.line})" if x.line else ""
            lines.append(f"! {x.code.value}: {x.message}{where}")
        lines.append("")
    for x in result.skipped:
        lines.append(f"-- statement {x.index} (line {x.line}): {x.kind.upper()} skipped ({x.reason})")
    return "\n".join(lines).rstrip("\n") + "\n"


RENDERERS = {"json": render_json, "text": render_text}


def render(result: SqlFileLineage, fmt: str) -> str:
    return RENDERERS[fmt](result)
