"""The provenance contract check, the impact of sources (filter or rebuild), and quarantine.

Everything here reads lineage (`graph.LineageGraph`); rows are counted and models rebuilt
through `warehouse` (dbt's own connection for the target).

Terms (see docs/provenance.md):

* a **root** is a seed or source with a `source_id` column; the registry (`meta: {provenance:
  registry}`) is not a root;
* a **provenance column** of a model is one whose DIRECT lineage reaches a root's `source_id`
  through steps that keep the ids as they are: the id carried unchanged, a collection of ids
  (list, distinct list, union of lists), or a source mask (the encode step, unions of masks,
  the decode step back to a list); `sql.provenance_view` tells those steps from the rest. A
  column that reads a source id through any other step (a string function, a concatenation,
  an aggregate keeping one value, a `coalesce` keeping one side) is not provenance: rule 5
  when it is named like provenance. Lineage decides, not names; names (`source_id`,
  `*_source_id`, `source_ids`, `*_source_ids`, `source_mask`, `*_source_mask`) only trigger
  rules 4 and 5 when such a column is not provenance.

>>> is_provenance_name("label_source_id"), is_provenance_name("source_ids"), is_provenance_name("sources")
(True, True, False)
>>> is_provenance_name("user_source_mask")
True
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import shlex
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .dbt.config import DbtConfig
from .dbt.manifest import last_build, seed_holds
from .errors import UserError, WarehouseError
from .graph import LineageGraph, lineage_failure
from .records import (ColumnRef, EdgeType, Finding, ModelLineage, Node, ProjectLineage, Reason, ReasonCode,
                      StatementLineage, Status, Subtype)
from .sql import ValueStep
from . import registry as reg
from . import warehouse as wh

log = logging.getLogger(__name__)

PROVENANCE_NAME_RE = re.compile(r"^(?:.+_)?source_(?:ids?|mask)$", re.I)
SOURCE_ID = "source_id"
SOURCE_BIT = "source_bit"  # the registry column giving each source its bit in source masks
RULE_COVERAGE = "3"  # every value's origin is recorded
RULE_NAMING = "4"  # a provenance-named column must be provenance
RULE_UNCHANGED = "5"  # a provenance-named column holds the ids unchanged (or a collection of them)
RULE_LINEAGE = "lineage"  # lineage is incomplete: the rules cannot be checked
MODEL_TYPES = ("model", "snapshot")


def is_provenance_name(column: str) -> bool:
    """Is `column` named like a provenance column?"""
    return bool(PROVENANCE_NAME_RE.match(column))


# =============================================================================================
# Provenance columns, from lineage


@dataclass(frozen=True)
class ModelView:
    """A model's DIRECT edges that keep source ids unchanged (None: all of them, as when the
    lineage comes without SQL), and the steps of its SQL that change the values they read
    (None: not computed yet, see `Provenance.steps`)."""

    preserved: frozenset[tuple[str, ColumnRef]] | None
    steps: tuple[ValueStep, ...] | None = ()
    error: str | None = None

    @functools.cached_property
    def sources(self) -> dict[str, tuple[ColumnRef, ...]]:
        """Output column -> the input columns whose source ids reach it unchanged."""
        out: dict[str, list[ColumnRef]] = {}
        for target, source in sorted(self.preserved or ()):
            out.setdefault(target, []).append(source)
        return {k: tuple(v) for k, v in out.items()}


class Provenance:
    """Which columns of each model are provenance, and which roots they (and values) reach."""

    def __init__(self, graph: LineageGraph):
        self.graph = graph
        self.project: ProjectLineage = graph.project
        self.registry: str | None = self.project.registry
        self.roots: dict[str, str] = {}  # root unique_id -> its source_id column name
        for node in self.project.nodes:
            if not node.is_root_candidate or node.unique_id == self.registry:
                continue
            sid = next((c for c in graph.columns(node.unique_id) if c.lower() == SOURCE_ID), None)
            if sid is not None:
                self.roots[node.unique_id] = sid
        self._reach: dict[ColumnRef, frozenset[ColumnRef]] = {}
        self._prov: dict[ColumnRef, frozenset[ColumnRef]] = {}
        self._list: dict[ColumnRef, bool] = {}
        self._views: dict[str, ModelView] = {}
        self._relation_ids: dict[str, str] | None = None
        self._cache: object = None  # the lineage cache of the project's target folder, on first use

    # ---- per column ------------------------------------------------------------------------

    def unmasked_roots(self, col: ColumnRef) -> frozenset[ColumnRef]:
        """Root columns reached from `col` through DIRECT, non-masking edges, whatever the steps."""
        return self._roots(col, set(), self._reach, False)

    def kept_roots(self, col: ColumnRef) -> frozenset[ColumnRef]:
        """Root `source_id` columns whose ids reach `col` unchanged or collected (see
        `ModelView`). A model's provenance view is computed only for edges that carry ids."""
        return self._roots(col, set(), self._prov, True)

    def _roots(self, col: ColumnRef, active: set[ColumnRef], memo: dict[ColumnRef, frozenset[ColumnRef]],
               kept: bool) -> frozenset[ColumnRef]:
        hit = memo.get(col)
        if hit is not None:
            return hit
        if self.graph.is_root(col.relation):
            result = frozenset((col,)) if col.column and (not kept or self._sid_roots((col,))) else frozenset()
        else:
            active.add(col)
            found: set[ColumnRef] = set()
            if kept:
                sources = self._kept_sources(col)
            else:
                sources = tuple(e.source for e in self.graph.upstream_edges(col, {EdgeType.DIRECT}) if not e.masking)
            for source in sources:
                if source not in active:
                    found |= self._roots(source, active, memo, kept)
            active.discard(col)
            result = frozenset(found)
        memo[col] = result
        return result

    def _kept_sources(self, col: ColumnRef) -> tuple[ColumnRef, ...]:
        """The input columns whose source ids reach `col` unchanged. A column fed only by
        IDENTITY edges keeps what it reads; otherwise, when some input that carries source ids
        feeds it (DIRECT, or INDIRECT: a decode step may read a mask only in its conditions),
        the model's provenance view decides."""
        carrying = [e for e in self.graph.upstream_edges(col)
                    if e.target.column == col.column and not (e.type == EdgeType.DIRECT and e.masking)
                    and self._sid_roots(self.unmasked_roots(e.source))]
        if not carrying:
            return ()
        if all(e.subtype == Subtype.IDENTITY for e in carrying):
            return tuple(e.source for e in carrying)
        view = self.view(col.relation)
        if view.preserved is None:  # no SQL to read (hand-made lineage) or a view error (reported)
            return tuple(e.source for e in carrying if e.type == EdgeType.DIRECT)
        return view.sources.get(col.column, ())

    def _sid_roots(self, refs: Iterable[ColumnRef]) -> frozenset[str]:
        return frozenset(r.relation for r in refs if self.roots.get(r.relation, "\0").lower() == r.column.lower())

    def provenance_roots(self, col: ColumnRef) -> frozenset[str]:
        """The roots whose `source_id` this column carries (empty: not provenance)."""
        return self._sid_roots(self.kept_roots(col))

    def changed_roots(self, col: ColumnRef) -> frozenset[str]:
        """Roots whose `source_id` this column reads through a step that changes or drops ids."""
        return self._sid_roots(self.unmasked_roots(col)) - self.provenance_roots(col)

    def is_provenance(self, col: ColumnRef) -> bool:
        return bool(self.provenance_roots(col))

    def value_roots(self, col: ColumnRef) -> frozenset[str]:
        """Roots whose columns flow (DIRECT, masking or not) into `col`."""
        return frozenset(r.relation for r in self.graph.roots(col) if r.relation in self.roots)

    def is_list(self, col: ColumnRef) -> bool:
        """Best static guess: does this provenance column hold a list (it was aggregated)?"""
        hit = self._list.get(col)
        if hit is None:
            self._list[col] = False  # cycle guard
            hit = False
            if not self.graph.is_root(col.relation):
                for e in self.graph.upstream_edges(col, {EdgeType.DIRECT}):
                    if e.masking:
                        continue
                    if e.subtype == Subtype.AGGREGATION or self.is_list(e.source):
                        hit = True
                        break
            self._list[col] = hit
        return hit

    # ---- per model -------------------------------------------------------------------------

    def view(self, uid: str) -> ModelView:
        """Which DIRECT edges of model `uid` keep source ids unchanged, from its SQL's provenance
        view (`sql.provenance_view`, analysed like the model). Computed once per model, and only
        for models whose lineage has a step other than IDENTITY into some column."""
        hit = self._views.get(uid)
        if hit is None:
            hit = self._views[uid] = self._model_view(uid)
        return hit

    def _model_view(self, uid: str) -> ModelView:
        ml = self.graph.models.get(uid)
        node = ml.node if ml is not None else None
        if node is None or node.language != "sql" or not node.compiled_sql or ml.status == Status.FAILED:
            return ModelView(None)
        from dataclasses import replace as _replace

        from . import sql as sqlmod
        from .errors import SqlError
        from .project import EPHEMERAL_PREFIX, analyze_node

        dialect = self.project.dialect
        registry = self._registry_relation()
        if self._relation_ids is None:
            self._relation_ids = {}
            for n in self.project.nodes:
                self._relation_ids.setdefault(n.relation, n.unique_id)
        inputs: list[tuple[str, list[tuple[str, str | None]]]] = []
        opaque: dict[str, str] = {}
        for dep in node.depends_on:
            dn = self.graph.nodes.get(dep)
            if dn is None:
                continue
            declared = dict(dn.columns)
            inputs.append((dn.relation, [(c, declared.get(c)) for c in self.graph.columns(dep) if c != "*"]))
            if dn.materialized == "ephemeral":
                opaque[f"{EPHEMERAL_PREFIX}{dn.identifier}"] = dn.relation
                opaque[f"{EPHEMERAL_PREFIX}{dn.name}"] = dn.relation
        cache, key = self._view_cache(), None
        if cache is not None:
            key = hashlib.sha256(json.dumps(
                ["provenance_view", 1, cache.version, dialect, registry, node.compiled_sql, inputs,
                 sorted(opaque.items()), sorted((r, u) for r, u in self._relation_ids.items()
                                                if r in {i[0] for i in inputs})],
                separators=(",", ":")).encode()).hexdigest()
            hit = cache.get(key)
            if hit is not None:
                return ModelView(frozenset((e.target, e.source) for e in hit.edges), None)
        try:
            view = sqlmod.provenance_view(node.compiled_sql, dialect, registry)
        except SqlError as err:
            return ModelView(None, (), f"its SQL cannot be rewritten ({err})")
        catalog = sqlmod.Catalog(dialect)
        for relation, cols in inputs:
            if cols:
                catalog.add(relation, cols)
        lineage = analyze_node(_replace(node, compiled_sql=view.sql, incremental_sql=None), catalog, dialect,
                               relation_ids=self._relation_ids, opaque_ctes=opaque or None).lineage
        if lineage.status == Status.FAILED:
            why = "; ".join(r.message for r in lineage.reasons) or "no lineage"
            return ModelView(None, view.steps, f"the rewritten SQL has no lineage ({why})")
        kept = tuple(e for e in lineage.edges
                     if e.target is not None and e.type == EdgeType.DIRECT and not e.masking)
        if cache is not None and key is not None:
            cache.put(key, StatementLineage(columns=(), edges=kept))
        return ModelView(frozenset((e.target, e.source) for e in kept), view.steps)

    def _registry_relation(self) -> str | None:
        return self.graph.nodes[self.registry].relation if self.registry in self.graph.nodes else None

    def _view_cache(self):
        """The project's lineage cache (`cache.LineageCache`), where provenance views are kept
        beside the lineage of each model (their keys start from "provenance_view")."""
        if self._cache is None:
            from .cache import LineageCache

            path = self.project.manifest_path
            self._cache = LineageCache.for_target(Path(path).parent) if path else False
        return self._cache or None

    def steps(self, uid: str) -> tuple[ValueStep, ...]:
        """The value-changing steps of a model's SQL (parsed again when the view came from the cache)."""
        view = self.view(uid)
        if view.steps is None:
            from . import sql as sqlmod
            from .errors import SqlError

            node = self.graph.models[uid].node
            try:
                steps = sqlmod.provenance_view(node.compiled_sql, self.project.dialect, self._registry_relation()).steps
            except SqlError:
                steps = ()
            view = self._views[uid] = replace(view, steps=steps)
        return view.steps

    def view_error(self, uid: str) -> str | None:
        """Why the model's provenance view could not be computed (only if it was needed)."""
        hit = self._views.get(uid)
        return hit.error if hit is not None else None

    def changing_step(self, col: ColumnRef) -> ValueStep | None:
        """The step of `col`'s model that changes the source ids it reads, when one is found."""
        steps = self.steps(col.relation)
        if not steps:
            return None
        names = {SOURCE_ID, col.column.lower()}
        ml = self.graph.models.get(col.relation)
        if ml is not None:
            for dep in ml.node.depends_on:
                names |= {c.lower() for c in self.provenance_columns(dep)} if dep in self.graph.models else set()
        hits = [s for s in steps if names & set(s.columns)]
        return (hits or list(steps))[0]

    def columns(self, uid: str) -> tuple[str, ...]:
        return self.graph.columns(uid)

    def provenance_columns(self, uid: str) -> tuple[str, ...]:
        return tuple(c for c in self.columns(uid) if self.is_provenance(ColumnRef(uid, c)))

    def changed_columns(self, uid: str) -> tuple[str, ...]:
        """Columns named like provenance that read source ids through a changing step (rule 5)."""
        return tuple(c for c in self.columns(uid)
                     if is_provenance_name(c) and self.changed_roots(ColumnRef(uid, c)))

    def carried(self, uid: str) -> frozenset[str]:
        """Roots whose provenance some column of `uid` carries."""
        if uid in self.roots:
            return frozenset((uid,))
        out: set[str] = set()
        for c in self.provenance_columns(uid):
            out |= self.provenance_roots(ColumnRef(uid, c))
        return frozenset(out)


