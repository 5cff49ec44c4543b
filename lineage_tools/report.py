"""The report's data, from one pass: lineage graph + `check` findings + impact of each source.

The document is the JSON graph of `render.json_graph` (format ``lineage-tools.graph``) with
what the page and the Markdown summary add to it:

* per node: ``layer`` (staging / intermediate / marts / seed / source ...), ``depth`` (longest
  path from a root), ``layout`` (``rank``, ``order``, ``y``: where the page draws it, from a
  layered layout computed here with grandalf, see `render.layout`), ``provenance_columns``,
  ``findings`` (count);
* ``layout``: the layout's engine, direction and size;
* ``findings[]``: the check's findings with ``node`` (the unique_id of ``model``);
* ``sources[]``: every registry source with its status, registry fields and ``impact``
  (models reached with mode filter/rebuild, affected columns, tainted rows when counted);
* ``report``: what was counted and notes.

`lineage.json`, `lineage.html` and `lineage.md` are all rendered from this one document.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import provenance as pv
from .errors import LineageToolsError, UserError
from .graph import LineageGraph
from .records import Finding, Node
from .render import json_graph, layout

log = logging.getLogger(__name__)

REPORT_FILES = ("lineage.html", "lineage.md", "lineage.json")
_LAYER_RE = re.compile(r"(?:^|/)(staging|intermediate|marts)(?:/|$)")

Advance = Callable[..., None]


def layer_of(node: Node) -> str:
    """staging / intermediate / marts from the model's folder; else its resource type."""
    if node.resource_type in ("model", "snapshot"):
        m = _LAYER_RE.search((node.original_file_path or "").replace("\\", "/"))
        return m.group(1) if m else node.resource_type
    return node.resource_type


def depths(graph: LineageGraph) -> dict[str, int]:
    """Longest path from a root for every node, by the dbt DAG (nodes come in DAG order)."""
    out: dict[str, int] = {}
    for n in graph.project.nodes:
        out[n.unique_id] = max((out.get(p, 0) + 1 for p in n.depends_on if p in out), default=0)
    for uid in graph.nodes:
        out.setdefault(uid, 0)
    return out


def finding_dict(f: Finding, node_ids: dict[str, str]) -> dict[str, Any]:
    return {
        "node": node_ids.get(f.model, f.model),
        "model": f.model,
        "column": f.column,
        "rule": f.rule,
        "severity": f.severity,
        "message": f.message,
        "root": f.root,
        "root_node": node_ids.get(f.root) if f.root else None,
        "path": f.path,
        "line": f.line,
    }


def impact_dict(imp: pv.Impact, node_ids: dict[str, str]) -> dict[str, Any]:
    return {
        "roots": [node_ids.get(r, r) for r in imp.roots],
        "rows_counted": imp.rows_counted,
        "root_rows": [{"node": node_ids.get(r, r), "tainted_rows": n} for r, n in imp.root_rows],
        "rebuild_command": imp.rebuild_command,
        "note": imp.note,
        "models": [
            {
                "model": m.unique_id,
                "name": m.model,
                "mode": m.mode,
                "reasons": [m.reason] if m.reason else [],
                "columns": list(m.columns),
                "provenance_columns": [c for c, _ in m.provenance_columns],
                "tainted_rows": m.tainted_rows,
                "total_rows": m.total_rows,
            }
            for m in imp.models
        ],
    }


@dataclass(frozen=True)
class ReportOptions:
    """How much to compute: row counts cost a warehouse query per counted source."""

    count_rows: str = "quarantined"  # none | quarantined | all


