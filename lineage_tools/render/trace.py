"""`lineage-tools trace`: a column's lineage tree, as text or JSON.

By default the tree follows the values (DIRECT edges) and opens with its ends (the roots, or
the last consumers); the inputs that only shape which rows there are (INDIRECT: joins, filters,
group by ...) are summed up in one line per model under it, e.g.::

    user_activity.source_ids  [model.mini.user_activity]
    roots: raw.events.source_id
    └── DIRECT AGGREGATION  int_user_events.source_id
        └── DIRECT IDENTITY  stg_events.source_id
            └── DIRECT IDENTITY  raw.events.source_id  (root)
    rows shaped by (INDIRECT, not followed; --all follows them):
      user_activity: GROUP_BY on int_user_events.user_id
      int_user_events: JOIN on stg_users.user_id; FILTER on stg_events.occurred_at

With ``--all`` the tree follows every edge, one per line; ``(every column)`` marks a
dataset-wide edge (a WHERE / JOIN / GROUP BY column that influences every row of the model);
``(see above)`` a column already expanded higher in the tree.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from ..graph import LineageGraph, TraceNode, TraceStep
from ..records import ColumnRef, EdgeType, GraphEdge

MAX_NAMES = 4  # input columns named per subtype in a summary line; the rest counted


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


def _columns(tree: TraceNode) -> list[ColumnRef]:
    """The columns of a tree, each once, top-down (repeated ones are expanded elsewhere)."""
    out: dict[ColumnRef, None] = {}

    def walk(node: TraceNode) -> None:
        if node.repeated or node.column in out:
            return
        out[node.column] = None
        for s in node.steps:
            walk(s.node)

    walk(tree)
    return list(out)


def indirect_summary(graph: LineageGraph, tree: TraceNode, *, downstream: bool = False,
                     within: Collection[str] | None = None) -> list[tuple[str, dict[str, list[ColumnRef]]]]:
    """The INDIRECT edges touching the tree's columns, per model where they land:
    [(model unique_id, {subtype label: [other columns]})], in the tree's order.

    Upstream: the inputs that shape the rows of each model on the tree; downstream: the models
    whose rows the tree's columns shape (`other` is then the tree's column). With `within` (the
    nodes a `--select` walks through), only the tree's columns in those nodes, or the first one."""
    kinds = {EdgeType.INDIRECT}
    per_model: dict[str, dict[str, dict[ColumnRef, None]]] = {}
    for col in _columns(tree):
        if within is not None and col != tree.column and col.relation not in within:
            continue
        edges: tuple[GraphEdge, ...] = (graph.downstream_edges(col, kinds) if downstream
                                        else graph.upstream_edges(col, kinds))
        for e in edges:
            label = e.subtype.value + (" incremental-only" if e.incremental_only else "")
            per_model.setdefault(e.target.relation, {}).setdefault(label, {})[e.source] = None
    return [(uid, {k: sorted(v, key=graph.label) for k, v in subs.items()}) for uid, subs in per_model.items()]


def _names(graph: LineageGraph, cols: list[ColumnRef]) -> str:
    names = [graph.label(c) for c in cols[:MAX_NAMES]]
    more = len(cols) - MAX_NAMES
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _ends(tree: TraceNode) -> list[ColumnRef]:
    found: dict[ColumnRef, None] = {}

    def walk(node: TraceNode) -> None:
        if node.is_root and not node.steps:
            found[node.column] = None
        for s in node.steps:
            walk(s.node)

    if tree.steps:
        walk(tree)
    return list(found)


def render_text(graph: LineageGraph, tree: TraceNode, *, downstream: bool = False,
                summary: bool = False, within: Collection[str] | None = None) -> str:
    """The tree as indented text; each line: edge types, then the column it reaches.

    With `summary` (the tree follows DIRECT edges only), the ends come first and the INDIRECT
    inputs follow, one line per model."""
    head = graph.label(tree.column)
    n = graph.nodes.get(tree.column.relation)
    where = f"  [{n.unique_id}]" if n else ""
    lines = [head + where]
    ends = _ends(tree)
    if summary and ends:
        word = "last consumers" if downstream else "roots"
        lines.append(f"{word}: " + ", ".join(graph.label(c) for c in ends))
    shaped = indirect_summary(graph, tree, downstream=downstream, within=within) if summary else []
    failure = graph.failure(tree.column.relation)
    if failure and not downstream:
        lines.append(f"    ({failure}: its inputs are unknown)")
    elif not tree.steps:
        if summary and shaped:
            lines.append("    (no DIRECT consumers)" if downstream else
                         "    (no DIRECT inputs: a root, a literal, or a value only decided by others)")
        else:
            lines.append("    (no downstream consumers)" if downstream else "    (no inputs: a root or a literal)")

    def walk(node: TraceNode, prefix: str) -> None:
        for i, step in enumerate(node.steps):
            last = i == len(node.steps) - 1
            branch = "└── " if last else "├── "
            wide = " (every column)" if step.dataset_wide else ""
            lines.append(f"{prefix}{branch}{_edge_label(step)}{wide}  {_node_label(graph, step.node, downstream)}")
            walk(step.node, prefix + ("    " if last else "│   "))

    walk(tree, "")
    if shaped:
        lines.append("rows it shapes (INDIRECT, not followed; --all follows them):" if downstream
                     else "rows shaped by (INDIRECT, not followed; --all follows them):")
        for uid, subs in shaped:
            parts = [f"{sub} {'from' if downstream else 'on'} {_names(graph, cols)}" for sub, cols in subs.items()]
            lines.append(f"  {graph.display_name(uid)}: " + "; ".join(parts))
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


def _ref(graph: LineageGraph, col: ColumnRef) -> dict[str, Any]:
    return {"node": col.relation, "label": graph.display_name(col.relation), "column": col.column}


def to_dict(graph: LineageGraph, tree: TraceNode, *, downstream: bool = False,
            summary: bool = False, within: Collection[str] | None = None) -> dict[str, Any]:
    """The tree as a JSON-ready dict, with the list of its end columns (roots or last consumers);
    with `summary`, ``indirect``: [{node, label, edges: [{subtype, columns: [{node, label, column}]}]}]."""
    ends = sorted({(c.relation, c.column) for c in _ends(tree) or ([tree.column] if tree.is_root else [])})
    out = {
        "column": _ref(graph, tree.column),
        "direction": "downstream" if downstream else "upstream",
        "ends": [{"node": u, "label": graph.display_name(u), "column": c} for u, c in ends],
        "tree": _tree_dict(graph, tree),
    }
    if summary:
        out["indirect"] = [
            {"node": uid, "label": graph.display_name(uid),
             "edges": [{"subtype": sub, "columns": [_ref(graph, c) for c in cols]} for sub, cols in subs.items()]}
            for uid, subs in indirect_summary(graph, tree, downstream=downstream, within=within)
        ]
    return out


def render_json(graph: LineageGraph, tree: TraceNode, *, downstream: bool = False, summary: bool = False,
                within: Collection[str] | None = None) -> str:
    return json.dumps(to_dict(graph, tree, downstream=downstream, summary=summary, within=within), indent=2,
                      ensure_ascii=False) + "\n"
