"""The report as Markdown for a pull-request comment or a CI job summary: counts, findings,
quarantined sources and what remains of them, and a small Mermaid overview of the models that
need a look (findings, lineage short of FULL, quarantined rows left), grouped by layer; not the
whole DAG, which GitHub draws too small to read at comment width (lineage.html has it).

Every name is escaped (`mdtext`): a column called ``<script>`` shows as text.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from . import mdtext

MAX_DIAGRAM_TOUCHED = 24
MAX_FINDINGS = 50
MAX_IMPACT_ROWS = 40

_STATUS_STYLE = {
    "failed": "fill:#fee2e2,stroke:#b91c1c",
    "partial": "fill:#fef3c7,stroke:#b45309",
    "finding": "fill:#fee2e2,stroke:#b91c1c,stroke-width:2px",
    "tainted": "fill:#fecaca,stroke:#7f1d1d,stroke-width:2px",
}
_CLASS = {"FAILED": "failed", "PARTIAL": "partial", "finding": "finding", "tainted": "tainted"}


def _label(n: dict[str, Any]) -> str:
    return str(n.get("label") or n.get("name") or n.get("id"))


def _counts(doc: dict[str, Any]) -> list[str]:
    nodes = doc.get("nodes", [])
    models = [n for n in nodes if n.get("status")]
    status = Counter(n["status"] for n in models)
    types = Counter(n.get("type") for n in nodes)
    findings = doc.get("findings", [])
    sev = Counter(f.get("severity") for f in findings)
    sources = doc.get("sources", [])
    quarantined = sum(1 for s in sources if s.get("status") == "quarantined")
    edges = doc.get("edges", [])
    etypes = Counter(e.get("type") for e in edges)
    return [
        "| | |",
        "| --- | --- |",
        f"| models | {len(models)} ({status.get('FULL', 0)} FULL, {status.get('PARTIAL', 0)} PARTIAL, "
        f"{status.get('FAILED', 0)} FAILED) |",
        f"| seeds / sources | {types.get('seed', 0)} / {types.get('source', 0)} |",
        f"| column edges | {len(edges)} ({etypes.get('DIRECT', 0)} DIRECT, {etypes.get('INDIRECT', 0)} INDIRECT) |",
        f"| findings | {len(findings)} ({mdtext.plural(sev.get('error', 0), 'error')}, "
        f"{mdtext.plural(sev.get('warning', 0), 'warning')}) |",
        f"| registered sources | {len(sources)} ({quarantined} quarantined) |",
    ]


def _status_lines(doc: dict[str, Any]) -> list[str]:
    bad = [n for n in doc.get("nodes", []) if n.get("status") in ("PARTIAL", "FAILED")]
    if not bad:
        return []
    lines = ["", "#### Models whose lineage is not FULL", ""]
    for n in bad:
        why = "; ".join(f"{r.get('code')}: {r.get('message')}" + (f" (line {r['line']})" if r.get("line") else "")
                        for r in n.get("reasons", [])[:3])
        lines.append(f"- {mdtext.code(_label(n))} **{n['status']}**" + (f": {mdtext.text(why)}" if why else ""))
    return lines


def _findings(doc: dict[str, Any]) -> list[str]:
    findings = doc.get("findings", [])
    lines = ["", f"### Findings ({len(findings)})", ""]
    if not findings:
        return lines + ["The provenance contract holds on every model checked."]
    lines += ["| severity | rule | where | finding |", "| --- | --- | --- | --- |"]
    for f in findings[:MAX_FINDINGS]:
        where = str(f.get("model")) + (f".{f['column']}" if f.get("column") else "")
        loc = f" ({f['path']}:{f['line']})" if f.get("path") and f.get("line") else ""
        lines.append(
            f"| {mdtext.text(str(f.get('severity')))} | {mdtext.code(str(f.get('rule')), True)} | "
            f"{mdtext.code(where, True)}{mdtext.text(loc)} | {mdtext.text(str(f.get('message')))} |"
        )
    if len(findings) > MAX_FINDINGS:
        lines.append(f"\n{len(findings) - MAX_FINDINGS} more in lineage.json.")
    return lines


def _rows(m: dict[str, Any]) -> str:
    if m.get("tainted_rows") is None:
        return "not counted"
    total = m.get("total_rows")
    return f"{m['tainted_rows']}" + (f" of {total}" if total is not None else "")


def rows_left(s: dict[str, Any]) -> int | None:
    """Rows of a source still in the models it reaches: a number when counted, else None."""
    imp = s.get("impact") or {}
    if not imp.get("rows_counted"):
        return None
    counted = [m["tainted_rows"] for m in imp.get("models", []) if m.get("tainted_rows") is not None]
    return sum(counted) if counted or not imp.get("models") else None


def shared_reasons(models: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Reasons that several models give word for word: said once, not on every row."""
    by_reason: dict[str, list[str]] = {}
    for m in models:
        why = "; ".join(m.get("reasons", []))
        if why:
            by_reason.setdefault(why, []).append(m["name"])
    return {why: names for why, names in by_reason.items() if len(names) > 1}