# =============================================================================================
# check: contract rules 3, 4 and 5


@dataclass(frozen=True)
class CheckResult:
    models_checked: int
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")


def _name(graph: LineageGraph, uid: str) -> str:
    return graph.display_name(uid)


def check_model(prov: Provenance, ml: ModelLineage) -> list[Finding]:
    """Rules 3, 4 and 5 on one model."""
    graph, node = prov.graph, ml.node
    uid, name, path = node.unique_id, node.name, node.original_file_path
    lines = dict(ml.lineage.column_lines)
    out: list[Finding] = lineage_findings(ml)
    if ml.status == Status.FAILED:
        return out
    cols = ml.lineage.columns
    provenance = [c for c in cols if prov.is_provenance(ColumnRef(uid, c))]
    covered: set[str] = set()
    for c in provenance:
        covered |= prov.provenance_roots(ColumnRef(uid, c))
    reported_roots: set[str] = set()
    view_error = prov.view_error(uid)
    if view_error:
        out.append(Finding(name, None, RULE_LINEAGE, f"{name}: cannot tell whether its provenance columns keep "
                           f"source ids unchanged (rule 5): {view_error}", "error", None, path, None))
    # rule 5: named like provenance, reads source ids, but changes or drops some of them
    for c in cols:
        if not is_provenance_name(c):
            continue
        ref = ColumnRef(uid, c)
        changed = prov.changed_roots(ref)
        if not changed:
            continue
        root = _name(graph, sorted(changed)[0])
        step = prov.changing_step(ref)
        how = f"`{step.sql}`" if step else "a step that changes them"
        out.append(Finding(
            name, c, RULE_UNCHANGED,
            f"{name}.{c} is named like provenance but is not provenance: it reads {root}.{SOURCE_ID} through "
            f"{how}, which changes or drops source ids; a provenance column holds the ids as they are, a "
            "collection of them or their source mask (collect_sources / merge_sources / source_list)",
            "error", root, path, lines.get(c)))
        reported_roots |= changed - covered
    # rule 4: named like provenance, but not provenance
    for c in cols:
        if not is_provenance_name(c) or c in provenance:
            continue
        ref = ColumnRef(uid, c)
        if prov.changed_roots(ref):
            continue  # rule 5 above
        direct = graph.roots(ref)
        reaches = prov.value_roots(ref)
        sid_reached = [r for r in direct if prov.roots.get(r.relation, "\0").lower() == r.column.lower()]
        registry_hit = prov.registry is not None and any(r.relation == prov.registry for r in direct)
        root = None
        if sid_reached:
            root = _name(graph, sorted(sid_reached)[0].relation)
            why = f"it reaches {root}.{SOURCE_ID} only through a masking transformation (a hash or a count)"
            reported_roots |= {r.relation for r in sid_reached} - covered
        elif registry_hit:
            why = f"it comes from the registry {_name(graph, prov.registry)}, which is not a root"
        elif not direct:
            why = "it is a literal or computed from no column"
        else:
            why = "it does not reach the source_id of any root (" + ", ".join(sorted(graph.label(r) for r in direct)[:3]) + ")"
            root = _name(graph, sorted(reaches)[0]) if reaches else None
        out.append(Finding(name, c, RULE_NAMING,
                           f"{name}.{c} is named like provenance but is not provenance: {why}",
                           "error", root, path, lines.get(c)))
    # rule 3: values of a root with no provenance column reaching that root
    lost: dict[str, list[str]] = {}
    for c in cols:
        if c in provenance:
            continue
        for r in prov.value_roots(ColumnRef(uid, c)):
            if r not in covered:
                lost.setdefault(r, []).append(c)
    for r, lost_cols in sorted(lost.items(), key=lambda kv: cols.index(kv[1][0])):
        if r in reported_roots:
            continue  # already named by a rule-4 finding (a hashed source_id)
        root = _name(graph, r)
        shown = ", ".join(lost_cols[:6]) + (f" and {len(lost_cols) - 6} more" if len(lost_cols) > 6 else "")
        out.append(Finding(
            name, lost_cols[0], RULE_COVERAGE,
            f"{name}: the origin of {root} is lost: {shown} take{'s' if len(lost_cols) == 1 else ''} values "
            f"from {root} but no provenance column reaches {root}.{prov.roots[r]} "
            "(carry it as is, or collect it with collect_sources / merge_sources)",
            "error", root, path, lines.get(lost_cols[0])))
    return out


