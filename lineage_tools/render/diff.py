"""A `LineageDiff` as text, JSON or Markdown; every form tells the same sentences.

A sentence names only what changed: the inputs that appeared or went, and the inputs whose
type changed, never the inputs that stayed. A changed column reads like "`fct.revenue`:
`stg.amount` was IDENTITY, is now AGGREGATION; new AGGREGATION of `stg.tax`"; a dataset-wide
change like "`fct` (every row): new FILTER on `stg.status`".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from ..diff import ADDED, CHANGED, REMOVED, ColumnChange, EdgeChange, LineageDiff, ModelChange
from ..records import ColumnRef, EdgeType, Finding, Subtype
from . import mdtext

Quote = Callable[[str], str]

MAX_DOWNSTREAM = 40
MAX_NAMES = 6  # inputs named in one group of a sentence; the rest counted


def _plain(s: str) -> str:
    return f"`{s}`"


def _names(items: Sequence[str]) -> str:
    """'`a`', '`a` and `b`', ..., '`a`, `b`, ... and 4 more'."""
    if len(items) > MAX_NAMES:
        return ", ".join(items[:MAX_NAMES]) + f" and {len(items) - MAX_NAMES} more"
    return mdtext.join_words(list(items))


def _subtypes(sts: Sequence[Subtype]) -> str:
    return "/".join(s.value for s in sts)


def _word(sts: Sequence[Subtype]) -> str:
    """DIRECT inputs are values a column is made *of*; INDIRECT ones decide *on* its rows."""
    return "of" if all(s.type == EdgeType.DIRECT for s in sts) else "on"


def _order(item: tuple[tuple[Subtype, ...], list[str]]) -> tuple[bool, list[int]]:
    """DIRECT groups first, then in the taxonomy's order."""
    sts = item[0]
    return (_word(sts) == "on", [list(Subtype).index(s) for s in sts])


def edge_sentences(d: LineageDiff, edges: Sequence[EdgeChange], q: Quote) -> list[str]:
    """Inputs added / removed grouped by their types, then each type change on its own:
    ['new AGGREGATION of `stg.tax`', 'IDENTITY of `stg.x` and `stg.y` removed',
    '`stg.amount` was IDENTITY, is now AGGREGATION']."""
    added: dict[tuple[Subtype, ...], list[str]] = {}
    removed: dict[tuple[Subtype, ...], list[str]] = {}
    changed: list[str] = []
    for e in edges:
        src = q(d.ref(e.source))
        if e.kind == ADDED:
            added.setdefault(e.after, []).append(src)
        elif e.kind == REMOVED:
            removed.setdefault(e.before, []).append(src)
        else:
            changed.append(f"{src} was {_subtypes(e.before)}, is now {_subtypes(e.after)}")
    out = [f"new {_subtypes(sts)} {_word(sts)} {_names(srcs)}" for sts, srcs in sorted(added.items(), key=_order)]
    out += [f"{_subtypes(sts)} {_word(sts)} {_names(srcs)} removed" for sts, srcs in sorted(removed.items(), key=_order)]
    return out + changed


def column_sentence(d: LineageDiff, c: ColumnChange, q: Quote) -> str:
    """One line per changed output column (or per model, for dataset-wide edges)."""
    model = d.name(c.model)
    if c.column is None:
        return f"{q(model)} (every row): " + "; ".join(edge_sentences(d, c.edges, q))
    col = q(f"{model}.{c.column}")
    if c.kind == REMOVED:
        return f"{col} was removed"
    parts = edge_sentences(d, c.edges, q)
    if c.kind == ADDED:  # every input is new: "is new: IDENTITY of `a`; FILTER on `b`"
        return f"{col} is new: " + "; ".join(p.removeprefix("new ") for p in parts)
    return f"{col}: " + "; ".join(parts)


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


MAX_DIAGRAM = 12  # models per group of the diff's Mermaid overview


def mermaid(d: LineageDiff) -> list[str]:
    """The models a change touches, at comment width: changed ones, new findings, and the models
    downstream that the change reaches, one group each (not the whole DAG)."""
    changed = list(dict.fromkeys(m.name for m in d.models))
    found = [n for n in dict.fromkeys(d.name(f.model) for f in d.findings_added)]
    reached = [n for n in dict.fromkeys(d.name(c.relation) for c in d.downstream) if n not in changed]
    groups = [(g, title, names) for g, title, names in (("C", "changed", changed), ("F", "new findings", found),
                                                        ("R", "reached downstream", reached)) if names]
    if not groups:
        return []
    lines = ["```mermaid", "flowchart LR"]
    for g, title, names in groups:
        lines.append(f"  subgraph {g}[{mdtext.mermaid_label(title)}]")
        for i, name in enumerate(names[:MAX_DIAGRAM]):
            lines.append(f"    {g.lower()}{i}[{mdtext.mermaid_label(name)}]")
        if len(names) > MAX_DIAGRAM:
            lines.append(f"    {g.lower()}more[{mdtext.mermaid_label(f'and {len(names) - MAX_DIAGRAM} more')}]")
        lines.append("  end")
    present = [g for g, _, _ in groups]
    if "C" in present and "R" in present:
        lines.append("  C --> R")
    lines.append("```")
    return lines


def render_markdown(d: LineageDiff) -> str:
    q = mdtext.code
    lines = ["### Lineage diff", "", summary_line(d), ""]
    overview = mermaid(d)
    if overview:
        lines += overview + [""]
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
