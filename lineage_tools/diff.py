"""What a change does to lineage: two `ProjectLineage` (base and head), compared edge by edge.

Nodes are matched by dbt unique_id, columns by name, edges by (target column, input column).
An edge whose input stays but whose subtype changes is *changed*, not removed and added.
The downstream reach of a change follows the head's edges from every column that changed
(a dataset-wide edge, such as a FILTER, reaches every column of its model).

>>> from lineage_tools.records import ColumnEdge, ColumnRef, Subtype
>>> before = {(None, ColumnRef("model.p.stg", "status")): frozenset({Subtype.FILTER})}
>>> after = {}
>>> [c.kind for c in _edge_changes("model.p.fct", before, after)]
['removed']
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ManifestError
from .graph import LineageGraph, lineage_failure
from .records import ColumnRef, Finding, ModelLineage, Node, ProjectLineage, Status, Subtype

log = logging.getLogger(__name__)

ADDED, REMOVED, CHANGED = "added", "removed", "changed"

EdgeKey = tuple[str | None, ColumnRef]  # (target column or None for dataset-wide, input column)


@dataclass(frozen=True, order=True)
class EdgeChange:
    """One input of one output column (or of the whole model) that appeared, went, or changed type."""

    model: str  # unique_id of the model whose SQL holds the edge
    column: str | None  # output column; None: dataset-wide (filter, join, group by, ...)
    source: ColumnRef
    kind: str  # added | removed | changed
    before: tuple[Subtype, ...] = ()
    after: tuple[Subtype, ...] = ()


@dataclass(frozen=True)
class ColumnChange:
    """An output column whose inputs changed: only the inputs that appeared, went or changed type."""

    model: str
    column: str | None
    kind: str  # added | removed | changed
    edges: tuple[EdgeChange, ...] = ()


@dataclass(frozen=True)
class ModelChange:
    """A node that appeared, went, or whose lineage changed."""

    model: str
    name: str
    kind: str  # added | removed | changed
    resource_type: str = "model"
    status_before: Status | None = None
    status_after: Status | None = None
    columns_added: tuple[str, ...] = ()
    columns_removed: tuple[str, ...] = ()
    columns: tuple[ColumnChange, ...] = ()
    # `lineage FAILED (reason, line): ...` when the head's lineage failed: its columns and
    # edges are unknown, not removed, so none is reported removed
    failure: str | None = None


@dataclass(frozen=True)
class LineageDiff:
    """The whole comparison. `names` maps every unique_id mentioned to a display name."""

    base_project: str
    head_project: str
    models: tuple[ModelChange, ...]
    downstream: tuple[ColumnRef, ...] = ()  # head columns the change reaches (not changed themselves)
    findings_added: tuple[Finding, ...] = ()
    findings_removed: tuple[Finding, ...] = ()
    names: Mapping[str, str] = field(default_factory=dict)

    @property
    def edges(self) -> tuple[EdgeChange, ...]:
        return tuple(e for m in self.models for c in m.columns for e in c.edges)

    @property
    def is_empty(self) -> bool:
        return not (self.models or self.findings_added or self.findings_removed)

    def name(self, unique_id: str) -> str:
        return self.names.get(unique_id, unique_id)

    def ref(self, col: ColumnRef) -> str:
        """`model.column` with the model's display name."""
        return f"{self.name(col.relation)}.{col.column}" if col.column else self.name(col.relation)


def display_name(node: Node) -> str:
    """A short name people know: the model name, or `source_name.table` for a source."""
    if node.resource_type == "source":
        if node.source_name:
            return f"{node.source_name}.{node.name}"
        parts = node.unique_id.split(".")
        return ".".join(parts[-2:])
    return node.name


def _edge_map(ml: ModelLineage) -> dict[EdgeKey, frozenset[Subtype]]:
    """(target, input) -> subtypes; edges of an incremental run only are left out (full refresh)."""
    out: dict[EdgeKey, set[Subtype]] = defaultdict(set)
    for e in ml.lineage.edges:
        if e.incremental_only:
            continue
        out[(e.target, e.source)].add(e.subtype)
    return {k: frozenset(v) for k, v in out.items()}


