"""`lineage-tools trace`: a column's lineage tree, as text or JSON.

Text, one edge per line, read top-down from the traced column::

    user_activity.source_ids
    └── DIRECT AGGREGATION          int_user_events.source_id
        └── DIRECT IDENTITY         stg_events.source_id
            └── DIRECT IDENTITY     raw.events.source_id  (root)

``(every column)`` marks a dataset-wide edge (a WHERE / JOIN / GROUP BY column that influences
every row of the model); ``(see above)`` a column already expanded higher in the tree.
"""

from __future__ import annotations

import json
from typing import Any

from ..graph import LineageGraph, TraceNode, TraceStep


def _edge_label(step: TraceStep) -> str:
    parts = []
    for e in step.edges:
        label = f"{e.type.value} {e.subtype.value}"
        if e.masking:
            label += " masking"
        if e.incremental_only:
            label += " incremental-only"
        parts.append(label)
    return ", ".join(dict.fromkeys(parts))


def _node_label(graph: LineageGraph, node: TraceNode, downstream: bool) -> str:
    text = graph.label(node.column)
    failure = graph.failure(node.column.relation)
    if failure and not node.repeated:
        text += f"  ({failure})"
    if node.repeated:
        text += "  (see above)"
    elif node.is_root:
        text += "  (last consumer)" if downstream else "  (root)"
    return text


def render_text(graph: LineageGraph, tree: TraceNode, *, downstream: bool = False) -> str:
    """The tree as indented text; each line: edge types, then the column it reaches."""
    head = graph.label(tree.column)
    n = graph.nodes.get(tree.column.relation)
    where = f"  [{n.unique_id}]" if n else ""
    lines = [head + where]
    failure = graph.failure(tree.column.relation)
    if failure and not downstream:
        lines.append(f"    ({failure}: its inputs are unknown)")
    elif not tree.steps:
        lines.append("    (no downstream consumers)" if downstream else "    (no inputs: a root or a literal)")

    def walk(node: TraceNode, prefix: str) -> None:
        for i, step in enumerate(node.steps):
            last = i == len(node.steps) - 1
            branch = "└── " if last else "├── "
            wide = " (every column)" if step.dataset_wide else ""
            lines.append(f"{prefix}{branch}{_edge_label(step)}{wide}  {_node_label(graph, step.node, downstream)}")
            walk(step.node, prefix + ("    " if last else "│   "))

    walk(tree, "")
    return "\n".join(lines) + "\n"


def _tree_dict(graph: LineageGraph, node: TraceNode) -> dict[str, Any]:
    return {
        "node": node.column.relation,
        "label": graph.display_name(node.column.relation),
        "column": node.column.column or None,
        "is_end": node.is_root,
        "repeated": node.repeated,
        "lineage_failed": graph.failure(node.column.relation),
        "edges": [
            {
                "transformations": [
                    {"type": e.type.value, "subtype": e.subtype.value, "masking": e.masking,
                     "incremental_only": e.incremental_only}
                    for e in step.edges
                ],
                "dataset_wide": step.dataset_wide,
                "to": _tree_dict(graph, step.node),
            }
            for step in node.steps
        ],
    }


def _ends(node: TraceNode, out: dict[tuple[str, str], None]) -> None:
    if node.is_root and not node.steps:
        out[(node.column.relation, node.column.column)] = None
    for s in node.steps:
        _ends(s.node, out)


def to_dict(graph: LineageGraph, tree: TraceNode, *, downstream: bool = False) -> dict[str, Any]:
    """The tree as a JSON-ready dict, with the list of its end columns (roots or last consumers)."""
    ends: dict[tuple[str, str], None] = {}
    _ends(tree, ends)
    return {
        "column": {"node": tree.column.relation, "label": graph.display_name(tree.column.relation),
                   "column": tree.column.column},
        "direction": "downstream" if downstream else "upstream",
        "ends": [{"node": u, "label": graph.display_name(u), "column": c} for u, c in sorted(ends)],
        "tree": _tree_dict(graph, tree),
    }


def render_json(graph: LineageGraph, tree: TraceNode, *, downstream: bool = False) -> str:
    return json.dumps(to_dict(graph, tree, downstream=downstream), indent=2, ensure_ascii=False) + "\n"