# Reasons that leave an output column (or a filter, a join key) without some of its inputs: the
# contract cannot be checked there, so `check` reports an error unless the project exempts the
# model (`meta: {lineage: {exempt: "why"}}`).
_LOSSY = frozenset({ReasonCode.PARSE_ERROR, ReasonCode.UNRESOLVED_COLUMN, ReasonCode.UNSUPPORTED,
                    ReasonCode.TIME_BUDGET, ReasonCode.PYTHON_MODEL, ReasonCode.NO_COMPILED_SQL})
# Reasons whose edges are kept as the SQL states them (a column a partial column list leaves
# out, a relation outside the project, a star over unknown columns) or that name no edge:
# one warning per model and reason code.
_NOTED = {
    ReasonCode.UNKNOWN_COLUMN: "columns missing from a partial column list, traced as written",
    ReasonCode.UNKNOWN_TABLE: "relations outside the project, traced as written",
    ReasonCode.UNEXPANDED_STAR: "columns not named",
    ReasonCode.DUPLICATE_COLUMN: "output columns named twice",
}


def lineage_findings(ml: ModelLineage) -> list[Finding]:
    """What a model's lineage status means for the contract, one finding per distinct reason:
    an error where lineage lost inputs (FAILED, a parse error, a column that resolves to
    nothing, an unsupported construct), a warning for edges kept as written; warnings only
    when the project exempts the model, and the exemption itself is a warning."""
    node = ml.node
    name, path = node.name, node.original_file_path
    reasons = ml.lineage.reasons
    exempt = next((r for r in reasons if r.code is ReasonCode.EXEMPT), None)
    failed = ml.status == Status.FAILED
    out: list[Finding] = []
    seen: set[tuple[ReasonCode, str]] = set()
    noted: dict[ReasonCode, list[Reason]] = {}
    for r in reasons:
        key = (r.code, r.column or r.message)
        if key in seen or r.code in (ReasonCode.EXEMPT, ReasonCode.INCREMENTAL_ONLY):
            continue
        seen.add(key)
        if r.code in _LOSSY or failed:
            where = f", line {r.line}" if r.line else ""
            head = f"lineage FAILED ({r.code.value}{where})" if failed else f"lineage lost inputs ({r.code.value})"
            out.append(Finding(name, r.column, RULE_LINEAGE, f"{name}: {head}: {' '.join(r.message.split())}",
                               "warning" if exempt else "error", None, path, r.line))
        elif r.code in _NOTED:
            noted.setdefault(r.code, []).append(r)
    for code, rs in noted.items():
        shown = "; ".join(" ".join(r.message.split()) for r in rs[:3]) + (f"; and {len(rs) - 3} more" if len(rs) > 3 else "")
        out.append(Finding(name, rs[0].column if len(rs) == 1 else None, RULE_LINEAGE,
                           f"{name}: lineage PARTIAL ({code.value}), {_NOTED[code]}: {shown}",
                           "warning", None, path, rs[0].line))
    if exempt is not None:
        out.append(Finding(name, None, RULE_LINEAGE, f"{name}: {exempt.message}", "warning", None, path, None))
    return out