def _edge_changes(
    model: str, before: Mapping[EdgeKey, frozenset[Subtype]], after: Mapping[EdgeKey, frozenset[Subtype]]
) -> list[EdgeChange]:
    changes = []
    for key in sorted(set(before) | set(after), key=lambda k: (k[0] or "", k[1])):
        b, a = before.get(key, frozenset()), after.get(key, frozenset())
        if b == a:
            continue
        kind = ADDED if not b else REMOVED if not a else CHANGED
        changes.append(EdgeChange(model, key[0], key[1], kind, tuple(sorted(b)), tuple(sorted(a))))
    return changes


def _model_change(base: ModelLineage | None, head: ModelLineage | None, names: Mapping[str, str]) -> ModelChange | None:
    ref = head or base
    assert ref is not None
    uid = ref.node.unique_id
    failure = lineage_failure(head)
    if failure and base is not None:
        if base.status == Status.FAILED and lineage_failure(base) == failure:
            return None
        return ModelChange(uid, names.get(uid, ref.node.name), CHANGED, ref.node.resource_type,
                           base.status, head.status, failure=failure)
    b_cols = tuple(base.lineage.columns) if base else ()
    h_cols = tuple(head.lineage.columns) if head else ()
    b_edges = _edge_map(base) if base else {}
    h_edges = _edge_map(head) if head else {}
    by_column: dict[str | None, list[EdgeChange]] = defaultdict(list)
    for ch in _edge_changes(uid, b_edges, h_edges):
        by_column[ch.column].append(ch)
    columns = []
    for col in sorted(by_column, key=lambda c: (c is not None, c or "")):
        if col is not None and col not in b_cols:
            kind = ADDED
        elif col is not None and col not in h_cols:
            kind = REMOVED
        else:
            kind = CHANGED
        columns.append(ColumnChange(uid, col, kind, tuple(by_column[col])))
    added = tuple(c for c in h_cols if c not in b_cols)
    removed = tuple(c for c in b_cols if c not in h_cols)
    # columns with no input at all (literals) still count as added / removed
    s_before = base.status if base else None
    s_after = head.status if head else None
    kind = ADDED if base is None else REMOVED if head is None else CHANGED
    if kind == CHANGED and not (columns or added or removed or s_before != s_after):
        return None
    return ModelChange(
        uid, names.get(uid, ref.node.name), kind, ref.node.resource_type, s_before, s_after, added, removed, tuple(columns)
    )


def _finding_key(f: Finding) -> tuple[str, str | None, str, str | None]:
    return (f.model, f.column, f.rule, f.root)


def _finding_delta(base: Iterable[Finding], head: Iterable[Finding]) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
    b = {_finding_key(f): f for f in base}
    h = {_finding_key(f): f for f in head}
    added = tuple(h[k] for k in sorted(set(h) - set(b), key=repr))
    removed = tuple(b[k] for k in sorted(set(b) - set(h), key=repr))
    return added, removed


def reach(project: ProjectLineage, start: Iterable[ColumnRef]) -> tuple[ColumnRef, ...]:
    """Every column downstream of `start` in `project` (excluding `start` itself), walked as
    `graph.LineageGraph.downstream` walks: a dataset-wide edge reaches every column of its model."""
    graph = LineageGraph(project)
    start = set(start)
    seen: set[ColumnRef] = set()
    frontier = list(start)
    while frontier:
        col = frontier.pop()
        for e in graph.downstream_edges(col, incremental=False):
            if e.target not in seen and e.target not in start:
                seen.add(e.target)
                frontier.append(e.target)
    return tuple(sorted(seen))