def impact_table(models: list[dict[str, Any]]) -> list[str]:
    """model | mode | tainted rows | why: a reason shared by several models is a line above the table."""
    shared = shared_reasons(models)
    lines = []
    for why, names in shared.items():
        mode = next(m["mode"] for m in models if "; ".join(m.get("reasons", [])) == why)
        lines.append(f"- **{mdtext.text(mode)}** ({mdtext.plural(len(names), 'model')}): {mdtext.text(why)}")
    if lines:
        lines.append("")
    lines += ["| model | mode | tainted rows | why |", "| --- | --- | --- | --- |"]
    for m in models[:MAX_IMPACT_ROWS]:
        why = "; ".join(m.get("reasons", []))
        cell = f"as above ({mdtext.text(m['mode'])})" if why in shared else mdtext.text(why)
        lines.append(f"| {mdtext.code(m['name'], True)} | {mdtext.text(m['mode'])} | {_rows(m)} | {cell} |")
    if len(models) > MAX_IMPACT_ROWS:
        lines.append(f"\n{len(models) - MAX_IMPACT_ROWS} more models in lineage.json.")
    return lines


def _quarantined(doc: dict[str, Any]) -> list[str]:
    q = [s for s in doc.get("sources", []) if s.get("status") == "quarantined"]
    lines = ["", f"### Quarantined sources ({len(q)})", ""]
    if not doc.get("sources"):
        return lines + ["No source registry (no seed or source with `meta: {provenance: registry}`)."]
    if not q:
        return lines + ["None."]
    for s in q:
        imp = s.get("impact") or {}
        reason = s.get("status_reason") or ""
        lines.append(f"#### {mdtext.code(s['source_id'])}" + (f": {mdtext.text(reason)}" if reason else ""))
        lines.append("")
        if not imp:
            lines.append("Impact not computed.")
            continue
        models = imp.get("models", [])
        left = rows_left(s)
        raw = ", ".join(f"{mdtext.code(r['node'].rsplit('.', 1)[-1])} ({mdtext.plural(r['tainted_rows'], 'row')})"
                        for r in imp.get("root_rows", []) if r.get("tainted_rows"))
        if left == 0:
            lines.append(f"Quarantined, nothing left to do: 0 rows remain in the {mdtext.plural(len(models), 'model')} "
                         "it reaches" + (f"; its raw rows stay in {raw}" if raw else "") + ".")
            if imp.get("note"):
                lines.append(f"_{mdtext.text(imp['note'])}_")
            if models:
                lines += ["", "<details><summary>Models it would reach</summary>", ""]
                lines += impact_table(models)
                lines += ["", "</details>"]
            lines.append("")
            continue
        modes = Counter(m.get("mode") for m in models)
        roots = ", ".join(mdtext.code(r.rsplit(".", 1)[-1]) for r in imp.get("roots", [])) or "no root"
        state = ("rows left not counted" if left is None
                 else f"**{mdtext.plural(left, 'row')} remain** in the models it reaches: rebuild them")
        lines.append(
            f"Rows enter through {roots}" + (f" ({raw})" if raw else "") + f"; reaches "
            f"{mdtext.plural(len(models), 'model')}: {modes.get('filter', 0)} filter, {modes.get('rebuild', 0)} rebuild; "
            f"{state}."
        )
        if imp.get("note"):
            lines.append(f"_{mdtext.text(imp['note'])}_")
        if models:
            lines += [""] + impact_table(models)
        if imp.get("rebuild_command"):
            lines += ["", "```sh", imp["rebuild_command"].replace("```", "` ` `"), "```"]
        lines.append("")
    return lines


def _touched(doc: dict[str, Any]) -> dict[str, str]:
    """The nodes worth pointing at, with why: findings, lineage not FULL, quarantined rows left."""
    why: dict[str, str] = {}
    for s in doc.get("sources", []):
        if s.get("status") == "quarantined" and (rows_left(s) or 0) > 0:
            for m in (s.get("impact") or {}).get("models", []):
                if (m.get("tainted_rows") or 0) > 0:
                    why[m["model"]] = "tainted"
    for n in doc.get("nodes", []):
        if n.get("status") in ("PARTIAL", "FAILED"):
            why.setdefault(n["id"], n["status"])
    for f in doc.get("findings", []):
        if f.get("node"):
            why[f["node"]] = "finding"
    return why


