"""The one loader: a dbt project's lineage, from its manifest (compiled when stale), for every command.

`load_graph(config, select=...)` is what every command calls (check, impact, quarantine,
release, report, export, trace, verify; `load_base` for diff's base): it asks the dbt layer
(`lineage_tools.dbt`) for the project's nodes in DAG order (the manifest read, checked fresh for
this project and target, compiled by dbt when it is not), has dbt render the two branches of
incremental models (at most one dbt invocation, none when they are on disk), then runs the SQL
engine over every model in DAG order, adding each model's inferred output columns to the
catalog before its consumers.

dbt itself is imported only by the dbt layer, and only when the manifest must be compiled or an
incremental model's branches are not on disk yet (it costs ~3 s): a warm run never imports it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .cache import (
    LineageCache,
    ManifestDigest,
    RenderStore,
    file_stamp,
    nodes_from_json,
    nodes_to_json,
    render_key,
    tool_version,
)
from .dbt.config import DbtConfig, load_config, one_line, resolve_profiles_dir
from .dbt.manifest import (
    MACROS_KEY,
    SNAPSHOT_META_COLUMNS,
    ManifestNodes,
    SourceScan,
    catalog_columns,
    compiled_vars,
    dialect_for_adapter,
    digest_files,
    looks_empty_compiled,
    manifest_nodes,
    manifest_problem,
    nodes_in_dag_order,
    read_catalog_json,
    read_manifest,
    scan_sources,
    uncompiled,
)
from .errors import ManifestError, SqlError, UserError
from .records import (
    ColumnEdge,
    ColumnRef,
    ModelLineage,
    Node,
    ProjectLineage,
    Reason,
    ReasonCode,
    RowInfluence,
    StatementLineage,
    Status,
    Subtype,
)
from .sql import Catalog, NameRules, name_rules, prime_names

log = logging.getLogger(__name__)

__all__ = [  # the project layer's API, and the dbt layer's names older callers import from here
    "DbtConfig", "ProjectConfig", "project_config", "load_project", "load_graph", "load_base",
    "analyze_node", "analyze_project", "upstream_closure", "file_line", "read_manifest_nodes",
    "read_manifest", "manifest_problem", "looks_empty_compiled", "dialect_for_adapter",
    "resolve_profiles_dir", "nodes_in_dag_order", "read_catalog_json", "scan_sources", "SourceScan",
    "ManifestNodes", "SNAPSHOT_META_COLUMNS",
]

#: The project's configuration (kept under its old name).
ProjectConfig = DbtConfig

EPHEMERAL_PREFIX = "__dbt__cte__"

_JINJA_ALIAS = re.compile(r"\bas\s+(\w*)\{\{[^}]*\}\}(\w*)", re.I)
_catalog_columns = catalog_columns
_one_line = one_line


def project_config(project_dir: Path | str = ".", profiles_dir: Path | str | None = None,
                   target: str | None = None, vars: str | Mapping[str, Any] | None = None) -> DbtConfig:
    """The project's `DbtConfig`, its dbt_project.yml read (`ProjectError` when there is none)."""
    return load_config(project_dir, profiles_dir, target, vars)


# --------------------------------------------------------------------------------------------
# Per-model analysis (the one function a cache wraps)


def _map_relation(relation: str, relation_ids: Mapping[str, str]) -> str:
    return relation_ids.get(relation, relation)


def _map_edges(lineage: StatementLineage, relation_ids: Mapping[str, str]) -> StatementLineage:
    edges = tuple(
        replace(e, source=ColumnRef(_map_relation(e.source.relation, relation_ids), e.source.column))
        for e in lineage.edges
    )
    influences = tuple(
        dict.fromkeys(RowInfluence(_map_relation(r.relation, relation_ids), r.effect) for r in lineage.row_influences)
    )
    return replace(lineage, edges=edges, row_influences=influences)


def file_line(raw_sql: str | None, compiled_sql: str | None, compiled_line: int | None,
              column: str | None = None) -> int | None:
    """Best effort: the line of the model FILE for a line of its compiled SQL.

    Tries the compiled line's text when it is unique in the raw code (and not a ``*``), then
    ``as <column>``, then a line holding just the column, then any line naming it (the last one:
    closest to the final select), then the compiled text anywhere.

    >>> raw = "{{ config(x=1) }}\\nselect\\n    a,\\n    b + 1 as c\\nfrom {{ ref('t') }}"
    >>> compiled = "\\n\\nselect\\n    a,\\n    b + 1 as c\\nfrom t"
    >>> file_line(raw, compiled, 5, "c"), file_line(raw, compiled, 4, "a"), file_line(raw, compiled, 6, "b")
    (4, 3, 4)
    >>> file_line("select\\n  sum(x) as {{ m }}_amount\\nfrom t", None, None, "card_amount")
    2
    """
    if not raw_sql:
        return None
    return _LineIndex(raw_sql, compiled_sql).line(compiled_line, column)