def check(graph: LineageGraph, select: Collection[str] | None = None) -> CheckResult:
    """Check rules 3, 4 and 5 on every model (or the unique_ids in `select`)."""
    prov = Provenance(graph)
    findings: list[Finding] = []
    n = 0
    for ml in graph.project.models:
        if ml.node.resource_type not in MODEL_TYPES:
            continue
        if select is not None and ml.node.unique_id not in select:
            continue
        n += 1
        findings.extend(check_model(prov, ml))
    return CheckResult(n, tuple(findings))


# =============================================================================================
# impact: which models a source reaches, and whether filtering is exact


FILTER, REBUILD = "filter", "rebuild"


@dataclass(frozen=True)
class ModelImpact:
    unique_id: str
    model: str
    mode: str  # filter | rebuild
    columns: tuple[str, ...]
    reason: str
    relation: str
    provenance_columns: tuple[tuple[str, str], ...] = ()  # (column, what it holds: warehouse.holds_of_type)
    materialized: str | None = None
    tainted_rows: int | None = None
    total_rows: int | None = None
    unreadable_columns: tuple[str, ...] = ()  # provenance-named columns whose source ids cannot be read


@dataclass(frozen=True)
class Impact:
    source_ids: tuple[str, ...]
    roots: tuple[str, ...]  # display names of the root relations holding the sources
    models: tuple[ModelImpact, ...]
    rebuild_command: str | None
    rebuild_argv: tuple[str, ...] = ()
    rows_counted: bool = False
    note: str | None = None
    dialect: str = "duckdb"
    root_rows: tuple[tuple[str, int], ...] = ()  # tainted rows per holding root, when counted
    source_bits: tuple[tuple[str, int], ...] = ()  # each source's bit in source masks (registry)

    def model(self, name: str) -> ModelImpact | None:
        return next((m for m in self.models if m.model == name), None)


