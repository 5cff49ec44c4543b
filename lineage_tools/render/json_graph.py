"""The whole project's lineage as one JSON document (`lineage-tools export --format json`).

Shape (format "lineage-tools.graph", version 1), stable and sorted so exports diff cleanly:

* ``project``: name, adapter_type, dialect, manifest path, registry node id.
* ``summary``: node counts by type, model counts by status, edge counts by type.
* ``nodes[]``: id (dbt unique_id), name, label (``source.table`` for sources), type (model,
  seed, source, snapshot, external), relation, file, materialized, language, package,
  depends_on, status (null for roots), reasons[{code, message, line, column}], flags{root,
  registry, ephemeral, incremental, incremental_only_edges, python}, meta, tags,
  columns[{name, type, line, direct_roots[{node, column}]}], row_influences[{node, effect}].
* ``edges[]``: source{node, column}, target{node, column (null: every column of the node)},
  type (DIRECT/INDIRECT), subtype, masking, incremental_only.

`line` is a 1-based line of ``file`` (best effort for models; null when unknown).
"""

from __future__ import annotations

import json
from collections import Counter
from operator import attrgetter
from typing import Any

from ..graph import DATASET, LineageGraph, paused_gc
from ..records import ColumnRef, EdgeType, GraphEdge, Node, Reason, Subtype

FORMAT = "lineage-tools.graph"
VERSION = 1


def _reason(r: Reason) -> dict[str, Any]:
    return {"code": r.code.value, "message": r.message, "line": r.line, "column": r.column}


# subtype -> (type, subtype) as text: enum properties are slow in a loop over every edge
_NAMES = {s: (s.type.value, s.value) for s in Subtype}


def _edge(e: GraphEdge) -> dict[str, Any]:
    type_, subtype = _NAMES[e.subtype]
    return {
        "source": {"node": e.source.relation, "column": e.source.column},
        "target": {"node": e.target.relation, "column": e.target.column if e.target.column != DATASET else None},
        "type": type_,
        "subtype": subtype,
        "masking": e.masking,
        "incremental_only": e.incremental_only,
    }


def _roots(roots: frozenset[ColumnRef], rendered: dict[int, tuple[frozenset, list]]) -> list:
    """`direct_roots` of a column, sorted; rendered once per set (columns often share one)."""
    hit = rendered.get(id(roots))
    if hit is None:
        hit = rendered[id(roots)] = (roots, [{"node": r.relation, "column": r.column}
                                             for r in sorted(roots, key=_ref_key)])
    return hit[1]


_ref_key = attrgetter("relation", "column")  # ColumnRef's own order, without its __lt__


def _node(graph: LineageGraph, n: Node, rendered: dict[int, tuple[frozenset, list]],
          incremental_only: set[str]) -> dict[str, Any]:
    uid = n.unique_id
    ml = graph.models.get(uid)
    types = {c.lower(): t for c, t in n.columns}
    lines = dict(ml.lineage.column_lines) if ml else {}
    columns = []
    for c in graph.columns(uid):
        columns.append({
            "name": c,
            "type": types.get(c.lower()),
            "line": lines.get(c),
            "direct_roots": _roots(graph.roots(ColumnRef(uid, c)), rendered),
        })
    return {
        "id": n.unique_id,
        "name": n.name,
        "label": graph.display_name(n.unique_id),
        "type": n.resource_type,
        "relation": n.relation,
        "file": n.original_file_path,
        "materialized": n.materialized,
        "language": n.language,
        "package": n.package_name,
        "depends_on": list(n.depends_on),
        "status": ml.status.value if ml else None,
        "reasons": [_reason(r) for r in ml.lineage.reasons] if ml else [],
        "flags": {
            "root": graph.is_root(n.unique_id),
            "registry": n.unique_id == graph.project.registry,
            "ephemeral": n.materialized == "ephemeral",
            "incremental": n.materialized == "incremental",
            "incremental_only_edges": ml is not None and uid in incremental_only,
            "python": n.language == "python",
        },
        "meta": dict(n.meta),
        "tags": list(n.tags),
        "columns": columns,
        "row_influences": [{"node": r.relation, "effect": r.effect.value} for r in (ml.lineage.row_influences if ml else ())],
    }


def _with_incremental_only_edges(graph: LineageGraph) -> set[str]:
    """The nodes with an incremental-only edge into one of their columns (or all of them)."""
    found: set[str] = set()
    for e in graph.edges:
        if e.incremental_only:
            uid, column = e.target.relation, e.target.column
            if column == DATASET or column in graph.columns(uid):
                found.add(uid)
    return found


def to_dict(graph: LineageGraph) -> dict[str, Any]:
    """The JSON-ready document for a project's lineage graph."""
    p = graph.project
    order = {n.unique_id: i for i, n in enumerate(p.nodes)}
    nodes = sorted(graph.nodes.values(), key=lambda n: (order.get(n.unique_id, len(order)), n.unique_id))
    edges = sorted(graph.edges, key=lambda e: (e.target.relation, e.target.column, e.source.relation,
                                               e.source.column, _NAMES[e.subtype][1]))
    statuses = Counter(m.status.value for m in p.models)
    rendered: dict[int, tuple[frozenset, list]] = {}
    types = Counter(_NAMES[e.subtype][0] for e in edges)
    incremental_only = _with_incremental_only_edges(graph)
    return {
        "format": FORMAT,
        "version": VERSION,
        "project": {
            "name": p.project_name,
            "adapter_type": p.adapter_type,
            "dialect": p.dialect,
            "manifest": p.manifest_path,
            "registry": p.registry,
        },
        "summary": {
            "nodes": dict(sorted(Counter(n.resource_type for n in nodes).items())),
            "status": {s: statuses.get(s, 0) for s in ("FULL", "PARTIAL", "FAILED")},
            "edges": {t.value: types.get(t.value, 0) for t in EdgeType},
        },
        "nodes": [_node(graph, n, rendered, incremental_only) for n in nodes],
        "edges": [_edge(e) for e in edges],
    }


def render(graph: LineageGraph) -> str:
    """The document as compact JSON text (one line).

    Compact on purpose: `json.dumps` with ``indent`` runs the pure-Python encoder, four times
    slower and holding every chunk of the text at once (about 700 MiB more at 5,000 models);
    pipe through ``python -m json.tool`` or ``jq .`` to read it indented.
    """
    with paused_gc():
        return json.dumps(to_dict(graph), ensure_ascii=False, separators=(",", ":")) + "\n"