# One pass over a model's raw SQL indexes what `file_line`'s patterns look for, per word:
# `as <word>` at the end of a line (1), `as <word>` anywhere (2), a line holding just a
# (dotted) name (3), a word not preceded by a word character or `.` (4). Column names that are
# not plain words fall back to the regular expressions (`_column_patterns`).
_AS_WORD = re.compile(r"""(?=\bas\s+["`\[]?(\w+)(["`\]]?\s*,?\s*$)?)""", re.I)
_BARE_NAME = re.compile(r"^\s*,?\s*([\w.]+)\s*,?\s*$")
_FREE_WORD = re.compile(r"(?<![\w.])\w+")
_WORD = re.compile(r"\w+")


@functools.lru_cache(maxsize=4096)
def _column_patterns(column: str) -> tuple[re.Pattern[str], ...]:
    name = re.escape(column)
    return tuple(re.compile(p, re.I) for p in (
        rf"\bas\s+[\"`\[]?{name}[\"`\]]?\s*,?\s*$", rf"\bas\s+[\"`\[]?{name}\b",
        rf"^\s*,?\s*[\w.]*\b{name}\b\s*,?\s*$", rf"(?<![\w.]){name}\b"))


class _LineIndex:
    """The raw SQL of one model, indexed once for `file_line` lookups of many columns."""

    def __init__(self, raw_sql: str, compiled_sql: str | None) -> None:
        self.raw_lines = raw_sql.splitlines()
        self.compiled_lines = compiled_sql.splitlines() if compiled_sql else []
        self.stripped: dict[str, list[int]] = {}
        self._words: tuple[dict[str, int], ...] | None = None
        for i, line in enumerate(self.raw_lines, 1):
            self.stripped.setdefault(line.strip(), []).append(i)

    def _index(self) -> tuple[dict[str, int], ...]:
        if self._words is None:
            as_end: dict[str, int] = {}
            as_any: dict[str, int] = {}
            bare: dict[str, int] = {}
            free: dict[str, int] = {}
            for i, line in enumerate(self.raw_lines, 1):
                if line.lstrip().startswith("--"):
                    continue
                lower = line.lower()
                if "as" in lower:
                    for m in _AS_WORD.finditer(line):
                        word = m.group(1).lower()
                        as_any[word] = i
                        if m.group(2) is not None:
                            as_end[word] = i
                m = _BARE_NAME.match(line)
                if m:
                    last = m.group(1).rsplit(".", 1)[-1]
                    if last:
                        bare[last.lower()] = i
                for word in _FREE_WORD.findall(lower):
                    free[word] = i
            self._words = (as_end, as_any, bare, free)
        return self._words

    def line(self, compiled_line: int | None, column: str | None) -> int | None:
        """`file_line` for this model's raw and compiled SQL."""
        text = ""
        if compiled_line and 0 < compiled_line <= len(self.compiled_lines):
            text = self.compiled_lines[compiled_line - 1].strip()
        if len(text) > 2 and "*" not in text:
            hits = self.stripped.get(text, ())
            if len(hits) == 1:
                return hits[0]
        if column:
            if _WORD.fullmatch(column):
                key = column.lower()
                for index in self._index():
                    if key in index:
                        return index[key]
            else:
                for rx in _column_patterns(column):
                    hits = [i for i, line in enumerate(self.raw_lines, 1)
                            if rx.search(line) and not line.lstrip().startswith("--")]
                    if hits:
                        return hits[-1]
        if column:  # an alias made by Jinja, e.g. `as {{ method }}_amount` in a for loop
            for i, line in enumerate(self.raw_lines, 1):
                for m in _JINJA_ALIAS.finditer(line):
                    prefix, suffix = m.group(1) or "", m.group(2) or ""
                    if column.lower().startswith(prefix.lower()) and column.lower().endswith(suffix.lower()):
                        return i
        if len(text) > 2 and text in self.stripped:
            return self.stripped[text][0]
        return None


def _map_lines(lineage: StatementLineage, node: Node, sql: str) -> StatementLineage:
    """Column and reason lines of the compiled SQL -> lines of the model file."""
    if not node.raw_sql:
        return replace(lineage, column_lines=(),
                       reasons=tuple(replace(r, line=None) if r.line is not None else r for r in lineage.reasons))
    index = _LineIndex(node.raw_sql, sql)
    lines = dict(lineage.column_lines)
    mapped = []
    for col in lineage.columns:
        line = index.line(lines.get(col), col)
        if line is not None:
            mapped.append((col, line))
    reasons = tuple(
        replace(r, line=index.line(r.line, r.column)) if r.line is not None else r
        for r in lineage.reasons
    )
    return replace(lineage, column_lines=tuple(mapped), reasons=reasons)