#: Where the project lives and how to reach its warehouse: the dbt layer's config.
Env = DbtConfig


def load_graph(env: DbtConfig) -> LineageGraph:
    """The project's lineage graph (`project.load_graph`, the one loader)."""
    from .project import load_graph as load

    return load(env)


def registry_node(project: ProjectLineage) -> Node:
    if project.registry is None:
        raise UserError("no source registry: no seed or source has `meta: {provenance: registry}`")
    return next(n for n in project.nodes if n.unique_id == project.registry)


def read_project_registry(project: ProjectLineage, project_dir: Path) -> reg.Registry:
    node = registry_node(project)
    if not node.original_file_path or not node.original_file_path.endswith(".csv"):
        raise UserError(f"the registry {node.name} is not a seed CSV: cannot read or edit it")
    return reg.read_registry(project_dir / node.original_file_path)


def _seed_holds(node: Node, project_dir: Path, column: str, ids: Collection[str]) -> bool | None:
    """Does a seed's file hold rows of `ids` (read as dbt reads it)? None when there is no file."""
    return seed_holds(node, project_dir, column, ids)


def _children(project: ProjectLineage) -> dict[str, list[str]]:
    kids: dict[str, list[str]] = {}
    for n in project.nodes:
        for parent in n.depends_on:
            kids.setdefault(parent, []).append(n.unique_id)
    return kids


def _reach(project: ProjectLineage, starts: Iterable[str]) -> dict[str, set[str]]:
    """Every model reached (by the dbt DAG) from each start: model uid -> starts reaching it."""
    kids = _children(project)
    kinds = {n.unique_id: n.resource_type for n in project.nodes}
    out: dict[str, set[str]] = {}
    for s in starts:
        stack, seen = [s], {s}
        while stack:
            cur = stack.pop()
            for k in kids.get(cur, ()):
                if k not in seen and kinds.get(k) in MODEL_TYPES:
                    seen.add(k)
                    out.setdefault(k, set()).add(s)
                    stack.append(k)
    return out


_EFFECT_WORDS = {
    "aggregate": "aggregates",
    "window": "runs a window function or ranking over",
    "distinct": "de-duplicates (DISTINCT / UNION) rows of",
    "set_difference": "takes a set difference with",
    "semi_join": "filters by a semi join (IN / EXISTS) on",
    "anti_join": "filters by an anti join (NOT IN / NOT EXISTS) on",
    "outer_join_optional": "outer-joins, on the optional side,",
    "scalar_subquery": "reads in a scalar subquery",
    "limit": "keeps a LIMITed set of rows of",
}


def _influences(ml: ModelLineage | None, parent: Node) -> list[str]:
    if ml is None:
        return []
    keys = {parent.unique_id, parent.relation}
    return sorted({ri.effect.value for ri in ml.lineage.row_influences if ri.relation in keys})


