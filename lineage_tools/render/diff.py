"""A `LineageDiff` as text, JSON or Markdown; every form tells the same sentences.

A changed column reads like "`fct.revenue` was IDENTITY of `stg.amount`, is now AGGREGATION
of `stg.amount` and `stg.tax`"; a dataset-wide change like "new FILTER on `stg.status`".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from ..diff import ADDED, CHANGED, REMOVED, ColumnChange, EdgeChange, LineageDiff, ModelChange
from ..records import ColumnRef, EdgeType, Finding, Subtype
from . import mdtext

Quote = Callable[[str], str]

MAX_DOWNSTREAM = 40


def _plain(s: str) -> str:
    return f"`{s}`"


def describe_inputs(d: LineageDiff, inputs: Sequence[tuple[ColumnRef, Subtype]], q: Quote) -> str:
    """'IDENTITY of `a`; CONDITIONAL on `b` and `c`' (DIRECT reads 'of', INDIRECT 'on')."""
    if not inputs:
        return "no input column (a constant)"
    groups: dict[Subtype, list[str]] = {}
    for src, st in inputs:
        groups.setdefault(st, []).append(q(d.ref(src)))
    parts = []
    for st in sorted(groups, key=lambda s: (s.type != EdgeType.DIRECT, list(Subtype).index(s))):
        word = "of" if st.type == EdgeType.DIRECT else "on"
        parts.append(f"{st.value} {word} {mdtext.join_words(groups[st])}")
    return "; ".join(parts)


def _edge_sentence(d: LineageDiff, e: EdgeChange, q: Quote) -> str:
    src = q(d.ref(e.source))
    after = "/".join(s.value for s in e.after)
    before = "/".join(s.value for s in e.before)
    if e.kind == ADDED:
        return f"new {after} on {src}"
    if e.kind == REMOVED:
        return f"{before} on {src} removed"
    return f"{before} on {src} is now {after}"


def column_sentence(d: LineageDiff, c: ColumnChange, q: Quote) -> str:
    """One line per changed output column (or per model, for dataset-wide edges)."""
    model = d.name(c.model)
    if c.column is None:
        return f"{q(model)} (every row): " + "; ".join(_edge_sentence(d, e, q) for e in c.edges)
    col = q(f"{model}.{c.column}")
    if c.kind == ADDED:
        return f"{col} is new: {describe_inputs(d, c.after, q)}"
    if c.kind == REMOVED:
        return f"{col} was removed (was {describe_inputs(d, c.before, q)})"
    if not c.before:
        return f"{col} had no input column, is now {describe_inputs(d, c.after, q)}"
    if not c.after:
        return f"{col} was {describe_inputs(d, c.before, q)}, now has no input column"
    return f"{col} was {describe_inputs(d, c.before, q)}, is now {describe_inputs(d, c.after, q)}"


def model_lines(d: LineageDiff, m: ModelChange, q: Quote) -> list[str]:
    """Sentences about one node, headline first."""
    name = q(m.name)
    lines: list[str] = []
    if m.kind == ADDED:
        lines.append(f"new {m.resource_type} {name}" + (f" ({mdtext.plural(len(m.columns_added), 'column')})" if m.columns_added else ""))
        return lines
    if m.kind == REMOVED:
        lines.append(f"{m.resource_type} {name} was removed")
        return lines
    if m.failure:  # its columns are unknown, not removed
        lines.append(f"{name}: {m.failure}; its columns and inputs are unknown, not compared")
        return lines
    if m.status_before != m.status_after and m.status_before and m.status_after:
        lines.append(f"{name} lineage status {m.status_before.value} -> {m.status_after.value}")
    covered = {c.column for c in m.columns}
    extra_added = [c for c in m.columns_added if c not in covered]
    extra_removed = [c for c in m.columns_removed if c not in covered]
    if extra_added:
        tail = " (no input column)" if m.resource_type in ("model", "snapshot") else ""
        lines.append(f"{name}: new column {mdtext.join_words([q(c) for c in extra_added])}{tail}")
    if extra_removed:
        lines.append(f"{name}: column {mdtext.join_words([q(c) for c in extra_removed])} removed")
    lines += [column_sentence(d, c, q) for c in m.columns]
    return lines


def _finding_line(f: Finding, q: Quote, d: LineageDiff) -> str:
    where = d.name(f.model) + (f".{f.column}" if f.column else "")
    root = f" (root {q(d.name(f.root))})" if f.root else ""
    return f"{f.severity} {f.rule} in {q(where)}{root}: {f.message}"


def _counts(d: LineageDiff) -> dict[str, int]:
    edges = d.edges
    return {
        "models_changed": len(d.models),
        "columns_added": sum(len(m.columns_added) for m in d.models),
        "columns_removed": sum(len(m.columns_removed) for m in d.models),
        "edges_added": sum(e.kind == ADDED for e in edges),
        "edges_removed": sum(e.kind == REMOVED for e in edges),
        "edges_changed": sum(e.kind == CHANGED for e in edges),
        "downstream_columns": len(d.downstream),
        "findings_added": len(d.findings_added),
        "findings_removed": len(d.findings_removed),
    }


def summary_line(d: LineageDiff) -> str:
    c = _counts(d)
    if d.is_empty:
        return "No lineage change."
    return (
        f"{mdtext.plural(c['models_changed'], 'node')} changed: "
        f"{mdtext.plural(c['columns_added'], 'column')} added, {c['columns_removed']} removed; "
        f"edges {c['edges_added']} added, {c['edges_removed']} removed, {c['edges_changed']} changed type; "
        f"{mdtext.plural(c['downstream_columns'], 'downstream column')} reached; "
        f"findings {c['findings_added']} new, {c['findings_removed']} resolved."
    )


def _downstream_by_model(d: LineageDiff) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for col in d.downstream:
        out.setdefault(d.name(col.relation), []).append(col.column)
    return out


def render_text(d: LineageDiff) -> str:
    lines = [f"Lineage diff {d.base_project} (base) -> {d.head_project} (head)", summary_line(d)]
    for m in d.models:
        lines.append("")
        lines += [f"  {s}" for s in model_lines(d, m, _plain)]
    if d.downstream:
        lines += ["", "Downstream columns reached:"]
        for model, cols in _downstream_by_model(d).items():
            lines.append(f"  {model}: {', '.join(cols)}")
    for title, fs in (("New findings:", d.findings_added), ("Resolved findings:", d.findings_removed)):
        if fs:
            lines += ["", title] + [f"  {_finding_line(f, _plain, d)}" for f in fs]
    return "\n".join(lines) + "\n"


def render_markdown(d: LineageDiff) -> str:
    q = mdtext.code
    lines = ["### Lineage diff", "", summary_line(d), ""]
    for m in d.models:
        lines.append(f"**{q(m.name)}** ({m.resource_type}, {m.kind})")
        lines.append("")
        lines += [f"- {s}" for s in model_lines(d, m, q)]
        lines.append("")
    if d.downstream:
        by_model = _downstream_by_model(d)
        lines += [f"<details><summary>Downstream columns reached ({len(d.downstream)})</summary>", ""]
        for i, (model, cols) in enumerate(by_model.items()):
            if i >= MAX_DOWNSTREAM:
                lines.append(f"- and {len(by_model) - MAX_DOWNSTREAM} more models")
                break
            lines.append(f"- {q(model)}: {', '.join(q(c) for c in cols)}")
        lines += ["", "</details>", ""]
    for title, fs in (("New findings", d.findings_added), ("Resolved findings", d.findings_removed)):
        if fs:
            lines += [f"**{title}**", ""] + [f"- {_md_finding(f, d)}" for f in fs] + [""]
    return "\n".join(lines).rstrip() + "\n"


def _md_finding(f: Finding, d: LineageDiff) -> str:
    where = d.name(f.model) + (f".{f.column}" if f.column else "")
    root = f" (root {mdtext.code(d.name(f.root))})" if f.root else ""
    return f"{mdtext.text(f.severity)} {mdtext.code(f.rule)} in {mdtext.code(where)}{root}: {mdtext.text(f.message)}"


def _ref(col: ColumnRef, d: LineageDiff) -> dict[str, str]:
    return {"node": col.relation, "name": d.name(col.relation), "column": col.column}


def to_dict(d: LineageDiff) -> dict:
    """The diff as plain JSON data (stable keys; sentences included for convenience)."""

    def finding(f: Finding) -> dict:
        return {k: getattr(f, k) for k in ("model", "column", "rule", "message", "severity", "root", "path", "line")}

    return {
        "base_project": d.base_project,
        "head_project": d.head_project,
        "summary": _counts(d),
        "models": [
            {
                "node": m.model,
                "name": m.name,
                "resource_type": m.resource_type,
                "change": m.kind,
                "status_before": m.status_before.value if m.status_before else None,
                "status_after": m.status_after.value if m.status_after else None,
                "lineage_failed": m.failure,
                "columns_added": list(m.columns_added),
                "columns_removed": list(m.columns_removed),
                "columns": [
                    {
                        "column": c.column,
                        "change": c.kind,
                        "sentence": column_sentence(d, c, _plain),
                        "before": [dict(_ref(s, d), subtype=st.value, type=st.type.value) for s, st in c.before],
                        "after": [dict(_ref(s, d), subtype=st.value, type=st.type.value) for s, st in c.after],
                        "edges": [
                            {
                                "source": _ref(e.source, d),
                                "change": e.kind,
                                "before": [s.value for s in e.before],
                                "after": [s.value for s in e.after],
                            }
                            for e in c.edges
                        ],
                    }
                    for c in m.columns
                ],
            }
            for m in d.models
        ],
        "downstream": [_ref(c, d) for c in d.downstream],
        "findings_added": [finding(f) for f in d.findings_added],
        "findings_removed": [finding(f) for f in d.findings_removed],
    }


def render_json(d: LineageDiff) -> str:
    return json.dumps(to_dict(d), indent=2, sort_keys=False) + "\n"


RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown}


def render(d: LineageDiff, fmt: str) -> str:
    return RENDERERS[fmt](d)
