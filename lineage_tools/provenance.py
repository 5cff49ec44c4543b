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

import csv
import functools
import hashlib
import io
import json
import logging
import re
import shlex
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import LineageToolsError, UnknownNodeError, UserError, WarehouseError
from .graph import LineageGraph
from .sql import ValueStep
from .records import ColumnRef, EdgeType, Finding, ModelLineage, Node, ProjectLineage, StatementLineage, Status, Subtype
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
    out: list[Finding] = []
    if ml.status == Status.FAILED:
        why = "; ".join(r.message for r in ml.lineage.reasons) or "no lineage"
        line = next((r.line for r in ml.lineage.reasons if r.line), None)
        return [Finding(name, None, RULE_LINEAGE, f"{name}: lineage failed, the contract cannot be checked ({why})",
                        "warning", None, path, line)]
    if ml.status == Status.PARTIAL:
        why = "; ".join(r.message for r in ml.lineage.reasons if r.code.value != "incremental_only_lineage")
        if why:
            out.append(Finding(name, None, RULE_LINEAGE, f"{name}: lineage is partial, some columns were not checked ({why})",
                               "warning", None, path, None))
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


@dataclass(frozen=True)
class Env:
    """Where the project lives and how to reach its warehouse."""

    project_dir: Path
    profiles_dir: Path | None = None
    target: str | None = None

    @property
    def dbt(self) -> wh.DbtTarget:
        return wh.DbtTarget(self.project_dir, self.profiles_dir, self.target)


def load_graph(env: Env) -> LineageGraph:
    """The project's lineage graph; when the manifest needs compiling, `dbt compile` runs as a
    child process (an in-process dbt keeps the DuckDB file locked until this process ends, and
    `impact` / `quarantine` run dbt again afterwards)."""
    from .errors import ManifestError
    from .graph import build_graph
    from .project import load_project, manifest_problem, project_config, read_manifest

    cfg = project_config(env.project_dir, env.profiles_dir, env.target)
    try:
        manifest = read_manifest(cfg.manifest_path) if cfg.manifest_path.exists() else None
    except ManifestError:
        manifest = None
    problem = manifest_problem(cfg, manifest)
    if problem:
        log.warning("lineage-tools: %s; compiling with dbt (dbt compile)", problem)
        if wh.run_dbt(env.dbt, ["compile", "--quiet", "--exclude", "resource_type:test"]) != 0:
            raise ManifestError(f"{cfg.manifest_path}: dbt compile failed (see the log above)")
    return build_graph(load_project(env.project_dir, env.profiles_dir, env.target))


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
    """Does a seed's CSV hold rows of `ids`? None when there is no CSV to read."""
    if node.resource_type != "seed" or not node.original_file_path:
        return None
    path = project_dir / node.original_file_path
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            key = next((f for f in reader.fieldnames or () if f.strip().lower() == column.lower()), None)
            if key is None:
                return False
            return any((row.get(key) or "").strip() in ids for row in reader)
    except OSError:
        return None


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
                reason = f"{node.name} has no lineage: its provenance cannot be known"
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