def _failed(node: Node, code: ReasonCode, message: str, line: int | None = None) -> StatementLineage:
    return StatementLineage(
        columns=tuple(c for c, _ in node.columns),
        edges=(),
        status=Status.FAILED,
        reasons=(Reason(code, message, line),),
    )


def _snapshot_columns(lineage: StatementLineage, node: Node) -> StatementLineage:
    """Add dbt's snapshot meta columns with their lineage (from the unique key / updated_at)."""
    config = dict(node.config)
    names = dict(zip(SNAPSHOT_META_COLUMNS, SNAPSHOT_META_COLUMNS))
    if config.get("snapshot_meta_column_names"):
        for k, v in json.loads(config["snapshot_meta_column_names"]).items():
            if v and k in names:
                names[k] = v
    extra = [names[c] for c in SNAPSHOT_META_COLUMNS if names[c] not in lineage.columns]
    unique_key = config.get("unique_key")
    keys = json.loads(unique_key) if unique_key and unique_key.startswith("[") else [unique_key] if unique_key else []
    updated_at = config.get("updated_at") if config.get("strategy") == "timestamp" else None
    edges = list(lineage.edges)
    for key in keys:
        for e in lineage.edges_of(key):
            if e.type.value == "DIRECT":
                edges.append(ColumnEdge(names["dbt_scd_id"], e.source, Subtype.TRANSFORMATION, masking=True))
    if updated_at:
        for e in lineage.edges_of(updated_at):
            if e.type.value == "DIRECT":
                edges.append(ColumnEdge(names["dbt_scd_id"], e.source, Subtype.TRANSFORMATION, masking=True))
                for col in ("dbt_updated_at", "dbt_valid_from", "dbt_valid_to"):
                    edges.append(ColumnEdge(names[col], e.source, e.subtype))
    return replace(lineage, columns=lineage.columns + tuple(extra), edges=tuple(dict.fromkeys(edges)))


def _mark_incremental_only(full: StatementLineage, incr: StatementLineage) -> StatementLineage:
    """Add the edges only the incremental branch has, flagged, with an INCREMENTAL_ONLY reason."""
    have = {(e.target, e.source, e.subtype) for e in full.edges}
    extra = [replace(e, incremental_only=True) for e in incr.edges
             if (e.target, e.source, e.subtype) not in have and (e.target is None or e.target in full.columns)]
    extra = list(dict.fromkeys(extra))
    if not extra:
        return full
    sources = sorted({f"{e.source.column} of {e.source.relation}" for e in extra})
    reason = Reason(ReasonCode.INCREMENTAL_ONLY,
                    f"{len(extra)} edge(s) exist only when the model runs incrementally (is_incremental()): "
                    f"{', '.join(sources[:5])}")
    return replace(full, edges=full.edges + tuple(extra), reasons=full.reasons + (reason,))


def analyze_node(
    node: Node,
    catalog: Catalog,
    dialect: str,
    *,
    relation_ids: Mapping[str, str],
    opaque_ctes: Mapping[str, str] | None = None,
    time_budget: float | None = None,
) -> ModelLineage:
    """The lineage of one model or snapshot, its input relations mapped to dbt unique_ids.

    Pure given its arguments (the catalog must hold the columns of the node's inputs), so a
    cache may wrap it. `node.compiled_sql` is the full-refresh SQL; `node.incremental_sql`, when
    set, the incremental branch, whose extra edges come back with `incremental_only=True`.
    Lines in `column_lines` and reasons are lines of the model file.
    """
    ml = _analyze_node(node, catalog, dialect, relation_ids=relation_ids, opaque_ctes=opaque_ctes,
                       time_budget=time_budget)
    exempt = lineage_exemption(node)
    if exempt is None:
        return ml
    return replace(ml, lineage=_with_exemption(ml.lineage, exempt))  # shown wherever its reasons are


def lineage_exemption(node: Node) -> str | None:
    """Why the project exempts a model from lineage checks (`meta: {lineage: {exempt: "why"}}`,
    on the model or in its config), else None.

    >>> lineage_exemption(Node("m", "m", "model", "r", None, None, "m",
    ...                        meta=(("lineage", '{"exempt": "python model"}'),)))
    'python model'
    """
    raw = node.meta_value("lineage")
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    why = value.get("exempt") if isinstance(value, dict) else None
    if why is None or why is False:
        return None
    return str(why) if why is not True else "exempt"


def _with_exemption(lineage: StatementLineage, why: str) -> StatementLineage:
    reason = Reason(ReasonCode.EXEMPT, f"the project exempts this model from lineage checks: {why}")
    return replace(lineage, reasons=(reason,) + lineage.reasons)  # first: every report shows it


