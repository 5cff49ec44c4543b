"""The report as Markdown for a pull-request comment or a CI job summary: counts, findings,
quarantined sources and their impact, and a Mermaid diagram of the model graph.

Every name is escaped (`mdtext`): a column called ``<script>`` shows as text. Big projects get
a diagram by layer instead of by model (GitHub stops drawing Mermaid past a few hundred edges).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from . import mdtext

MAX_DIAGRAM_NODES = 80
MAX_FINDINGS = 50
MAX_IMPACT_ROWS = 40

_STATUS_STYLE = {
    "FAILED": "fill:#fee2e2,stroke:#b91c1c",
    "PARTIAL": "fill:#fef3c7,stroke:#b45309",
    "quarantined": "fill:#fecaca,stroke:#7f1d1d,stroke-width:2px",
}


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
        modes = Counter(m.get("mode") for m in models)
        roots = ", ".join(mdtext.code(r.rsplit(".", 1)[-1]) for r in imp.get("roots", [])) or "no root"
        root_rows = ", ".join(f"{mdtext.code(r['node'].rsplit('.', 1)[-1])}: {r['tainted_rows']}"
                              for r in imp.get("root_rows", []))
        lines.append(
            f"Rows enter through {roots}" + (f" ({root_rows} rows)" if root_rows else "") + f"; reaches "
            f"{mdtext.plural(len(models), 'model')}: {modes.get('filter', 0)} filter, {modes.get('rebuild', 0)} rebuild."
        )
        if imp.get("note"):
            lines.append(f"_{mdtext.text(imp['note'])}_")
        if models:
            lines += ["", "| model | mode | tainted rows | why |", "| --- | --- | --- | --- |"]
            for m in models[:MAX_IMPACT_ROWS]:
                why = "; ".join(m.get("reasons", []))
                lines.append(f"| {mdtext.code(m['name'], True)} | {mdtext.text(m['mode'])} | {_rows(m)} | {mdtext.text(why)} |")
            if len(models) > MAX_IMPACT_ROWS:
                lines.append(f"\n{len(models) - MAX_IMPACT_ROWS} more models in lineage.json.")
        if imp.get("rebuild_command"):
            lines += ["", "```sh", imp["rebuild_command"].replace("```", "` ` `"), "```"]
        lines.append("")
    return lines


def mermaid(doc: dict[str, Any]) -> list[str]:
    """A Mermaid flowchart of the model graph (by model, or by layer for big projects)."""
    nodes = [n for n in doc.get("nodes", []) if n.get("type") != "external"]
    if len(nodes) > MAX_DIAGRAM_NODES:
        return _mermaid_layers(doc, nodes)
    ids = {n["id"]: f"n{i}" for i, n in enumerate(nodes)}
    bad_models = set()
    for s in doc.get("sources", []):
        if s.get("status") == "quarantined" and s.get("impact"):
            bad_models |= {m["model"] for m in s["impact"].get("models", [])}
    lines = ["```mermaid", "flowchart LR"]
    layers: dict[str, list[dict[str, Any]]] = {}
    for n in nodes:
        layers.setdefault(str(n.get("layer") or n.get("type")), []).append(n)
    for i, (layer, members) in enumerate(layers.items()):
        lines.append(f"  subgraph L{i}[{mdtext.mermaid_label(layer)}]")
        for n in members:
            text = _label(n) + (f" ({n['status']})" if n.get("status") in ("PARTIAL", "FAILED") else "")
            lines.append(f"    {ids[n['id']]}[{mdtext.mermaid_label(text)}]")
        lines.append("  end")
    for n in nodes:
        for p in n.get("depends_on", []):
            if p in ids:
                lines.append(f"  {ids[p]} --> {ids[n['id']]}")
    for cls, style in _STATUS_STYLE.items():
        lines.append(f"  classDef {cls} {style}")
    for n in nodes:
        if n.get("status") in ("PARTIAL", "FAILED"):
            lines.append(f"  class {ids[n['id']]} {n['status']}")
        elif n["id"] in bad_models:
            lines.append(f"  class {ids[n['id']]} quarantined")
    lines.append("```")
    if bad_models:
        lines.append("")
        lines.append("Dark red: models reached by a quarantined source.")
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
    lines = [f"{len(nodes)} nodes: the diagram shows layers (the page, lineage.html, shows every model).", "",
             "```mermaid", "flowchart LR"]
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
    lines += ["", "### Model graph", ""]
    lines += mermaid(doc)
    lines += ["", "Column-level lineage: open `lineage.html` (works offline); data: `lineage.json`."]
    return "\n".join(lines).rstrip() + "\n"
