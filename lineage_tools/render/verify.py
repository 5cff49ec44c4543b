"""Renderers for `verify`: the same `VerifyResult` as text, JSON or Markdown.

Names from the project (models, columns, relations) are data: JSON encodes them, Markdown
escapes them (`mdtext`), text prints them as they are, one item a line.
"""

from __future__ import annotations

import json
from typing import Any

from ..records import ColumnEdge
from ..verify import MissingEdge, ModelCheck, VerifyResult
from . import mdtext as md

_SHOWN = 8  # unexercised edges listed per model in text and Markdown (all of them in JSON)


def _edge(e: ColumnEdge) -> dict[str, Any]:
    return {"target": e.target, "source": e.source.relation, "source_column": e.source.column,
            "type": e.type.value, "subtype": e.subtype.value}


def _missing(e: MissingEdge) -> dict[str, Any]:
    return {"target": e.target, "source": e.source.relation, "source_column": e.source.column,
            "perturbations": list(e.perturbations)}


def _target(t: str | None, missing: bool = False) -> str:
    if t is None:
        return "(row count: every column)" if missing else "(every column)"
    return t


def summary(result: VerifyResult) -> dict[str, int]:
    ms = result.models
    return {
        "models": len(ms),
        "verified": sum(m.outcome == "verified" for m in ms),
        "skipped": sum(m.outcome == "skipped" for m in ms),
        "errors": sum(m.outcome == "error" for m in ms),
        "confirmed": sum(len(m.confirmed) for m in ms),
        "unexercised": sum(len(m.unexercised) for m in ms),
        "false_negatives": sum(len(m.missing) for m in ms),
    }


def render_json(result: VerifyResult) -> str:
    doc = {
        "format": "lineage-tools.verify",
        "inputs": result.inputs,
        "rows": result.rows,
        "summary": summary(result),
        "models": [
            {
                "unique_id": m.unique_id, "name": m.name, "outcome": m.outcome, "message": m.message,
                "lineage_status": m.status, "output_rows": m.output_rows,
                "input_rows": dict(m.input_rows), "runs": m.runs, "failed_runs": m.failed_runs,
                "unstable_columns": list(m.unstable),
                "confirmed": [_edge(e) for e in m.confirmed],
                "unexercised": [_edge(e) for e in m.unexercised],
                "false_negatives": [_missing(e) for e in m.missing],
                "explained_by_row_effect": [_missing(e) for e in m.by_row_effect],
            }
            for m in result.models
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _src(relation: str, column: str) -> str:
    return f"{relation.split('.')[-1] if relation.count('.') >= 2 else relation}.{column}"


def _line(m: ModelCheck) -> str:
    if m.outcome != "verified":
        return f"{m.name}: {m.outcome.upper()} {m.message}"
    head = (f"{m.name}: {len(m.confirmed)} confirmed, {len(m.unexercised)} unexercised, "
            f"{len(m.missing)} false negative(s) [{m.output_rows} rows, {m.runs} runs")
    head += f", {m.failed_runs} failed runs]" if m.failed_runs else "]"
    if m.message:
        head += f" ({m.message})"
    return head


def render_text(result: VerifyResult) -> str:
    lines = [f"inputs: {result.inputs}, at most {result.rows} rows per relation"]
    for m in result.models:
        lines.append(_line(m))
        for e in m.missing:
            lines.append(f"  FALSE NEGATIVE {_target(e.target, True)} <- {_src(e.source.relation, e.source.column)} "
                         f"(changed under {', '.join(e.perturbations)}; static lineage has no edge)")
        for e in m.unexercised[:_SHOWN]:
            lines.append(f"  unexercised {_target(e.target)} <- {_src(e.source.relation, e.source.column)} "
                         f"{e.type.value} {e.subtype.value}{_why(e)}")
        if len(m.unexercised) > _SHOWN:
            lines.append(f"  ... {len(m.unexercised) - _SHOWN} more unexercised (see --format json)")
        if m.by_row_effect:
            lines.append(f"  {len(m.by_row_effect)} dependenc(ies) without an edge explained by DISTINCT / set "
                         "operation row influences (values that decide which rows are merged)")
        if m.unstable:
            lines.append(f"  unstable (differ between two identical runs, not compared): {', '.join(m.unstable)}")
    s = summary(result)
    lines.append(f"{md.plural(s['verified'], 'model')} verified, {s['skipped']} skipped, {s['errors']} error(s): "
                 f"{s['confirmed']} edges confirmed, {s['unexercised']} unexercised, "
                 f"{s['false_negatives']} false negative(s)")
    return "\n".join(lines) + "\n"


def _why(e: ColumnEdge) -> str:
    if e.type.value == "INDIRECT":
        return " (a filter, key or condition the sample did not exercise, or a pairing per-column comparison cannot see)"
    return " (possible false positive, or values the sample did not vary)"


def render_markdown(result: VerifyResult) -> str:
    s = summary(result)
    out = ["# Lineage verified by execution", "",
           f"Inputs: {md.text(result.inputs)}, at most {result.rows} rows per relation.", "",
           f"**{s['verified']}** verified, {s['skipped']} skipped, {s['errors']} error(s); "
           f"**{s['confirmed']}** edges confirmed, {s['unexercised']} unexercised, "
           f"**{s['false_negatives']}** false negative(s).", "",
           "| model | outcome | confirmed | unexercised | false negatives | rows | note |",
           "|---|---|---:|---:|---:|---:|---|"]
    for m in result.models:
        out.append(f"| {md.code(m.name, in_table=True)} | {m.outcome} | {len(m.confirmed)} | {len(m.unexercised)} "
                   f"| {len(m.missing)} | {m.output_rows} | {md.text(m.message).replace('|', '&#124;')} |")
    bad = [(m, e) for m in result.models for e in m.missing]
    if bad:
        out += ["", "## False negatives", ""]
        for m, e in bad:
            out.append(f"- {md.code(m.name)}: {md.code(_target(e.target, True))} changes with "
                       f"{md.code(_src(e.source.relation, e.source.column))}, and static lineage has no edge")
    return "\n".join(out) + "\n"


def render(result: VerifyResult, fmt: str) -> str:
    return {"json": render_json, "markdown": render_markdown}.get(fmt, render_text)(result)