def _analyze_node(
    node: Node,
    catalog: Catalog,
    dialect: str,
    *,
    relation_ids: Mapping[str, str],
    opaque_ctes: Mapping[str, str] | None = None,
    time_budget: float | None = None,
) -> ModelLineage:
    if node.language != "sql":
        declared = tuple(c for c, _ in node.columns)
        status = Status.PARTIAL if declared else Status.FAILED
        msg = "python model: lineage is not computed" + ("; columns from YAML" if declared else "; no columns declared")
        lineage = StatementLineage(columns=declared, edges=(), status=status, reasons=(Reason(ReasonCode.PYTHON_MODEL, msg),))
        return ModelLineage(node, lineage)
    sql = node.compiled_sql
    if not sql:
        return ModelLineage(node, _failed(node, ReasonCode.NO_COMPILED_SQL, "the manifest has no compiled SQL"))

    from . import lineage as engine  # imported on first analysis: a run served by the cache needs no engine

    def run(text: str) -> StatementLineage:
        try:
            result = engine.analyze(text, dialect=dialect, catalog=catalog, opaque_ctes=opaque_ctes,
                                    time_budget=time_budget)
        except SqlError as exc:
            result = _failed(node, ReasonCode.PARSE_ERROR, str(exc), exc.line)
        return _map_edges(result, relation_ids)

    lineage = run(sql)
    if node.incremental_sql and node.incremental_sql != sql and lineage.status != Status.FAILED:
        if node.relation not in catalog:  # the incremental branch reads the model itself ({{ this }})
            catalog.add(node.relation, [(c, dict(node.columns).get(c)) for c in lineage.columns if c != "*"],
                        complete=not any(r.code is ReasonCode.UNEXPANDED_STAR for r in lineage.reasons))
        lineage = _mark_incremental_only(lineage, run(node.incremental_sql))
    if node.resource_type == "snapshot":
        lineage = _snapshot_columns(lineage, node)
    return ModelLineage(node, _map_lines(lineage, node, sql))




# --------------------------------------------------------------------------------------------
# The whole project


def _registry(nodes: Sequence[Node]) -> str | None:
    found = [n.unique_id for n in nodes if n.meta_value("provenance") == "registry"]
    if len(found) > 1:
        log.warning("lineage-tools: several nodes have meta provenance: registry (%s); using %s",
                    ", ".join(found), found[0])
    return found[0] if found else None


AnalyzeFn = Callable[..., ModelLineage]


def upstream_closure(nodes: Sequence[Node], unique_ids: Iterable[str]) -> frozenset[str]:
    """`unique_ids` and every node they depend on, transitively (through `depends_on`).

    >>> a = Node("seed.p.a", "a", "seed", "db.main.a", "db", "main", "a")
    >>> b = Node("model.p.b", "b", "model", "db.main.b", "db", "main", "b", depends_on=("seed.p.a",))
    >>> c = Node("model.p.c", "c", "model", "db.main.c", "db", "main", "c")
    >>> sorted(upstream_closure((a, b, c), ["model.p.b"]))
    ['model.p.b', 'seed.p.a']
    """
    by_id = {n.unique_id: n for n in nodes}
    seen: set[str] = set()
    stack = [u for u in unique_ids if u in by_id]
    while stack:
        uid = stack.pop()
        if uid in seen:
            continue
        seen.add(uid)
        stack.extend(d for d in by_id[uid].depends_on if d in by_id and d not in seen)
    return frozenset(seen)


def analyze_project(
    nodes: Sequence[Node],
    *,
    project_name: str,
    adapter_type: str,
    dialect: str,
    catalog_json: Mapping[str, Any] | None = None,
    time_budget: float | None = None,
    manifest_path: str | None = None,
    analyze: AnalyzeFn = analyze_node,
    progress: Callable[[Node], None] | None = None,
    only: Collection[str] | None = None,
) -> ProjectLineage:
    """Run `analyze` over every model and snapshot in DAG order, growing one catalog as it goes.

    With `only` (unique_ids closed under `depends_on`, see `upstream_closure`), models outside it
    are not analysed: they stay in ``nodes`` but have no lineage."""
    catalog = Catalog(dialect)
    relation_ids: dict[str, str] = {}
    opaque_names: dict[str, str] = {}
    for n in nodes:
        relation_ids.setdefault(n.relation, n.unique_id)
        if n.materialized == "ephemeral":
            opaque_names[f"{EPHEMERAL_PREFIX}{n.identifier}"] = n.relation
            opaque_names[f"{EPHEMERAL_PREFIX}{n.name}"] = n.relation
        if n.is_root_candidate:
            columns, complete = _root_columns(n, catalog_json)
            if columns:
                catalog.add(n.relation, columns, complete=complete)
    by_id = {n.unique_id: n for n in nodes}
    models: list[ModelLineage] = []
    for n in nodes:
        if n.resource_type not in ("model", "snapshot"):
            continue
        if only is not None and n.unique_id not in only:
            continue
        if progress:
            progress(n)
        deps = {by_id[d].relation for d in n.depends_on if d in by_id} if opaque_names else ()
        opaque = {k: v for k, v in opaque_names.items() if v in deps} or None
        ml = analyze(n, catalog, dialect, relation_ids=relation_ids, opaque_ctes=opaque, time_budget=time_budget)
        models.append(ml)
        catalog.add(n.relation, _output_columns(ml, catalog_json), complete=_complete_output(ml, catalog_json))
    return ProjectLineage(
        project_name=project_name,
        adapter_type=adapter_type,
        dialect=dialect,
        nodes=tuple(nodes),
        models=tuple(models),
        registry=_registry(nodes),
        manifest_path=manifest_path,
    )