def _ancestors(nodes: dict[str, dict[str, Any]], start: str, memo: dict[str, set[str]]) -> set[str]:
    if start in memo:
        return memo[start]
    out: set[str] = set()
    stack = list(nodes.get(start, {}).get("depends_on", []))
    while stack:
        p = stack.pop()
        if p in out or p not in nodes:
            continue
        out.add(p)
        stack.extend(nodes[p].get("depends_on", []))
    memo[start] = out
    return out


def mermaid(doc: dict[str, Any]) -> list[str]:
    """A Mermaid overview that reads at comment width: the models a finding, a lineage status or a
    quarantined source's remaining rows touch, grouped by layer (an arrow where one feeds the
    other, dotted when through models not shown); with nothing to point at, the layers alone."""
    nodes = {n["id"]: n for n in doc.get("nodes", []) if n.get("type") != "external"}
    touched = _touched(doc)
    if not touched:
        return ["Nothing to point at: no finding, no lineage short of FULL, no quarantined row left. The layers:", ""] \
            + _mermaid_layers(doc, list(nodes.values()))
    shown = [uid for uid in nodes if uid in touched][:MAX_DIAGRAM_TOUCHED]
    ids = {uid: f"n{i}" for i, uid in enumerate(shown)}
    lines = ["```mermaid", "flowchart LR"]
    layers: dict[str, list[str]] = {}
    for uid in shown:
        layers.setdefault(str(nodes[uid].get("layer") or nodes[uid].get("type")), []).append(uid)
    for i, (layer, members) in enumerate(layers.items()):
        lines.append(f"  subgraph L{i}[{mdtext.mermaid_label(layer)}]")
        for uid in members:
            n = nodes[uid]
            tags = [n["status"]] if n.get("status") in ("PARTIAL", "FAILED") else []
            if touched[uid] == "finding":
                tags.append(mdtext.plural(n.get("findings") or 1, "finding"))
            elif touched[uid] == "tainted":
                tags.append("quarantined rows left")
            tag = ", ".join(tags)
            lines.append(f"    {ids[uid]}[{mdtext.mermaid_label(f'{_label(n)} · {tag}')}]")
        lines.append("  end")
    memo: dict[str, set[str]] = {}
    for uid in shown:
        direct = set(nodes[uid].get("depends_on", []))
        ups = _ancestors(nodes, uid, memo)
        for other in shown:
            if other == uid or other not in ups:
                continue
            # only the nearest shown ancestors: no arrow that another shown node already implies
            if any(other in _ancestors(nodes, mid, memo) for mid in shown if mid not in (uid, other) and mid in ups):
                continue
            lines.append(f"  {ids[other]} {'-->' if other in direct else '-.->'} {ids[uid]}")
    for cls, style in _STATUS_STYLE.items():
        lines.append(f"  classDef {cls} {style}")
    for uid in shown:
        lines.append(f"  class {ids[uid]} {_CLASS[touched[uid]]}")
    lines.append("```")
    if len(touched) > len(shown):
        lines += ["", f"{len(touched) - len(shown)} more in lineage.html."]
    return lines


def _mermaid_layers(doc: dict[str, Any], nodes: list[dict[str, Any]]) -> list[str]:
    layer = {n["id"]: str(n.get("layer") or n.get("type")) for n in nodes}
    counts = Counter(layer.values())
    order = list(dict.fromkeys(layer[n["id"]] for n in nodes))
    ids = {name: f"L{i}" for i, name in enumerate(order)}
    links: Counter[tuple[str, str]] = Counter()
    for n in nodes:
        for p in n.get("depends_on", []):
            if p in layer and layer[p] != layer[n["id"]]:
                links[(layer[p], layer[n["id"]])] += 1
    lines = ["```mermaid", "flowchart LR"]
    for name in order:
        lines.append(f"  {ids[name]}[{mdtext.mermaid_label(f'{name} ({counts[name]})')}]")
    for (a, b), k in sorted(links.items(), key=lambda kv: (order.index(kv[0][0]), order.index(kv[0][1]))):
        lines.append(f"  {ids[a]} -->|{k}| {ids[b]}")
    lines.append("```")
    return lines


def render(doc: dict[str, Any]) -> str:
    """The Markdown summary of a report document (see `report.build_report`)."""
    name = (doc.get("project") or {}).get("name") or "project"
    lines = [f"## Lineage report: {mdtext.code(str(name))}", ""]
    lines += _counts(doc)
    lines += _status_lines(doc)
    lines += _findings(doc)
    lines += _quarantined(doc)
    lines += ["", "### What needs a look", ""]
    lines += mermaid(doc)
    lines += ["", "Column-level lineage: open `lineage.html` (works offline); data: `lineage.json`."]
    return "\n".join(lines).rstrip() + "\n"
