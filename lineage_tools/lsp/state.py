"""One dbt project held in memory, changed one edit at a time: what the language server and the
watch loop answer from.

`Workspace.load` reads the project as every command does (`project.load_project`: the manifest,
compiled when stale; the per-model lineage cache) and checks every model (`provenance.check_model`,
the function `check` runs). An edit of one model file (`Workspace.edit`, with the editor's text,
saved or not) then

1. renders that text in-process through dbt's compiler on the parsed project (`dbt.editor`):
   no dbt process, no manifest written;
2. analyses that model alone (`project.analyze_node`) and checks it on a graph that differs from
   the last one only by that model's edges (`graph.LineageGraph.with_models`): the first
   `Snapshot`, with the edited file's findings;
3. re-analyses the downstream models whose upstream columns changed, in DAG order, and checks
   every model downstream of a changed lineage: the second `Snapshot`.

Step 3 stops early when a newer edit is waiting (`should_stop`); what it did not reach stays
marked and is done by the next step 3. A new, deleted or renamed file, a changed YAML, macro or
``dbt_project.yml`` is a `Workspace.reload`: dbt parses the project again (partial parsing) and
only the models whose code or inputs changed are rendered and analysed again.

Snapshots are immutable: a front end answers hovers from the last one while the next is built.
"""

from __future__ import annotations

import graphlib
from functools import cached_property
import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..cache import LineageCache
from ..deadline import DEFAULT_TIME_BUDGET
from ..errors import ManifestError
from ..graph import LineageGraph, build_graph
from ..project import (
    EPHEMERAL_PREFIX,
    _output_columns,
    analyze_node,
    load_project,
    nodes_in_dag_order,
    project_config,
    read_catalog_json,
)
from ..provenance import Provenance, check_model
from ..records import Finding, ModelLineage, Node, ProjectLineage
from ..sql import Catalog
from ..dbt.editor import EditorSession, RenderError

log = logging.getLogger(__name__)

MODEL_TYPES = ("model", "snapshot")


@dataclass(frozen=True)
class RenderProblem:
    """dbt could not render a model's text: the message and the file line it names."""

    message: str
    line: int | None = None


@dataclass(frozen=True)
class Snapshot:
    """One consistent state of the project: lineage graph, each model's text and findings."""

    graph: LineageGraph
    project_dir: Path
    by_path: Mapping[str, str]  # project-relative model file -> unique_id
    texts: Mapping[str, str]  # unique_id -> the text its lineage was computed from
    findings: Mapping[str, tuple[Finding, ...]]  # unique_id -> `check` findings
    render_problems: Mapping[str, RenderProblem]  # unique_id -> why its last text did not render
    generation: int = 0
    changed: frozenset[str] = frozenset()  # unique_ids whose findings or text this step changed
    pending: bool = False  # downstream models are still to be re-analysed or checked

    @cached_property
    def prov(self) -> Provenance:
        """Provenance columns and roots of this snapshot's graph (memoised across questions)."""
        return Provenance(self.graph)

    @cached_property
    def memo(self) -> dict[Any, Any]:
        """Answers computed from this snapshot, kept while it is the current one."""
        return {}

    def path_of(self, uid: str) -> str | None:
        node = self.graph.nodes.get(uid)
        return node.original_file_path if node is not None else None


def same_text(a: str | None, b: str | None) -> bool:
    """The same model text, as dbt reads it (dbt drops trailing white space from a file)."""
    return a is not None and b is not None and a.rstrip() == b.rstrip()


def _same_lineage(a: ModelLineage | None, b: ModelLineage) -> bool:
    """Do two results of a model give its consumers and the checks the same lineage (lines and
    messages aside)?"""
    if a is None:
        return False
    x, y = a.lineage, b.lineage
    return (x.columns == y.columns and x.edges == y.edges and x.row_influences == y.row_influences
            and x.status == y.status)


def _fingerprint(texts: Mapping[str, str]) -> str:
    h = hashlib.sha256()
    for k in sorted(texts):
        h.update(k.encode())
        h.update(b"\0")
        h.update(texts[k].encode())
        h.update(b"\0")
    return h.hexdigest()