def _root_columns(n: Node, catalog_json: Mapping[str, Any] | None) -> tuple[tuple[tuple[str, str | None], ...], bool]:
    """A seed's or source's columns and whether they are all of them: a seed's CSV header and
    catalog.json are complete; a source's YAML may list only some."""
    if n.resource_type == "seed":
        return n.columns, True
    found = _catalog_columns(catalog_json, n.unique_id)
    if found:
        types = {c.lower(): t for c, t in n.columns if t}
        return tuple((c, types.get(c.lower()) or t) for c, t in found), True
    return n.columns, False


def _complete_output(ml: ModelLineage, catalog_json: Mapping[str, Any] | None) -> bool:
    """Are a model's columns, as `_output_columns` gives them, all its columns? Yes when its
    lineage named them all (no star left unexpanded, none over a partial column list) or
    catalog.json lists them; a model whose columns come from YAML only may have more."""
    if ml.node.language == "sql" and ml.status != Status.FAILED and ml.lineage.columns and not any(
            r.code is ReasonCode.UNEXPANDED_STAR for r in ml.lineage.reasons):
        return True
    return not ml.node.columns and bool(_catalog_columns(catalog_json, ml.node.unique_id))


def _output_columns(ml: ModelLineage, catalog_json: Mapping[str, Any] | None) -> list[tuple[str, str | None]]:
    """What consumers of a model see: its inferred columns, else YAML, else catalog.json."""
    types = {c.lower(): t for c, t in ml.node.columns}
    types.update({c.lower(): t for c, t in _catalog_columns(catalog_json, ml.node.unique_id) if c.lower() not in types or types[c.lower()] is None})
    cols = [c for c in ml.lineage.columns if c != "*"]  # "*": an unexpanded star's columns
    if not cols or ml.status == Status.FAILED:
        cols = [c for c, _ in ml.node.columns] or [c for c, _ in _catalog_columns(catalog_json, ml.node.unique_id)] or cols
    return [(c, types.get(c.lower())) for c in cols]



# --------------------------------------------------------------------------------------------
# Reading the manifest through the dbt layer, with a digest for warm runs


@dataclass
class _Read:
    """What reading the project gave: its nodes, the dbt session that compiled it in this
    process (if one did: it can render more), and the manifest data (None: from the digest)."""

    nodes: ManifestNodes
    session: Any = None
    manifest: dict[str, Any] | None = None


def _target_identity(cfg: DbtConfig) -> list[Any] | None:
    try:
        t = cfg.target_info
    except UserError:
        return None
    return [t.name, t.adapter_type, t.database, t.schema]