def _project_vars(project_dir: Path) -> list[str]:
    """The `excluded_sources` var already set in dbt_project.yml (kept in the rebuild command)."""
    import yaml  # dbt's own dependency

    try:
        data = yaml.safe_load((project_dir / "dbt_project.yml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []
    value = (data.get("vars") or {}).get("excluded_sources") or []
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    return [v for v in value if isinstance(v, str) and reg.SOURCE_ID_RE.fullmatch(v)]


def rebuild_argv(env: Env, models: Sequence[str], source_ids: Sequence[str]) -> tuple[str, ...]:
    """`dbt build` of exactly `models` with the sources excluded, as an argv list."""
    excluded = list(dict.fromkeys([*_project_vars(env.project_dir), *source_ids]))
    argv = ["dbt", "build", "--select", *models, "--vars", json.dumps({"excluded_sources": excluded})]
    if env.target:
        argv += ["--target", env.target]
    return tuple(argv)


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
        rels = [wh.Relation(r, _ref(nodes[r]), nodes[r].schema, nodes[r].identifier, (prov.roots[r],)) for r in maybe]
        rels += [
            wh.Relation(uid, _ref(nodes[uid]), nodes[uid].schema, nodes[uid].identifier, prov.provenance_columns(uid))
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


# =============================================================================================
# quarantine and release


class RebuildError(LineageToolsError):
    """dbt failed while rebuilding, or rows of the sources remain after it. Exit 1."""

    exit_code = 1


@dataclass(frozen=True)
class ModelRows:
    model: str
    rows_before: int | None
    rows_after: int | None


@dataclass(frozen=True)
class QuarantineResult:
    action: str  # quarantine | release
    source_ids: tuple[str, ...]
    registry_changed: tuple[str, ...]
    models: tuple[ModelRows, ...]
    remaining_tainted_rows: int | None
    dry_run: bool = False
    commands: tuple[str, ...] = ()
    note: str | None = None


def _totals(env: Env, project: ProjectLineage, prov: Provenance, uids: Sequence[str],
            ids: Sequence[str], bits: dict[str, int] | None = None) -> wh.Counts:
    nodes = {n.unique_id: n for n in project.nodes}
    rels = [wh.Relation(u, _ref(nodes[u]), nodes[u].schema, nodes[u].identifier, prov.provenance_columns(u))
            for u in uids if nodes[u].materialized != "ephemeral"]
    return wh.count_rows(env.dbt, project.dialect, rels, ids, bits)


def _unreadable_message(prov: Provenance, imp: Impact, after: wh.Counts) -> str | None:
    """Why the proof cannot say how many rows are left, naming each column it cannot read."""
    changed: list[str] = []
    steps: list[str] = []
    typed: list[str] = []
    for m in imp.models:
        for c in m.unreadable_columns:
            ref = ColumnRef(m.unique_id, c)
            if prov.changed_roots(ref):
                changed.append(f"{m.model}.{c}")
                step = prov.changing_step(ref)
                if step and f"`{step.sql}`" not in steps:
                    steps.append(f"`{step.sql}`")
        typed += [f"{m.model}.{c}" for c in after.unreadable.get(m.unique_id, ()) if f"{m.model}.{c}" not in changed]
    parts = []
    if changed:
        parts.append(f"{', '.join(changed)} hold{'s' if len(changed) == 1 else ''} source ids changed by "
                     f"{', '.join(steps) or 'a transformation'}: not provenance, so the rows "
                     f"{'it holds' if len(changed) == 1 else 'they hold'} cannot be read (check, rule 5)")
    if typed:
        parts.append(f"{', '.join(typed)} cannot be read: no source ids in a column of that type")
    return "; ".join(parts) or None


def set_sources(
    graph: LineageGraph,
    env: Env,
    source_ids: Sequence[str],
    *,
    quarantine: bool,
    reason: str = "",
    dry_run: bool = False,
    on_line: Callable[[str], None] | None = None,
) -> QuarantineResult:
    """Quarantine (or release) sources durably: registry status, then rebuild, then verify.

    Idempotent: each step checks or redoes its own work, so a run that was killed can be run
    again and completes. dbt replaces each table in one transaction, so none is half-written.
    """
    action = "quarantine" if quarantine else "release"
    project = graph.project
    registry, ids = _ids_or_raise(project, env, source_ids)
    if quarantine and not reason.strip():
        raise UserError("quarantine needs --reason TEXT (it is recorded in the registry)")
    imp = impact(graph, env, ids, count=False)
    reg_node = registry_node(project)
    affected = [m.model for m in imp.models]
    uids = [m.unique_id for m in imp.models]
    seed_argv = ("dbt", "seed", "--select", reg_node.name) + (("--target", env.target) if env.target else ())
    build_argv = ("dbt", "build", "--select", *(f"{m}+" for m in affected)) + (
        ("--target", env.target) if env.target else ())
    commands = (shlex.join(seed_argv),) + ((shlex.join(build_argv),) if affected else ())
    status = reg.QUARANTINED if quarantine else reg.ACTIVE
    pending = tuple(s for s in ids if (registry.get(s) and registry.get(s).status) != status)
    note = None
    if not quarantine:
        still = [s for s in ids if s in _project_vars(env.project_dir)]
        if still:
            note = f"{', '.join(still)} stay excluded by the dbt var excluded_sources in dbt_project.yml"
    if not affected:
        note = (note + "; " if note else "") + "no rows of these sources: nothing to rebuild"
    if dry_run:
        return QuarantineResult(action, ids, pending, tuple(ModelRows(m, None, None) for m in affected),
                                None, True, commands, note)
    prov = Provenance(graph)
    bits = registry_bits(registry)
    before = _totals(env, project, prov, uids, ids, bits) if uids else wh.Counts({}, False)
    if uids and not before.built:
        raise WarehouseError(f"cannot {action}: the warehouse is not built (run `dbt build` first)")
    changed = reg.set_status(registry.path, ids, status, reason)
    rc = wh.run_dbt(env.dbt, list(seed_argv[1:]), on_line)
    if rc != 0:
        raise RebuildError(f"`{commands[0]}` failed (exit {rc}); the registry is updated: run `lineage-tools {action}` again")
    if affected:
        rc = wh.run_dbt(env.dbt, list(build_argv[1:]), on_line)
        if rc != 0:
            raise RebuildError(f"`{commands[1]}` failed (exit {rc}); the registry is updated: fix and run `lineage-tools {action}` again")
    # the proof covers every model with a provenance column, not only the ones lineage reaches
    every = [m.node.unique_id for m in project.models
             if m.node.resource_type in MODEL_TYPES and prov.provenance_columns(m.node.unique_id)]
    after = _totals(env, project, prov, list(dict.fromkeys([*uids, *every])), ids, bits)
    rows = tuple(
        ModelRows(m.model, before.rows[m.unique_id].total_rows if m.unique_id in before.rows else None,
                  after.rows[m.unique_id].total_rows if m.unique_id in after.rows else None)
        for m in imp.models
    )
    remaining = sum((c.tainted_rows or 0) for c in after.rows.values())
    unreadable = _unreadable_message(prov, imp, after)
    result = QuarantineResult(action, ids, changed, rows, None if unreadable else remaining, False, commands,
                              f"{note}; {unreadable}" if note and unreadable else (unreadable or note))
    if quarantine and (remaining or unreadable):
        left = f"{remaining} row(s) still carry {', '.join(ids)} after the rebuild" if remaining else ""
        proof = f"cannot prove that no row of {', '.join(ids)} is left: {unreadable}" if unreadable else ""
        raise RebuildError("; ".join(x for x in (left, proof) if x))
    return result