def _modes(prov: Provenance, reached: dict[str, set[str]], order: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Mode and reason per reached model, per the rule: rebuild when on some path from a root
    holding the source some model's row influences name its input on that path, or some model
    on the path carries no provenance of that root."""
    project = prov.project
    nodes = {n.unique_id: n for n in project.nodes}
    lineages = {m.node.unique_id: m for m in project.models}
    graph = prov.graph
    # bad[(uid, root)] = reason text when a path from root to uid forbids filtering
    bad: dict[tuple[str, str], str | None] = {}
    for uid in order:
        if uid not in reached:
            continue
        node = nodes[uid]
        ml = lineages.get(uid)
        carried = prov.carried(uid)
        for root in reached[uid]:
            reason = None
            if ml is None or ml.status == Status.FAILED:
                failure = lineage_failure(ml)
                reason = (f"{node.name}: {failure}: its provenance cannot be known" if failure
                          else f"{node.name} has no lineage: its provenance cannot be known")
            for parent in node.depends_on:
                if reason:
                    break
                if parent != root and (parent, root) not in bad:
                    continue  # this input is not on a path from root
                effects = _influences(ml, nodes[parent]) if parent in nodes else []
                if effects:
                    reason = "; ".join(
                        f"{node.name} {_EFFECT_WORDS.get(e, e)} {graph.display_name(parent)}" for e in effects)
            for parent in node.depends_on:
                if not reason and parent != root and bad.get((parent, root)):
                    reason = bad[(parent, root)]
                    if not reason.startswith("upstream: "):
                        reason = "upstream: " + reason
            if not reason and root not in carried:
                changed = [c for c in prov.changed_columns(uid) if root in prov.changed_roots(ColumnRef(uid, c))]
                if changed:
                    step = prov.changing_step(ColumnRef(uid, changed[0]))
                    reason = (f"{node.name}.{changed[0]} holds source ids changed by "
                              f"`{step.sql if step else 'a transformation'}`: not provenance, so its rows "
                              f"of {graph.display_name(root)} cannot be told apart")
                else:
                    reason = f"{node.name} does not carry the provenance of {graph.display_name(root)}"
            bad[(uid, root)] = reason
    out: dict[str, tuple[str, str]] = {}
    for uid, roots in reached.items():
        reasons = [bad[(uid, r)] for r in sorted(roots) if bad.get((uid, r))]
        if reasons:
            out[uid] = (REBUILD, reasons[0])
        else:
            cols = sorted(prov.provenance_columns(uid))
            via = " or ".join(cols)
            out[uid] = (FILTER, f"rows reach it through row-preserving steps only (projections, filters on "
                                f"their own values, inner joins): dropping the rows whose {via} "
                                f"contain{'s' if len(cols) == 1 else ''} the sources gives what a rebuild would")
    return out


def _static_holds(prov: Provenance, node: Node, column: str) -> str:
    """What a provenance column holds (`warehouse.holds_of_type`), without a warehouse: the
    declared type if any, else the name (`*source_mask`, `*source_ids`, `*source_id`), else the
    lineage guess (aggregated: a list)."""
    declared = dict(node.columns).get(column)
    holds = wh.holds_of_type("", declared) if declared else None
    if holds:
        return holds
    low = column.lower()
    if low.endswith("source_mask"):
        return wh.MASK
    if low.endswith("source_ids"):
        return wh.LIST
    if low.endswith("source_id"):
        return wh.ID
    return wh.LIST if prov.is_list(ColumnRef(node.unique_id, column)) else wh.ID


def registry_bits(registry: reg.Registry) -> dict[str, int]:
    """Each source's bit in source masks: the registry's `source_bit` column (none without it)."""
    bits: dict[str, int] = {}
    for s in registry.sources:
        value = (s.get(SOURCE_BIT) or "").strip()
        if value.isdigit():
            bits[s.source_id] = int(value)
    return bits


def _affected_columns(prov: Provenance, uid: str, holding: set[str]) -> tuple[str, ...]:
    out = []
    for c in prov.columns(uid):
        ref = ColumnRef(uid, c)
        if prov.value_roots(ref) & holding or prov.provenance_roots(ref) & holding:
            out.append(c)
    return tuple(out)


EXCLUDED_VAR = "excluded_sources"  # the pipeline's var: source ids whose rows staging drops


def _var_ids(value: object) -> tuple[str, ...]:
    """A var's source ids (a list, or a comma-separated string), malformed ones left out."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(dict.fromkeys(v for v in value if isinstance(v, str) and reg.SOURCE_ID_RE.fullmatch(v)))


@dataclass(frozen=True)
class Exclusions:
    """The sources excluded by the var `excluded_sources`, and the --vars a rebuild repeats.

    `in_force`: what this command's --vars say, else what the warehouse was last built with
    (dbt's run_results.json), else what dbt_project.yml says (global or package-scoped);
    `configured`: dbt_project.yml with this command's --vars on top; `built`: what the last
    build used (None: unknown); `build_vars`: the --vars a rebuild must repeat (this command's,
    or the last build's) so that it changes nothing but what it is asked to."""

    in_force: tuple[str, ...]
    configured: tuple[str, ...]
    build_vars: dict
    built: tuple[str, ...] | None = None
    last_build: str | None = None  # the last build's command, when known
    from_vars: bool = False  # in_force comes from this command's --vars

    def warning(self) -> str | None:
        """Said when the warehouse was built with other exclusions than assumed from the project
        (or given by --vars)."""
        if self.built is None or set(self.built) == set(self.configured):
            return None
        if self.from_vars:
            return (f"the warehouse was last built with {EXCLUDED_VAR} {list(self.built)} (`{self.last_build}`), "
                    f"not {list(self.configured)} as --vars says: counts describe the former, rebuilds use the latter")
        return (f"the warehouse was last built with {EXCLUDED_VAR} {list(self.built)} (`{self.last_build}`), "
                f"not {list(self.configured)} as the project says: rebuilds keep {list(self.built)}")


def exclusions(env: DbtConfig) -> Exclusions:
    """The `Exclusions` of the project and of its warehouse; warns (once) when they differ."""
    try:
        configured = _var_ids(env.var(EXCLUDED_VAR, []))
    except UserError:  # no dbt_project.yml to read vars from
        configured = _var_ids((env.vars or {}).get(EXCLUDED_VAR, []))
    state = last_build(env)
    built = _var_ids(env.var(EXCLUDED_VAR, [], cli_vars=state.vars)) if state is not None else None
    command = state.command if state is not None else None
    if env.vars is not None:
        out = Exclusions(configured, configured, dict(env.vars), built, command, from_vars=True)
    elif state is not None and built is not None:
        out = Exclusions(built, configured, dict(state.vars), built, command)
    else:
        out = Exclusions(configured, configured, {})
    warning = out.warning()
    if warning:
        _warn_once(warning)
    return out


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning("lineage-tools: %s", message)


def rebuild_argv(env: Env, models: Sequence[str], source_ids: Sequence[str]) -> tuple[str, ...]:
    """`dbt build` of exactly `models` with the sources excluded, as an argv list: the sources
    already excluded when the warehouse was built (and any other --vars of that build) kept."""
    ex = exclusions(env)
    excluded = list(dict.fromkeys([*ex.in_force, *source_ids]))
    build_vars = {**ex.build_vars, EXCLUDED_VAR: excluded}
    argv = ["dbt", "build", "--select", *models, "--vars", json.dumps(build_vars)]
    if env.target:
        argv += ["--target", env.target]
    return tuple(argv)


def set_sources_argv(env: Env, registry: str, models: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`dbt seed` of the registry and `dbt build` of `models` and everything downstream, as argv
    lists; both repeat the --vars of the last build (the exclusions in force stay in force)."""
    ex = exclusions(env)
    extra = (("--vars", json.dumps(ex.build_vars)) if ex.build_vars else ()) + (
        ("--target", env.target) if env.target else ())
    seed = ("dbt", "seed", "--select", registry, *extra)
    build = ("dbt", "build", "--select", *(f"{m}+" for m in models), *extra)
    return seed, build


def _ref(node: Node) -> str:
    if node.resource_type == "source":
        return "{{ source(%r, %r) }}" % (node.source_name or node.unique_id.split(".")[-2], node.name)
    return "{{ ref(%r) }}" % node.name


def _ids_or_raise(project: ProjectLineage, env: Env, source_ids: Sequence[str]) -> tuple[reg.Registry, tuple[str, ...]]:
    registry = read_project_registry(project, env.project_dir)
    return registry, reg.validate_ids(source_ids, registry)


def impact(
    graph: LineageGraph,
    env: Env,
    source_ids: Sequence[str],
    *,
    count: bool = True,
) -> Impact:
    """Which models the sources reach, with their columns and filter/rebuild mode.

    With `count`, rows are counted through dbt's connection for the target (when the
    warehouse is built); otherwise, or when it is not built, the answer is static.
    """
    project = graph.project
    registry, ids = _ids_or_raise(project, env, source_ids)
    bits = registry_bits(registry)
    prov = Provenance(graph)
    nodes = {n.unique_id: n for n in project.nodes}
    candidates: dict[str, bool | None] = {
        r: _seed_holds(nodes[r], env.project_dir, col, ids) for r, col in prov.roots.items() if r in nodes
    }
    maybe = [r for r, holds in candidates.items() if holds is not False]
    reached_all = _reach(project, maybe)
    order = [n.unique_id for n in project.nodes]
    counts: wh.Counts | None = None
    note = None
    if count and maybe:
        rels = [wh.Relation(r, _ref(nodes[r]), nodes[r].schema, nodes[r].identifier, (prov.roots[r],),
                            nodes[r].relation_name) for r in maybe]
        rels += [
            wh.Relation(uid, _ref(nodes[uid]), nodes[uid].schema, nodes[uid].identifier, prov.provenance_columns(uid),
                        nodes[uid].relation_name)
            for uid in order if uid in reached_all and nodes[uid].materialized != "ephemeral"
        ]
        try:
            counts = wh.count_rows(env.dbt, project.dialect, rels, ids, bits)
        except WarehouseError as err:
            note = f"rows were not counted: {err}"
            counts = None
        if counts is not None and not counts.built:
            note = "rows were not counted: the warehouse is not built (run `dbt build`)"
            counts = None
    elif not count:
        note = "rows were not counted (--no-rows)"
    if counts is not None:
        holding = {r for r in maybe if (counts.rows.get(r) and (counts.rows[r].tainted_rows or 0) > 0)
                   or (r not in counts.rows and candidates[r] is not False)}
    else:
        holding = {r for r in maybe if candidates[r] is not False}
        unsure = [graph.display_name(r) for r in maybe if candidates[r] is None]
        if unsure:
            extra = f"assumed {', '.join(sorted(unsure))} may hold the sources (not a seed CSV)"
            note = f"{note}; {extra}" if note else extra
    reached = {uid: roots & holding for uid, roots in _reach(project, holding).items()}
    modes = _modes(prov, reached, order)
    models = []
    for uid in order:
        if uid not in reached:
            continue
        node = nodes[uid]
        mode, reason = modes[uid]
        if counts is not None and uid in counts.holds:
            held = counts.holds[uid]
            pcols = tuple((c, held.get(c) or _static_holds(prov, node, c)) for c in prov.provenance_columns(uid))
        else:
            pcols = tuple((c, _static_holds(prov, node, c)) for c in prov.provenance_columns(uid))
        unreadable = tuple(dict.fromkeys([
            *(c for c in prov.changed_columns(uid) if prov.changed_roots(ColumnRef(uid, c)) & reached[uid]),
            *((counts.unreadable.get(uid, ())) if counts else ())]))
        rc = counts.rows.get(uid) if counts else None
        for c in unreadable:
            if f"{node.name}.{c} " in reason:
                continue
            step = prov.changing_step(ColumnRef(uid, c)) if prov.changed_roots(ColumnRef(uid, c)) else None
            reason += (f"; {node.name}.{c} holds source ids changed by `{step.sql}`: not provenance, its rows "
                       "cannot be counted" if step else f"; {node.name}.{c} cannot be read: its rows cannot be counted")
        models.append(ModelImpact(
            unique_id=uid, model=node.name, mode=mode,
            columns=_affected_columns(prov, uid, set(reached[uid])),
            reason=reason, relation=node.relation, provenance_columns=pcols,
            materialized=node.materialized,
            tainted_rows=rc.tainted_rows if rc and not unreadable else None,
            total_rows=rc.total_rows if rc else None,
            unreadable_columns=unreadable,
        ))
    names = [m.model for m in models]
    argv = rebuild_argv(env, names, ids) if names else ()
    root_rows = ()
    if counts is not None:
        root_rows = tuple((graph.display_name(r), counts.rows[r].tainted_rows or 0)
                          for r in sorted(holding) if r in counts.rows)
    return Impact(
        source_ids=ids,
        roots=tuple(sorted(graph.display_name(r) for r in holding)),
        models=tuple(models),
        rebuild_command=shlex.join(argv) if argv else None,
        rebuild_argv=argv,
        rows_counted=counts is not None,
        note=note,
        dialect=project.dialect,
        root_rows=root_rows,
        source_bits=tuple(sorted(bits.items())),
    )


@dataclass(frozen=True)
class RootReach:
    """A root whose rows reach a model, and how that model would drop one of its sources."""

    root: str  # unique_id of the root relation
    mode: str  # filter | rebuild
    reason: str
    carried_by: tuple[str, ...]  # the model's provenance columns that carry the root's source_id


def roots_reaching(prov: Provenance, uid: str) -> tuple[RootReach, ...]:
    """The roots upstream of model `uid` (by the dbt DAG) and, for each, whether removing one
    of its sources from `uid` is a filter or needs a rebuild: the rule `impact` applies, for
    one model and every root at once (no warehouse)."""
    project = prov.project
    up = set()
    by_id = {n.unique_id: n for n in project.nodes}
    stack = [uid]
    while stack:
        cur = stack.pop()
        for d in by_id[cur].depends_on if cur in by_id else ():
            if d not in up:
                up.add(d)
                stack.append(d)
    roots = [r for r in prov.roots if r in up]
    if not roots:
        return ()
    sub = replace(project, nodes=tuple(n for n in project.nodes if n.unique_id in up or n.unique_id == uid))
    order = [n.unique_id for n in sub.nodes]
    reached = _reach(sub, roots)
    out = []
    for r in sorted(reached.get(uid, ())):
        mode, reason = _modes(prov, {k: {r} for k, v in reached.items() if r in v}, order)[uid]
        carried = tuple(c for c in prov.provenance_columns(uid) if r in prov.provenance_roots(ColumnRef(uid, c)))
        out.append(RootReach(r, mode, reason, carried))
    return tuple(out)


def _quote_relation(dialect: str, relation: str) -> str:
    return ".".join(wh._quote_ident(dialect, p) for p in relation.split("."))


def clean_rows_sql(imp: Impact, m: ModelImpact, *, any_mode: bool = False) -> str | None:
    """A query returning the clean rows of a `filter` model (None for `rebuild` models, unless
    `any_mode`: then the rows a filter would keep, which a rebuild may not match)."""
    if m.mode != FILTER and not any_mode:
        return None
    if not m.provenance_columns:
        return f"select * from {_quote_relation(imp.dialect, m.relation)}" if any_mode else None
    bits = dict(imp.source_bits)
    preds = [wh.contains_any(imp.dialect, c, holds, imp.source_ids, bits) for c, holds in m.provenance_columns]
    return f"select * from {_quote_relation(imp.dialect, m.relation)} where not ({' or '.join(preds)})"