def _digest_key(cfg: DbtConfig, scan: SourceScan) -> str | None:
    """The key of the manifest digest: everything reading the manifest depends on (this tool's
    version and engine, the manifest file, catalog.json, every source file, the target); None
    when the manifest is missing or older than a source file (it is then recompiled, not
    digested)."""
    try:
        st = os.stat(cfg.manifest_path)
    except OSError:
        return None
    if scan.newest > st.st_mtime:
        return None
    parts = ["manifest-digest", tool_version(), str(cfg.project_dir), str(cfg.manifest_path),
             [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev], file_stamp(cfg.catalog_path), scan.fingerprint,
             _target_identity(cfg)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _digest_payload(read: ManifestNodes, cfg: DbtConfig, restored: Iterable[tuple[Path, Any]]) -> dict[str, Any]:
    rules = name_rules(read.dialect)
    return {
        "adapter_type": read.adapter_type,
        "dialect": read.dialect,
        "project_name": read.project_name,
        "name_rules": [rules.keeps_quoted_lower, rules.keeps_plain_lower],
        "relations": {k: list(v) for k, v in read.relation_parts.items()},
        "nodes": nodes_to_json(read.nodes),
        "incremental_raw": dict(read.incremental_raw),
        "introspective": dict(read.introspective),
        "files": digest_files(read, cfg, restored),
    }


def _nodes_of_digest(payload: Mapping[str, Any]) -> ManifestNodes:
    """The `ManifestNodes` of a digest payload (KeyError/TypeError/ValueError when malformed);
    hands its names to `sql` so that reading them needs no sqlglot."""
    quoted, plain = payload["name_rules"]
    relations = {str(k): tuple(str(p) for p in v) for k, v in payload["relations"].items()}
    read = ManifestNodes(
        adapter_type=str(payload["adapter_type"]),
        dialect=str(payload["dialect"]),
        project_name=str(payload["project_name"]),
        nodes=nodes_from_json(payload["nodes"]),
        incremental_raw=dict(payload["incremental_raw"]),
        relation_parts=relations,
        introspective={str(k): str(v) for k, v in payload["introspective"].items()},
    )
    prime_names(NameRules(read.dialect, bool(quoted), bool(plain)), relations)
    return read


def _read(cfg: DbtConfig, *, compile: bool, catalog_json: Mapping[str, Any] | None,
          digest: ManifestDigest | None) -> _Read:
    """The project's nodes: from the digest when nothing changed, else from the manifest (read,
    checked fresh for this project and target, compiled by the dbt layer when it is not)."""
    scan = scan_sources(cfg)
    key = _digest_key(cfg, scan) if digest is not None and digest.enabled else None
    if key is not None:
        payload = digest.get(key)  # type: ignore[union-attr]
        if payload is not None:
            try:
                return _Read(_nodes_of_digest(payload))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.debug("manifest digest: malformed (%s); reading the manifest", exc)
    before = file_stamp(cfg.manifest_path)
    restored: list[tuple[Path, Any]] = []
    try:
        manifest = read_manifest(cfg.manifest_path) if cfg.manifest_path.exists() else None
        problem = manifest_problem(cfg, manifest, scan=scan, restored=restored)
    except ManifestError as exc:  # unreadable, or of another dbt version: dbt writes it again
        manifest, problem = None, str(exc)
    session = None
    if problem is not None:
        if not compile:
            raise ManifestError(f"{problem} (compiling is turned off)")
        from .dbt.runner import compile_project

        restored.clear()  # the new manifest is compiled in full
        manifest, session = compile_project(cfg, problem)
    assert manifest is not None
    nodes = manifest_nodes(manifest, cfg.project_dir, catalog_json, where=cfg.manifest_path, project_name=cfg.name)
    prime_names(name_rules(nodes.dialect), nodes.relation_parts)  # the catalog reads these names again
    if key is not None and before is not None and file_stamp(cfg.manifest_path) == before:
        digest.put(key, _digest_payload(nodes, cfg, restored))  # type: ignore[union-attr]
    return _Read(nodes, session, manifest)


def read_manifest_nodes(cfg: DbtConfig, *, compile: bool = True, catalog_json: Mapping[str, Any] | None = None,
                        digest: ManifestDigest | None = None) -> ManifestNodes:
    """The project's nodes from its manifest (compiled when needed).

    With `digest`, what was read from an unchanged manifest is kept in it, and taken from it
    while the manifest, catalog.json, the source files, the compiled files whose SQL was filled
    in, the seed files, the target and this tool's version stay as they were."""
    read = _read(cfg, compile=compile, catalog_json=catalog_json, digest=digest)
    if read.session is not None:
        read.session.close()
    return read.nodes


# --------------------------------------------------------------------------------------------
# Incremental models: both branches, rendered by dbt once per change


def _render_context(raw: Mapping[str, Any], vars_: Mapping[str, Any], target: Any) -> dict[str, Any]:
    """What a render depends on beyond the model's manifest entry."""
    return {"vars": vars_, "macros": raw.get(MACROS_KEY), "target": target}


def _with_incremental_branches(nodes: Sequence[Node], read: _Read, cfg: DbtConfig,
                               only: Collection[str] | None) -> tuple[tuple[Node, ...], dict[str, str]]:
    """Incremental models whose code tests `is_incremental()`: their full-refresh SQL as compiled
    SQL (whatever state the warehouse was in when dbt compiled) and the incremental branch
    beside it, from ``target/lineage_tools/incremental/`` or rendered by dbt in this process (one
    session for all of them; no warehouse connection). Returns the nodes and, for models whose
    branches could not be rendered, why."""
    raws = read.nodes.incremental_raw
    wanted = [n.unique_id for n in nodes if n.unique_id in raws and (only is None or n.unique_id in only)]
    if not wanted:
        return tuple(nodes), {}
    store = RenderStore.for_cache_dir(cfg.cache_dir)
    got: dict[str, tuple[str, str]] = {}
    misses: dict[str, tuple[str, str]] = {}
    vars_, target = compiled_vars(cfg), _target_identity(cfg)
    for uid in wanted:
        ctx = _render_context(raws[uid], vars_, target)
        keys = (render_key(raws[uid], False, ctx), render_key(raws[uid], True, ctx))
        full, incr = store.get(keys[0]), store.get(keys[1])
        if full is not None and incr is not None:
            got[uid] = (full, incr)
        else:
            misses[uid] = keys
    problems: dict[str, str] = {}
    if misses:  # first from dbt's compiled SQL where that is provably what dbt would render
        from .dbt.branches import ManifestIndex, derive_branches

        manifest = read.manifest if read.manifest is not None else read_manifest(cfg.manifest_path)
        read.manifest = manifest
        index = ManifestIndex(manifest)
        for uid in list(misses):
            derived = derive_branches(manifest["nodes"][uid], index, vars_)
            if derived is not None:
                keys = misses.pop(uid)
                store.put(keys[0], derived[0])
                store.put(keys[1], derived[1])
                got[uid] = derived
    if misses:
        from .dbt.runner import DbtProject

        log.info("lineage-tools: rendering both branches of %d incremental model(s) with dbt", len(misses))
        session = read.session
        try:
            if session is None:
                session = read.session = DbtProject(cfg)
            if session.manifest is None:
                session.load(read.manifest or read_manifest(cfg.manifest_path), only=list(misses))
            rendered = session.render_branches(misses)
        except ManifestError as exc:
            rendered = {}
            problems.update((uid, str(exc)) for uid in misses)
        for uid, b in rendered.items():
            if b.error or b.full_refresh is None or b.incremental is None:
                problems[uid] = b.error or "dbt rendered no SQL"
                continue
            store.put(misses[uid][0], b.full_refresh)
            store.put(misses[uid][1], b.incremental)
            got[uid] = (b.full_refresh, b.incremental)
    out = []
    for n in nodes:
        if n.unique_id in got:
            full, incr = got[n.unique_id]
            n = replace(n, compiled_sql=full or n.compiled_sql, incremental_sql=incr)
        out.append(n)
    return tuple(out), problems


def _with_reason(ml: ModelLineage, code: ReasonCode, message: str) -> ModelLineage:
    """`ml` with one more reason; a FULL model becomes PARTIAL."""
    status = Status.PARTIAL if ml.status == Status.FULL else ml.status
    return replace(ml, lineage=replace(ml.lineage, status=status,
                                       reasons=ml.lineage.reasons + (Reason(code, message),)))


_NO_COLUMNS_MARKERS = ("no columns were returned", "no columns returned from star() macro")
_STAR = re.compile(r"(?<![\w(])\*(?!\s*\))")


def found_no_columns(node: Node) -> bool:
    """Does a model's compiled SQL show that a macro which reads the warehouse found no columns
    (dbt_utils' "No columns were returned" comment, or a ``*`` the model's own code does not
    write)?

    >>> n = Node("model.p.m", "m", "model", "db.main.m", "db", "main", "m", raw_sql="select {{ star(ref('x')) }} from x",
    ...          compiled_sql="select * /* No columns were returned */ from x")
    >>> found_no_columns(n), found_no_columns(replace(n, compiled_sql="select a, b from x"))
    (True, False)
    """
    sql = (node.compiled_sql or "").lower()
    if any(m in sql for m in _NO_COLUMNS_MARKERS):
        return True
    return len(_STAR.findall(node.compiled_sql or "")) > len(_STAR.findall(node.raw_sql or ""))


def _introspection_reason(node: Node, macros: str) -> str:
    return (f"{node.name} calls {macros}, which read(s) the warehouse when dbt compiles it, and found no columns "
            "(its input did not exist yet: compiled before a build); this lineage is not what it will be after a "
            f"build. Run `dbt run --select +{node.name}` (or `dbt build`), then `dbt compile`, and run this again")


# --------------------------------------------------------------------------------------------
# The loaders


def load_project(
    project_dir: Path | str | DbtConfig = ".",
    profiles_dir: Path | str | None = None,
    target: str | None = None,
    *,
    compile: bool = True,
    incremental_branches: bool = True,
    time_budget: float | None = None,
    analyze: AnalyzeFn = analyze_node,
    progress: Callable[[Node], None] | None = None,
    cache: bool = True,
    upstream_of: Callable[[Sequence[Node]], Collection[str]] | None = None,
    vars: str | Mapping[str, Any] | None = None,
) -> ProjectLineage:
    """Lineage of every model of a dbt project, from its manifest (compiled when needed).

    `project_dir` is the project folder or its `DbtConfig`. With `cache`, per-model results are
    kept under ``target/lineage_cache/`` (see `cache.py`), and so is a digest of the manifest.
    With `upstream_of` (the project's nodes -> the unique_ids wanted), only those models and
    the models upstream of them are analysed (or read from the cache): their lineage is the
    same as in a full load; every node is still listed."""
    cfg = project_dir if isinstance(project_dir, DbtConfig) else load_config(project_dir, profiles_dir, target, vars)
    cfg.project  # noqa: B018 - a missing dbt_project.yml is the first error to report
    lineage_cache = LineageCache.for_target(cfg.target_path) if cache else None
    if lineage_cache is not None:
        analyze = lineage_cache.wrap(analyze)
    catalog_json = read_catalog_json(cfg.catalog_path)
    read = _read(cfg, compile=compile, catalog_json=catalog_json,
                 digest=ManifestDigest.for_target(cfg.target_path) if cache else None)
    try:
        nodes = read.nodes.nodes
        only = upstream_closure(nodes, upstream_of(nodes)) if upstream_of is not None else None
        problems: dict[str, str] = {}
        if incremental_branches:
            nodes, problems = _with_incremental_branches(nodes, read, cfg, only)
    finally:
        if read.session is not None:
            read.session.close()
    result = analyze_project(
        nodes,
        project_name=read.nodes.project_name,
        adapter_type=read.nodes.adapter_type,
        dialect=read.nodes.dialect,
        catalog_json=catalog_json,
        time_budget=time_budget,
        manifest_path=str(cfg.manifest_path),
        analyze=analyze,
        progress=progress,
        only=only,
    )
    result = _add_dbt_reasons(result, problems, read.nodes.introspective)
    if lineage_cache is not None:
        log.info("lineage-tools: %s", lineage_cache.summary())
    return result


def _add_dbt_reasons(result: ProjectLineage, not_rendered: Mapping[str, str],
                     introspective: Mapping[str, str]) -> ProjectLineage:
    """What the SQL alone cannot tell: incremental branches dbt could not render, and models
    whose introspective macros found no columns when dbt compiled them."""
    if not not_rendered and not introspective:
        return result
    models = []
    for ml in result.models:
        uid = ml.node.unique_id
        if uid in not_rendered:
            log.warning("lineage-tools: %s: the incremental branch is not known: %s", ml.node.name, not_rendered[uid])
            ml = _with_reason(ml, ReasonCode.NOT_RENDERED,
                              f"the incremental branch (is_incremental() true) could not be rendered: {not_rendered[uid]}")
        if uid in introspective and found_no_columns(ml.node):
            ml = _with_reason(ml, ReasonCode.INTROSPECTIVE, _introspection_reason(ml.node, introspective[uid]))
        models.append(ml)
    return replace(result, models=tuple(models))


def load_graph(config: DbtConfig, select: str | Sequence[str] | None = None, **options: Any) -> Any:
    """The lineage graph of the project `config` names: what every command works on.

    `select` (dbt's selection syntax): only the selected models and what they read are
    analysed (or read from the cache); every node is still listed. `options` go to
    `load_project` (compile, time_budget, progress, upstream_of, cache, incremental_branches)."""
    from .graph import build_graph

    if select:
        from .selection import select_models

        spec = " ".join([select] if isinstance(select, str) else select)
        options.setdefault("upstream_of", lambda nodes: select_models(nodes, spec) or ())
    return build_graph(load_project(config, **options))


def load_base(path: Path | str, fallback_project_dir: Path | str, *,
              progress: Callable[[Node], None] | None = None) -> ProjectLineage:
    """Lineage of another version of the project from its manifest alone (no dbt run, no
    compile, no cache): `path` is its target folder or its manifest.json.

    Seeds' columns come from their files: in that version's checkout when the manifest sits in
    ``<checkout>/target/``, else in `fallback_project_dir`."""
    mpath = Path(path).expanduser()
    if mpath.is_dir():
        if not (mpath / "manifest.json").is_file():
            raise ManifestError(f"{mpath}: no manifest.json in this folder (give the base's target/ folder or its manifest)")
        mpath = mpath / "manifest.json"
    elif not mpath.exists():
        raise ManifestError(f"{mpath}: no such file or folder (give the base's target/ folder or its manifest)")
    manifest = read_manifest(mpath)
    missing = uncompiled(manifest)
    if missing:
        raise ManifestError(f"{mpath}: no compiled SQL for {len(missing)} node(s), e.g. {missing[0]} "
                            "(run `dbt compile` in the base checkout)")
    checkout = mpath.resolve().parent.parent
    project_dir = checkout if (checkout / "dbt_project.yml").is_file() else Path(fallback_project_dir).resolve()
    catalog_json = read_catalog_json(mpath.parent / "catalog.json")
    read = manifest_nodes(manifest, project_dir, catalog_json, where=mpath)
    return analyze_project(read.nodes, project_name=read.project_name, adapter_type=read.adapter_type,
                           dialect=read.dialect, catalog_json=catalog_json, manifest_path=str(mpath),
                           progress=progress)


def is_user_error(exc: BaseException) -> bool:
    """True for errors the CLI reports on one line."""
    return isinstance(exc, UserError)