def _changed_columns(head: ProjectLineage, models: Sequence[ModelChange]) -> set[ColumnRef]:
    cols_of = {ml.node.unique_id: ml.lineage.columns for ml in head.models}
    start: set[ColumnRef] = set()
    for m in models:
        if m.kind == REMOVED:
            continue
        if m.kind == ADDED:
            start.update(ColumnRef(m.model, c) for c in cols_of.get(m.model, ()))
            continue
        start.update(ColumnRef(m.model, c) for c in m.columns_added)
        for c in m.columns:
            if c.column is None:  # a filter / join changed: every row, so every column
                start.update(ColumnRef(m.model, x) for x in cols_of.get(m.model, ()))
            elif c.kind != REMOVED:
                start.add(ColumnRef(m.model, c.column))
    return start


def diff_lineage(
    base: ProjectLineage,
    head: ProjectLineage,
    base_findings: Iterable[Finding] = (),
    head_findings: Iterable[Finding] = (),
) -> LineageDiff:
    """Compare two projects' lineage; findings are compared by (model, column, rule, root)."""
    names = {n.unique_id: display_name(n) for n in (*base.nodes, *head.nodes)}
    b_models = {ml.node.unique_id: ml for ml in base.models}
    h_models = {ml.node.unique_id: ml for ml in head.models}
    h_nodes = {n.unique_id for n in head.nodes}
    b_nodes = {n.unique_id for n in base.nodes}
    changes: list[ModelChange] = []
    order = [ml.node.unique_id for ml in head.models] + [u for u in b_models if u not in h_models]
    for uid in order:
        ch = _model_change(b_models.get(uid), h_models.get(uid), names)
        if ch is not None:
            changes.append(ch)
    # seeds and sources appear, go, or change columns without a ModelLineage of their own
    b_by_id = {n.unique_id: n for n in base.nodes}
    h_by_id = {n.unique_id: n for n in head.nodes}
    for uid in sorted((h_nodes | b_nodes) - set(b_models) - set(h_models)):
        b_cols = tuple(c for c, _ in b_by_id[uid].columns) if uid in b_by_id else ()
        h_cols = tuple(c for c, _ in h_by_id[uid].columns) if uid in h_by_id else ()
        added = tuple(c for c in h_cols if c not in b_cols)
        removed = tuple(c for c in b_cols if c not in h_cols)
        kind = ADDED if uid not in b_by_id else REMOVED if uid not in h_by_id else CHANGED
        if kind == CHANGED and not (added or removed):
            continue
        n = h_by_id.get(uid) or b_by_id[uid]
        changes.append(ModelChange(uid, names[uid], kind, n.resource_type, columns_added=added, columns_removed=removed))
    start = _changed_columns(head, changes)
    downstream = reach(head, start)
    f_added, f_removed = _finding_delta(base_findings, head_findings)
    log.debug("diff: %d model changes, %d downstream columns", len(changes), len(downstream))
    return LineageDiff(
        base.project_name, head.project_name, tuple(changes), downstream, f_added, f_removed, names
    )


def has_changes(d: LineageDiff) -> bool:
    """Anything at all changed (lineage or findings): `--fail-on any-change`."""
    return not d.is_empty


# ---------------------------------------------------------------------------------------------
# The base version: a manifest from another checkout (or a CI artifact)


def manifest_file(path: Path) -> Path:
    """`path` is a manifest or a dbt target folder holding one; else `ManifestError`."""
    path = Path(path).expanduser()
    if path.is_dir():
        found = path / "manifest.json"
        if not found.is_file():
            raise ManifestError(f"{path}: no manifest.json in this folder (give the base's target/ folder or its manifest)")
        return found
    if not path.exists():
        raise ManifestError(f"{path}: no such file or folder (give the base's target/ folder or its manifest)")
    return path


def load_base(
    path: Path, fallback_project_dir: Path, *, progress: Callable[[Node], None] | None = None
) -> ProjectLineage:
    """Lineage of the base version from its manifest alone (no dbt run, no compile): the project
    layer's `load_base` (seeds' columns from the base checkout when the manifest sits in
    ``<checkout>/target/``, else from `fallback_project_dir`, the head)."""
    from .project import load_base as load

    return load(manifest_file(path), fallback_project_dir, progress=progress)
