"""Column lineage across models: every model's edges stitched into one graph.

Graph nodes are `ColumnRef(unique_id, column)`; a model's dataset-wide INDIRECT inputs (WHERE,
JOIN ON, GROUP BY, ORDER BY columns: edge target None) hang off one extra node per model,
`ColumnRef(unique_id, "")`, and apply to every column of the model when a query walks the graph,
so N columns x M filters are never stored as N x M edges.

>>> from lineage_tools.records import *
>>> def node(uid, rtype, cols=()):
...     return Node(uid, uid.split(".")[-1], rtype, "db.main." + uid.split(".")[-1], "db", "main",
...                 uid.split(".")[-1], columns=tuple((c, None) for c in cols))
>>> seed = node("seed.p.raw", "seed", ["id", "v", "source_id"])
>>> m = node("model.p.m", "model")
>>> lin = StatementLineage(("id", "v2"), (
...     ColumnEdge("id", ColumnRef("seed.p.raw", "id"), Subtype.IDENTITY),
...     ColumnEdge("v2", ColumnRef("seed.p.raw", "v"), Subtype.TRANSFORMATION),
...     ColumnEdge(None, ColumnRef("seed.p.raw", "source_id"), Subtype.FILTER)))
>>> g = LineageGraph(ProjectLineage("p", "duckdb", "duckdb", (seed, m), (ModelLineage(m, lin),)))
>>> sorted(c.column for c in g.roots(g.column("m.v2")))
['v']
>>> sorted(c.column for c in g.roots(g.column("m.v2"), kinds={EdgeType.DIRECT, EdgeType.INDIRECT}))
['source_id', 'v']
>>> sorted(c.column for c in g.downstream(g.column("raw.source_id")))
['id', 'v2']
"""

from __future__ import annotations

import difflib
import gc
import logging
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import UnknownNodeError
from .records import (
    ColumnRef,
    EdgeType,
    GraphEdge,
    ModelLineage,
    Node,
    ProjectLineage,
    ReasonCode,
    Status,
    Subtype,
)

log = logging.getLogger(__name__)

DATASET = ""  # the column name of a model's dataset-wide node
ROOT_TYPES = ("seed", "source", "external")
Kinds = Collection[EdgeType | Subtype] | None
_NO_ROOTS: frozenset = frozenset()


def lineage_failure(ml: ModelLineage | None) -> str | None:
    """`lineage FAILED (parse_error, line 34): <message>` for a model whose lineage failed
    (its columns and inputs are unknown, not absent), else None."""
    if ml is None or ml.status is not Status.FAILED:
        return None
    first = next((r for r in ml.lineage.reasons if r.code is not ReasonCode.EXEMPT), None)
    if first is None:
        return "lineage FAILED"
    where = f", line {first.line}" if first.line else ""
    return f"lineage FAILED ({first.code.value}{where}): {first.message}"


def _matches(edge: GraphEdge, kinds: Kinds, incremental: bool) -> bool:
    if edge.incremental_only and not incremental:
        return False
    return kinds is None or edge.type in kinds or edge.subtype in kinds


@dataclass(frozen=True)
class TraceNode:
    """One column in a trace tree and the edges that lead on from it (to inputs or consumers)."""

    column: ColumnRef
    steps: tuple[TraceStep, ...] = ()
    repeated: bool = False  # already expanded higher up the tree: not expanded again
    is_root: bool = False


@dataclass(frozen=True)
class TraceStep:
    """The edges between a column and one neighbour (an input may both flow and decide)."""

    edges: tuple[GraphEdge, ...]
    node: TraceNode
    dataset_wide: bool = False  # the edge applies to every column of the model (target None)