def build_report(
    graph: LineageGraph,
    env: pv.Env,
    options: ReportOptions = ReportOptions(),
    *,
    select: frozenset[str] | None = None,
    advance: Advance | None = None,
) -> dict[str, Any]:
    """The report document for a project's graph (see the module docstring)."""
    doc = json_graph.to_dict(graph)
    node_ids: dict[str, str] = {}
    for uid in graph.nodes:
        node_ids.setdefault(graph.display_name(uid), uid)
        node_ids.setdefault(graph.nodes[uid].name, uid)
    prov = pv.Provenance(graph)
    result = pv.check(graph, select)
    findings = [finding_dict(f, node_ids) for f in result.findings]
    per_node: dict[str, int] = {}
    for f in findings:
        per_node[f["node"]] = per_node.get(f["node"], 0) + 1
    dep = depths(graph)
    for n in doc["nodes"]:
        uid = n["id"]
        node = graph.nodes.get(uid)
        n["layer"] = layer_of(node) if node else n.get("type")
        n["depth"] = dep.get(uid, 0)
        if uid in graph.models:
            n["provenance_columns"] = list(prov.provenance_columns(uid))
        elif uid in prov.roots:
            n["provenance_columns"] = [prov.roots[uid]]
        else:
            n["provenance_columns"] = []
        n["findings"] = per_node.get(uid, 0)
    placed = layout.layout(doc["nodes"])
    for n in doc["nodes"]:
        n["layout"] = placed.nodes.get(n["id"])
    doc["layout"] = placed.to_dict()
    doc["findings"] = findings
    doc["sources"], notes = _sources(graph, env, options, node_ids, advance)
    doc["report"] = {
        "models_checked": result.models_checked,
        "count_rows": options.count_rows,
        "notes": notes,
    }
    return doc


def _sources(
    graph: LineageGraph, env: pv.Env, options: ReportOptions, node_ids: dict[str, str], advance: Advance | None
) -> tuple[list[dict[str, Any]], list[str]]:
    notes: list[str] = []
    try:
        registry = pv.read_project_registry(graph.project, env.project_dir)
    except UserError as err:
        notes.append(f"no source impact: {err}")
        return [], notes
    out = []
    for s in registry.sources:
        count = options.count_rows == "all" or (options.count_rows == "quarantined" and s.status == "quarantined")
        if advance:
            advance(description=f"Impact of {s.source_id}")
        try:
            imp = pv.impact(graph, env, [s.source_id], count=count)
            impact = impact_dict(imp, node_ids)
            if not count:  # not counted by the report's --rows choice, not by `impact --no-rows`
                impact["note"] = _without_no_rows(impact["note"])
        except (LineageToolsError, OSError) as err:
            log.warning("lineage-tools: impact of %s failed: %s", s.source_id, err)
            impact = None
            notes.append(f"impact of {s.source_id} not computed: {err}")
        out.append({
            "source_id": s.source_id,
            "status": s.status,
            "status_reason": s.status_reason,
            "status_changed_on": s.status_changed_on,
            "fields": dict(s.fields),
            "impact": impact,
        })
    return out, notes


def _without_no_rows(note: str | None) -> str | None:
    """`impact`'s note without "rows were not counted (--no-rows)", a flag `report` has not.

    >>> _without_no_rows("rows were not counted (--no-rows); assumed x may hold the sources")
    'assumed x may hold the sources'
    >>> _without_no_rows("rows were not counted (--no-rows)") is None
    True
    """
    if not note:
        return note
    parts = [p for p in note.split("; ") if not p.startswith("rows were not counted (--no-rows)")]
    return "; ".join(parts) or None


def registry_size(graph: LineageGraph, env: pv.Env) -> int:
    """How many sources the registry lists (0 without one): the length of the impact pass."""
    try:
        return len(pv.read_project_registry(graph.project, env.project_dir).sources)
    except UserError:
        return 0


def safe_output_dir(path: Path) -> Path:
    """The folder `-o` names, created when missing; a file there is an error."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: not a folder (-o takes the folder to write the report into)")
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def write_files(out_dir: Path, files: dict[str, str]) -> list[Path]:
    """Write each file atomically (temp + rename) inside `out_dir`, nowhere else."""
    from .output import write_text

    written = []
    for name, text in files.items():
        if Path(name).name != name or name in ("", ".", ".."):
            raise UserError(f"{name!r}: report files are written only inside {out_dir}")
        dest = out_dir / name
        write_text(text, dest)
        written.append(dest)
    return written


def render_all(doc: dict[str, Any]) -> dict[str, str]:
    """The three report files from one document."""
    import json

    from .render import html, markdown

    return {
        "lineage.html": html.render(doc),
        "lineage.md": markdown.render(doc),
        # compact, like `export`: the pure-Python indenting encoder is 4x slower and holds the
        # whole text in pieces (see benchmarks/README.md, "Peak memory"); `jq .` indents it
        "lineage.json": json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n",
    }


def quarantined(doc: dict[str, Any]) -> Sequence[dict[str, Any]]:
    return [s for s in doc.get("sources", []) if s.get("status") == "quarantined"]