def _read_or_empty(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


class Workspace:
    """The project as the server sees it. Used from one thread (the server's worker)."""

    def __init__(self, project_dir: Path | str = ".", profiles_dir: Path | str | None = None,
                 target: str | None = None, time_budget: float | None = DEFAULT_TIME_BUDGET):
        self.cfg = project_config(project_dir, profiles_dir, target)
        self.time_budget = time_budget  # per model, as the CLI's --time-budget: no model stalls the server
        self._project_text = _read_or_empty(self.cfg.project_dir / "dbt_project.yml")
        self.project_dir = self.cfg.project_dir
        self.session = EditorSession(self.cfg)
        self._analyze = LineageCache.for_target(self.cfg.target_path).wrap(analyze_node)
        self._generation = 0
        self._dirty: set[str] = set()  # models to analyse again (an input's columns changed)
        self._unchecked: set[str] = set()  # models to check again (an upstream lineage changed)
        self._buffers: dict[str, str] = {}  # uid -> text of an edit (unsaved or saved)
        self._macro_print: str | None = None
        self.snapshot: Snapshot | None = None

    # ---- loading ---------------------------------------------------------------------------

    def load(self) -> Snapshot:
        """Read the project as the CLI does and check every model."""
        project = load_project(self.cfg, time_budget=self.time_budget)
        self._catalog_json = read_catalog_json(self.cfg.catalog_path)
        self._set_project(project)
        self._graph = build_graph(project)
        prov = Provenance(self._graph)
        self._findings = {ml.node.unique_id: tuple(check_model(prov, ml)) for ml in project.models
                          if ml.node.resource_type in MODEL_TYPES}
        self._texts = {n.unique_id: n.raw_sql or "" for n in self._nodes if n.resource_type in MODEL_TYPES}
        self._render_problems: dict[str, RenderProblem] = {}
        self._dirty.clear()
        self._unchecked.clear()
        return self._publish(frozenset(self._findings), pending=False)

    def _set_project(self, project: ProjectLineage) -> None:
        self._project = project
        self._dialect = project.dialect
        self._nodes: list[Node] = list(project.nodes)
        self._by_id = {n.unique_id: n for n in self._nodes}
        self._models: dict[str, ModelLineage] = {m.node.unique_id: m for m in project.models}
        self._index()
        catalog = Catalog(self._dialect)
        for n in self._nodes:
            if n.is_root_candidate and n.columns:
                catalog.add(n.relation, n.columns)
        for n in self._nodes:
            ml = self._models.get(n.unique_id)
            if ml is not None:
                catalog.add(n.relation, _output_columns(ml, self._catalog_json))
        self._catalog = catalog

    def _index(self) -> None:
        """Relations, ephemeral CTE names, consumers, DAG positions and files of the nodes."""
        self._relation_ids: dict[str, str] = {}
        self._opaque_names: dict[str, str] = {}
        self._consumers: dict[str, set[str]] = {}
        for n in self._nodes:
            self._relation_ids.setdefault(n.relation, n.unique_id)
            if n.materialized == "ephemeral":
                self._opaque_names[f"{EPHEMERAL_PREFIX}{n.identifier}"] = n.relation
                self._opaque_names[f"{EPHEMERAL_PREFIX}{n.name}"] = n.relation
            for d in n.depends_on:
                self._consumers.setdefault(d, set()).add(n.unique_id)
        self._position = {n.unique_id: i for i, n in enumerate(self._nodes)}
        self._by_path = {n.original_file_path: n.unique_id for n in self._nodes
                         if n.resource_type in MODEL_TYPES and n.original_file_path}

    def warm_up(self) -> None:
        """Start dbt in this process and parse the project (about 3 s to import dbt, then a
        partial parse): the first edit then renders at once."""
        if self.session.manifest is None:
            self.session.parse()
            self._macro_print = self._macros_fingerprint()
        from .. import lineage  # noqa: F401 - the SQL engine, imported before the first edit needs it

        self._catalog.schema  # noqa: B018 - sqlglot's schema of every relation, built once now
        _freeze()

    def _macros_fingerprint(self) -> str:
        m = self.session.manifest
        texts = {uid: mac.macro_sql for uid, mac in m.macros.items()}
        texts["\0project"] = (self.cfg.project_dir / "dbt_project.yml").read_text(encoding="utf-8") \
            if (self.cfg.project_dir / "dbt_project.yml").is_file() else ""
        return _fingerprint(texts)

    # ---- the answer a front end reads ------------------------------------------------------

    def _publish(self, changed: frozenset[str], pending: bool) -> Snapshot:
        self._generation += 1
        self.snapshot = Snapshot(
            graph=self._graph,
            project_dir=self.project_dir,
            by_path=dict(self._by_path),
            texts=dict(self._texts),
            findings=dict(self._findings),
            render_problems=dict(self._render_problems),
            generation=self._generation,
            changed=changed,
            pending=pending,
        )
        return self.snapshot

    def uid_of(self, path: str) -> str | None:
        return self._by_path.get(path)

    # ---- one edit --------------------------------------------------------------------------

    def edit(self, path: str, text: str, should_stop: Callable[[], bool] = lambda: False) -> Iterator[Snapshot]:
        """The model in `path` (relative to the project) now reads `text`: yields the snapshot
        with its own findings, then (unless `should_stop` says a newer edit waits) the snapshot
        with every downstream model analysed and checked again."""
        uid = self._by_path.get(path)
        if uid is None:
            raise ManifestError(f"{path}: not a model of this project")
        self.warm_up()
        self._buffers[uid] = text
        yield self._edit_one(uid, text)
        if self._dirty or self._unchecked:
            yield from self.settle(should_stop)

    def _edit_one(self, uid: str, text: str) -> Snapshot:
        node = self._by_id[uid]
        try:
            rendered = self.session.render_text(node.original_file_path, text)
            incremental = None
            if node.incremental_sql is not None:
                incremental = self.session.render_text(node.original_file_path, text, is_incremental=True).sql
            self._check_cycle(uid, rendered.depends_on)
        except RenderError as exc:
            self._render_problems[uid] = RenderProblem(str(exc), exc.line)
            self._texts[uid] = text
            return self._publish(frozenset({uid}), pending=bool(self._dirty or self._unchecked))
        self._render_problems.pop(uid, None)
        new = replace(node, raw_sql=text, compiled_sql=rendered.sql, depends_on=rendered.depends_on,
                      incremental_sql=incremental)
        if new.depends_on != node.depends_on:
            self._replace_node(new)
        else:
            self._nodes[self._position[uid]] = new
            self._by_id[uid] = new
        self._texts[uid] = text
        if new.materialized == "ephemeral":
            self._render_inliners(uid, text, rendered.depends_on)
        changed = self._reanalyse([uid])
        self._graph = self._graph.with_models(self._project_lineage(), changed)
        prov = Provenance(self._graph)
        self._findings[uid] = tuple(check_model(prov, self._models[uid]))
        self._unchecked.discard(uid)
        return self._publish(frozenset({uid}), pending=bool(self._dirty or self._unchecked))

    def _render_inliners(self, uid: str, text: str, depends_on: tuple[str, ...]) -> None:
        """An ephemeral model's text changed: dbt inlines it into its consumers' SQL (through
        chains of ephemeral models), so those are rendered again and analysed again."""
        self.session.set_text(uid, text, depends_on)
        seen: set[str] = set()
        stack = [uid]
        while stack:
            for c in self._consumers.get(stack.pop(), ()):
                if c in seen:
                    continue
                seen.add(c)
                node = self._by_id[c]
                if node.materialized == "ephemeral":
                    stack.append(c)
                    continue
                if node.resource_type not in MODEL_TYPES or not node.original_file_path:
                    continue
                try:
                    r = self.session.render_text(node.original_file_path, self._texts.get(c) or node.raw_sql or "")
                except RenderError as exc:
                    self._render_problems[c] = RenderProblem(str(exc), exc.line)
                    continue
                new = replace(node, compiled_sql=r.sql)
                self._nodes[self._position[c]] = new
                self._by_id[c] = new
                self._dirty.add(c)
                self._unchecked.add(c)

    def _check_cycle(self, uid: str, depends_on: tuple[str, ...]) -> None:
        below = self._downstream({uid})
        loop = [d for d in depends_on if d in below or d == uid]
        if loop:
            name = self._by_id[uid].name
            other = self._by_id[loop[0]].name if loop[0] in self._by_id else loop[0]
            line = next((i for i, t in enumerate(self._buffers.get(uid, "").splitlines(), 1)
                         if f"'{other}'" in t or f'"{other}"' in t), None)
            raise RenderError(f"{name}: a ref to {other} makes a cycle ({other} depends on {name})", line)

    def _replace_node(self, new: Node) -> None:
        """A model's dependencies changed: DAG order and indexes again."""
        self._by_id[new.unique_id] = new
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for n in self._nodes:
            n = self._by_id[n.unique_id]
            sorter.add(n.unique_id, *(d for d in n.depends_on if d in self._by_id and d != n.unique_id))
        self._nodes = [self._by_id[u] for u in sorter.static_order()]
        self._index()

    def _project_lineage(self) -> ProjectLineage:
        models = tuple(self._models[n.unique_id] for n in self._nodes if n.unique_id in self._models)
        return replace(self._project, nodes=tuple(self._nodes), models=models)

    def _reanalyse(self, uids: list[str]) -> set[str]:
        """Analyse these models again; consumers of any whose columns changed become dirty and
        everything downstream of a changed lineage unchecked. Returns the models analysed."""
        for uid in uids:
            node = self._by_id[uid]
            deps = {self._by_id[d].relation for d in node.depends_on if d in self._by_id}
            opaque = {k: v for k, v in self._opaque_names.items() if v in deps} or None
            old = self._models.get(uid)
            ml = self._analyze(node, self._catalog, self._dialect, relation_ids=self._relation_ids,
                               opaque_ctes=opaque, time_budget=self.time_budget)
            self._models[uid] = ml
            self._dirty.discard(uid)
            cols = _output_columns(ml, self._catalog_json)
            if old is None or _output_columns(old, self._catalog_json) != cols:
                self._catalog.add(node.relation, cols)
                self._dirty |= self._consumers.get(uid, set())
            if not _same_lineage(old, ml):
                self._unchecked |= self._downstream({uid}) - {uid}
        return set(uids)

    def _downstream(self, uids: set[str]) -> set[str]:
        seen: set[str] = set()
        stack = list(uids)
        while stack:
            u = stack.pop()
            for c in self._consumers.get(u, ()):
                if c not in seen:
                    seen.add(c)
                    stack.append(c)
        return seen

    def settle(self, should_stop: Callable[[], bool] = lambda: False) -> Iterator[Snapshot]:
        """Re-analyse dirty models (DAG order) and check unchecked ones; yields one snapshot when
        done. Stops (yielding nothing) when `should_stop()` turns true: the rest stays marked."""
        analysed: set[str] = set()
        while self._dirty:
            if should_stop():
                self._commit_graph(analysed)
                return
            uid = min(self._dirty, key=self._position.__getitem__)
            analysed |= self._reanalyse([uid])
        self._commit_graph(analysed)
        if should_stop():
            return
        prov = Provenance(self._graph)
        changed: set[str] = set()
        for uid in sorted(self._unchecked, key=self._position.__getitem__):
            ml = self._models.get(uid)
            if ml is None or ml.node.resource_type not in MODEL_TYPES:
                continue
            found = tuple(check_model(prov, ml))
            if found != self._findings.get(uid):
                changed.add(uid)
            self._findings[uid] = found
        self._unchecked.clear()
        yield self._publish(frozenset(changed | analysed), pending=False)

    def _commit_graph(self, analysed: set[str]) -> None:
        if analysed:
            self._graph = self._graph.with_models(self._project_lineage(), analysed)

    # ---- files added, deleted, renamed; YAML, macros, dbt_project.yml ----------------------

    def reload(self, buffers: Mapping[str, str] | None = None) -> Snapshot:
        """dbt parses the project again (partial parsing); models whose code, configuration,
        inputs or macros changed are rendered again (`buffers`: project-relative path -> text
        of files open in the editor, used instead of the file), and analysed again with
        everything downstream; every model is checked again."""
        old_print = self._macro_print
        old_relations = self._relation_names()
        # dbt_project.yml may have changed: read the configuration again, in a new session
        self.session.close()
        self.cfg = project_config(self.cfg.project_dir, self.cfg.profiles_dir, self.cfg.target, self.cfg.vars)
        project_text = _read_or_empty(self.cfg.project_dir / "dbt_project.yml")
        if project_text != self._project_text:  # a full parse: partial parsing kept a stale config
            (self.cfg.target_path / "partial_parse.msgpack").unlink(missing_ok=True)
        self._project_text = project_text
        self.session = EditorSession(self.cfg)
        manifest = self.session.parse()
        new_print = self._macros_fingerprint()
        self._macro_print = new_print
        everything = old_print is None or old_print != new_print
        buffers = dict(buffers or {})
        data: dict[str, Any] = {"nodes": {}, "sources": {}}
        for uid, n in manifest.nodes.items():
            if n.resource_type in ("model", "seed", "snapshot"):
                data["nodes"][uid] = n.to_dict(omit_none=False)
        for uid, s in manifest.sources.items():
            data["sources"][uid] = s.to_dict(omit_none=False)
        problems: dict[str, RenderProblem] = {}
        new_relations = self._relation_names()
        moved = {uid for uid, rel in new_relations.items() if old_relations.get(uid) != rel}
        rendered: set[str] = set()
        for uid in _dag_order(data["nodes"]):
            raw = data["nodes"][uid]
            if raw.get("resource_type") not in MODEL_TYPES or raw.get("language", "sql") != "sql":
                continue
            if not (raw.get("config") or {}).get("enabled", True):
                continue
            path = raw.get("original_file_path")
            text = buffers.get(path, raw.get("raw_code") or "")
            old = self._by_id.get(uid)
            deps = tuple((raw.get("depends_on") or {}).get("nodes") or ())
            same = (not everything and old is not None and same_text(old.raw_sql, text) and deps == old.depends_on
                    and (raw.get("config") or {}).get("materialized") == old.materialized
                    and not any(d in moved or d in rendered for d in deps))
            if same:
                raw["compiled_code"] = old.compiled_sql
                continue
            rendered.add(uid)
            try:
                raw["compiled_code"] = self.session.render_text(path, text).sql
                if text != raw.get("raw_code"):
                    raw["raw_code"] = text
            except RenderError as exc:
                problems[uid] = RenderProblem(str(exc), exc.line)
                raw["compiled_code"] = None
        catalog_json = read_catalog_json(self.cfg.catalog_path)
        nodes = nodes_in_dag_order(data, self._dialect, self.project_dir, catalog_json)
        self._catalog_json = catalog_json
        self._nodes = list(nodes)
        self._by_id = {n.unique_id: n for n in self._nodes}
        self._index()
        catalog = Catalog(self._dialect)
        for n in self._nodes:
            if n.is_root_candidate and n.columns:
                catalog.add(n.relation, n.columns)
        self._catalog = catalog
        self._models = {}
        for n in self._nodes:
            if n.resource_type not in MODEL_TYPES:
                continue
            deps = {self._by_id[d].relation for d in n.depends_on if d in self._by_id}
            opaque = {k: v for k, v in self._opaque_names.items() if v in deps} or None
            ml = self._analyze(n, catalog, self._dialect, relation_ids=self._relation_ids, opaque_ctes=opaque,
                               time_budget=self.time_budget)
            self._models[n.unique_id] = ml
            catalog.add(n.relation, _output_columns(ml, catalog_json))
        self._project = replace(self._project, nodes=tuple(self._nodes),
                                models=tuple(self._models[n.unique_id] for n in self._nodes
                                             if n.unique_id in self._models),
                                registry=next((n.unique_id for n in self._nodes
                                               if n.meta_value("provenance") == "registry"), None))
        self._graph = build_graph(self._project)
        prov = Provenance(self._graph)
        old_findings = self._findings
        self._findings = {uid: tuple(check_model(prov, ml)) for uid, ml in self._models.items()
                          if ml.node.resource_type in MODEL_TYPES}
        self._texts = {n.unique_id: n.raw_sql or "" for n in self._nodes if n.resource_type in MODEL_TYPES}
        self._render_problems = problems
        self._buffers = {uid: t for uid, t in self._buffers.items() if uid in self._by_id}
        self._dirty.clear()
        self._unchecked.clear()
        log.info("lineage-tools lsp: project parsed again; %d model(s) rendered again", len(rendered))
        _freeze()
        return self._publish(frozenset(set(self._findings) | set(old_findings) | set(problems)), pending=False)

    def _relation_names(self) -> dict[str, Any]:
        """The relation each node of dbt's parsed project has (an alias or schema changed in
        YAML changes its consumers' SQL)."""
        m = self.session.manifest
        if m is None:
            return {}
        return {uid: (getattr(n, "relation_name", None), n.config.materialized if hasattr(n, "config") else None)
                for uid, n in m.nodes.items()}


def _freeze() -> None:
    """What is loaded now lives as long as the server: move it out of the garbage collector's
    sight (a full collection of a large project's graph otherwise pauses an edit for a second)."""
    import gc

    gc.collect()
    gc.freeze()


def _dag_order(raw_nodes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Manifest entries' unique_ids, each after the ones it depends on."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for uid in sorted(raw_nodes):
        deps = [d for d in (raw_nodes[uid].get("depends_on") or {}).get("nodes") or () if d in raw_nodes and d != uid]
        sorter.add(uid, *deps)
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as exc:
        raise ManifestError(f"dependency cycle between nodes: {' -> '.join(exc.args[1])}") from None