class LineageGraph:
    """The project's column lineage as one graph, with upstream/downstream/roots queries."""

    def __init__(self, project: ProjectLineage):
        self.project = project
        self.nodes: dict[str, Node] = {n.unique_id: n for n in project.nodes}
        self.models: dict[str, ModelLineage] = {m.node.unique_id: m for m in project.models}
        # adjacency: target -> source -> edges and (`_out`, on first use) source -> target ->
        # edges, in insertion order as a multigraph would iterate them; plain dicts are cheaper
        # to build than networkx
        self._in: dict[ColumnRef, dict[ColumnRef, list[GraphEdge]]] = {}
        self._out_index: dict[ColumnRef, dict[ColumnRef, list[GraphEdge]]] | None = None
        self.edges: list[GraphEdge] = []
        self._columns: dict[str, tuple[str, ...]] = {}
        for n in project.nodes:
            self._columns[n.unique_id] = tuple(c for c, _ in n.columns)
        for ml in project.models:
            uid = ml.node.unique_id
            self._columns[uid] = ml.lineage.columns
            targets: dict[str, ColumnRef] = {}  # one ColumnRef per output column, not per edge
            for e in ml.lineage.edges:
                name = e.target if e.target is not None else DATASET
                target = targets.get(name)
                if target is None:
                    target = targets[name] = ColumnRef(uid, name)
                self._add_edge(GraphEdge(e.source, target, e.subtype, e.masking, e.incremental_only))
        # roots memo per (kinds, incremental): (column -> its root columns, subtypes followed)
        self._roots: dict[tuple[frozenset | None, bool],
                          tuple[dict[ColumnRef, frozenset[ColumnRef]], frozenset[Subtype]]] = {}
        self._dataset_refs: dict[str, ColumnRef] = {}
        self._names = self._name_index()

    def with_models(self, project: ProjectLineage, changed: Collection[str]) -> LineageGraph:
        """The graph of `project`, which differs from this graph's project only in the lineage
        of the models `changed` (unique_ids; its nodes may differ too). Built from this one:
        only the changed models' edges are replaced, the rest is shared; this graph is left as
        it was (a reader holding it sees no change). For long-lived front ends (the language
        server), where one edit changes a few models of many."""
        new = object.__new__(LineageGraph)
        new.project = project
        new.nodes = {n.unique_id: n for n in project.nodes}
        new.nodes.update((k, v) for k, v in self.nodes.items() if v.resource_type == "external")
        new.models = {m.node.unique_id: m for m in project.models}
        changed = set(changed)
        new._in = dict(self._in)
        for uid in changed:
            for c in (*self._columns.get(uid, ()), DATASET):
                new._in.pop(ColumnRef(uid, c), None)
        new._out_index = None
        new.edges = [e for e in self.edges if e.target.relation not in changed]
        new._columns = dict(self._columns)
        for n in project.nodes:
            if n.unique_id not in new.models:
                new._columns[n.unique_id] = tuple(c for c, _ in n.columns)
        with paused_gc():
            for uid in changed:
                ml = new.models.get(uid)
                if ml is None:
                    new._columns.pop(uid, None)
                    continue
                new._columns[uid] = ml.lineage.columns
                targets: dict[str, ColumnRef] = {}
                for e in ml.lineage.edges:
                    name = e.target if e.target is not None else DATASET
                    target = targets.get(name)
                    if target is None:
                        target = targets[name] = ColumnRef(uid, name)
                    new._add_edge(GraphEdge(e.source, target, e.subtype, e.masking, e.incremental_only))
        new._roots = {}
        new._dataset_refs = {}
        same_names = len(project.nodes) == len(self.project.nodes) and all(
            a is b or (a.unique_id, a.name, a.relation, a.resource_type, a.source_name)
            == (b.unique_id, b.name, b.relation, b.resource_type, b.source_name)
            for a, b in zip(project.nodes, self.project.nodes))
        new._names = self._names if same_names and new.nodes.keys() == self.nodes.keys() else new._name_index()
        return new

    def _add_edge(self, edge: GraphEdge) -> None:
        src = edge.source.relation
        if src not in self.nodes:  # a relation outside the project: an external root
            self.nodes[src] = Node(src, src, "external", src, None, None, src.split(".")[-1])
            self._columns.setdefault(src, ())
        if src not in self.models and edge.source.column not in self._columns[src]:
            self._columns[src] = self._columns[src] + (edge.source.column,)
        self.edges.append(edge)
        into = self._in.get(edge.target)
        if into is None:
            into = self._in[edge.target] = {}
        from_ = into.get(edge.source)
        if from_ is None:
            into[edge.source] = [edge]
        else:
            from_.append(edge)

    @property
    def _out(self) -> dict[ColumnRef, dict[ColumnRef, list[GraphEdge]]]:
        """source -> target -> edges, built on first use (an export never walks downstream)."""
        if self._out_index is None:
            index: dict[ColumnRef, dict[ColumnRef, list[GraphEdge]]] = {}
            for edge in self.edges:
                out = index.get(edge.source)
                if out is None:
                    out = index[edge.source] = {}
                to = out.get(edge.target)
                if to is None:
                    out[edge.target] = [edge]
                else:
                    to.append(edge)
            self._out_index = index
        return self._out_index

    # ---- names ---------------------------------------------------------------------------

    def display_name(self, uid: str) -> str:
        """`model_name`, `source_name.table` for sources, the relation for external tables."""
        n = self.nodes.get(uid)
        if n is None:
            return uid
        if n.resource_type == "source" and n.source_name:
            return f"{n.source_name}.{n.name}"
        return n.name

    def _name_index(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for uid, n in self.nodes.items():
            keys = {uid.lower(), self.display_name(uid).lower(), n.relation.lower()}
            if n.resource_type != "source":
                keys.add(n.name.lower())
            for k in keys:
                index.setdefault(k, []).append(uid)
        return index

    def node(self, spec: str) -> Node:
        """A node by model name, unique_id, `source_name.table` or relation (case-insensitive)."""
        hits = self._names.get(spec.lower(), [])
        if len(hits) == 1 or (hits and len(set(hits)) == 1):
            return self.nodes[hits[0]]
        if hits:  # same name in several packages / resource types: prefer models
            hits = sorted(set(hits), key=lambda u: (not u.startswith("model."), u))
            log.warning("lineage-tools: %r names %s; using %s", spec, ", ".join(hits), hits[0])
            return self.nodes[hits[0]]
        close = difflib.get_close_matches(spec.lower(), [self.display_name(u) for u in self.nodes], n=5)
        raise UnknownNodeError(f"no model, seed or source named {spec!r}", tuple(close))

    def columns(self, uid: str) -> tuple[str, ...]:
        """The output columns of a node (inferred for models, declared for seeds and sources)."""
        return self._columns.get(uid, ())

    def column(self, spec: str) -> ColumnRef:
        """`model.column` (model name, unique_id or `source_name.table`) -> ColumnRef.

        Unknown -> `UnknownNodeError` with the closest `model.column` names.
        """
        if "." not in spec:
            raise UnknownNodeError(f"{spec!r} is not MODEL.COLUMN", self._close_columns(spec))
        node_part, col = spec.rsplit(".", 1)
        try:
            n = self.node(node_part)
        except UnknownNodeError:
            raise UnknownNodeError(f"no column {spec!r}: no node {node_part!r}", self._close_columns(spec)) from None
        for c in self.columns(n.unique_id):
            if c.lower() == col.lower():
                return ColumnRef(n.unique_id, c)
        if self.failure(n.unique_id):  # its columns are unknown, not absent
            return ColumnRef(n.unique_id, col)
        raise UnknownNodeError(f"{self.display_name(n.unique_id)} has no column {col!r}", self._close_columns(spec))

    def _close_columns(self, spec: str) -> tuple[str, ...]:
        names = [f"{self.display_name(u)}.{c}" for u, cols in self._columns.items() for c in cols]
        return tuple(difflib.get_close_matches(spec.lower(), names, n=5, cutoff=0.5))

    def failure(self, uid: str) -> str | None:
        """`lineage FAILED (reason, line): ...` when the model's lineage failed (see
        `lineage_failure`), else None."""
        return lineage_failure(self.models.get(uid))

    def label(self, col: ColumnRef) -> str:
        """`model.column` for people (`model.*` for a model's dataset-wide node)."""
        return f"{self.display_name(col.relation)}.{col.column or '*'}"

    # ---- one hop -------------------------------------------------------------------------

    def is_root(self, uid: str) -> bool:
        n = self.nodes.get(uid)
        return n is None or n.resource_type in ROOT_TYPES

    def upstream_edges(self, col: ColumnRef, kinds: Kinds = None, *, incremental: bool = True) -> tuple[GraphEdge, ...]:
        """Edges into `col`: its own plus its model's dataset-wide ones (self-references dropped)."""
        out: list[GraphEdge] = []
        for target in (col, ColumnRef(col.relation, DATASET)) if col.column else (col,):
            for edges in self._in.get(target, {}).values():
                for e in edges:
                    if e.source.relation != col.relation and _matches(e, kinds, incremental):
                        out.append(e)
        return tuple(out)

    def downstream_edges(self, col: ColumnRef, kinds: Kinds = None, *, incremental: bool = True) -> tuple[GraphEdge, ...]:
        """Edges out of `col`; a dataset-wide edge comes back once per column of its model."""
        out: list[GraphEdge] = []
        for e in (e for edges in self._out.get(col, {}).values() for e in edges):
            if e.target.relation == col.relation or not _matches(e, kinds, incremental):
                continue
            if e.target.column == DATASET:
                out.extend(GraphEdge(e.source, ColumnRef(e.target.relation, c), e.subtype, e.masking,
                                     e.incremental_only) for c in self.columns(e.target.relation))
            else:
                out.append(e)
        return tuple(out)

    # ---- transitive ----------------------------------------------------------------------

    def _walk(self, col: ColumnRef, step, kinds: Kinds, incremental: bool, pick) -> set[ColumnRef]:
        seen: set[ColumnRef] = set()
        stack = [col]
        while stack:
            cur = stack.pop()
            for e in step(cur, kinds, incremental=incremental):
                nxt = pick(e)
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        seen.discard(col)
        return seen

    def upstream(self, col: ColumnRef, kinds: Kinds = None, *, incremental: bool = True) -> set[ColumnRef]:
        """Every column `col` depends on, transitively, down to root columns."""
        return self._walk(col, self.upstream_edges, kinds, incremental, lambda e: e.source)

    def downstream(self, col: ColumnRef, kinds: Kinds = None, *, incremental: bool = True) -> set[ColumnRef]:
        """Every column that depends on `col`, transitively, to the last consumers."""
        return self._walk(col, self.downstream_edges, kinds, incremental, lambda e: e.target)

    def roots(self, col: ColumnRef, kinds: Kinds = frozenset({EdgeType.DIRECT}), *,
              incremental: bool = True) -> frozenset[ColumnRef]:
        """Root columns (seeds, sources, external tables) reached from `col` through edges of
        `kinds` only (default: DIRECT). Memoised per (column, kinds): cheap for every column of
        every model. A root column is its own root."""
        key_kinds = frozenset(kinds) if kinds is not None else None
        found = self._roots.get((key_kinds, incremental))
        if found is None:
            subtypes = frozenset(s for s in Subtype if key_kinds is None or s.type in key_kinds
                                 or s in key_kinds)
            found = self._roots[(key_kinds, incremental)] = ({}, subtypes)
        memo, subtypes = found
        hit = memo.get(col)
        if hit is not None:
            return hit
        return self._roots_memo(col, memo, subtypes, incremental, set())

    def _roots_memo(self, col: ColumnRef, memo: dict[ColumnRef, frozenset[ColumnRef]],
                    subtypes: frozenset[Subtype], incremental: bool,
                    active: set[ColumnRef]) -> frozenset[ColumnRef]:
        """`roots` with the edge filter resolved to a set of subtypes (as `upstream_edges`
        filters edges, in the same order, so cycles resolve the same way)."""
        hit = memo.get(col)
        if hit is not None:
            return hit
        rel = col.relation
        if self.is_root(rel):
            result = frozenset((col,)) if col.column else _NO_ROOTS
        else:
            active.add(col)
            first: frozenset[ColumnRef] | None = None  # reused as is when it is the only one
            found: set[ColumnRef] | None = None
            targets = [col]
            if col.column:
                dataset = self._dataset_refs.get(rel)
                if dataset is None:
                    dataset = self._dataset_refs[rel] = ColumnRef(rel, DATASET)
                targets.append(dataset)
            for target in targets:
                for source, edges in self._in.get(target, {}).items():
                    if source.relation == rel:
                        continue
                    for e in edges:
                        if (incremental or not e.incremental_only) and e.subtype in subtypes \
                                and source not in active:
                            got = memo.get(source)
                            if got is None:
                                got = self._roots_memo(source, memo, subtypes, incremental, active)
                            if not got or got is first:
                                continue
                            if first is None:
                                first = got
                            elif found is None:
                                found = set(first)
                                found |= got
                            else:
                                found |= got
            active.discard(col)
            if found is not None:
                result = frozenset(found)
            else:
                result = first if first is not None else _NO_ROOTS
        memo[col] = result
        return result

    # ---- trees ---------------------------------------------------------------------------

    def trace(self, col: ColumnRef, *, downstream: bool = False, kinds: Kinds = None,
              max_depth: int | None = None) -> TraceNode:
        """The tree from `col` to its roots (or to its last consumers); each column expanded once."""
        expanded: set[ColumnRef] = set()
        return self._trace(col, downstream, kinds, max_depth, 0, expanded)

    def _trace(self, col: ColumnRef, down: bool, kinds: Kinds, max_depth: int | None, depth: int,
               expanded: set[ColumnRef]) -> TraceNode:
        root = self.is_root(col.relation) if not down else not self.downstream_edges(col, kinds)
        if col in expanded:
            return TraceNode(col, repeated=True, is_root=root)
        expanded.add(col)
        if max_depth is not None and depth >= max_depth:
            return TraceNode(col, is_root=root)
        groups: dict[tuple[ColumnRef, bool], list[GraphEdge]] = {}
        if down:
            for e in self.downstream_edges(col, kinds):
                wide = self._is_dataset_edge(e)
                groups.setdefault((e.target, wide), []).append(e)
        else:
            for e in self.upstream_edges(col, kinds):
                groups.setdefault((e.source, e.target.column == DATASET), []).append(e)
        steps = []
        for (other, wide), edges in sorted(groups.items(), key=lambda kv: (kv[0][1], self.label(kv[0][0]))):
            child = self._trace(other, down, kinds, max_depth, depth + 1, expanded)
            steps.append(TraceStep(tuple(sorted(edges, key=lambda e: (e.type.value, e.subtype.value))), child, wide))
        return TraceNode(col, tuple(steps), is_root=root)

    def _is_dataset_edge(self, e: GraphEdge) -> bool:
        out = self._out.get(e.source, {})
        return ColumnRef(e.target.relation, DATASET) in out and not any(
            d.subtype == e.subtype for d in out.get(e.target, ())
        )

    # ---- iteration -----------------------------------------------------------------------

    def model_edges(self, uid: str) -> Iterator[GraphEdge]:
        """The stored edges into a model (dataset-wide ones with column "")."""
        for c in (*self.columns(uid), DATASET):
            for edges in self._in.get(ColumnRef(uid, c), {}).values():
                yield from edges

    def all_columns(self) -> Iterable[ColumnRef]:
        for uid, cols in self._columns.items():
            for c in cols:
                yield ColumnRef(uid, c)


def node_ids_named(nodes: Iterable[Node], spec: str) -> tuple[str, ...]:
    """The unique_id of the node `spec` names, resolved as `LineageGraph.node` does; () if none.

    For loading only what a query needs before any lineage exists."""
    graph = LineageGraph(ProjectLineage("", "", "", tuple(nodes), ()))
    try:
        return (graph.node(spec).unique_id,)
    except UnknownNodeError:
        return ()


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a large structure without cycles is built
    (the graph, the export document): every collection in the middle would scan all that is
    alive again, for nothing to free. Left alone if the caller turned it off."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def build_graph(project: ProjectLineage) -> LineageGraph:
    """The cross-model graph of a project's lineage."""
    with paused_gc():
        return LineageGraph(project)
