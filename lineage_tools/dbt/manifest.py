"""dbt's artifacts, read and checked: the manifest (fresh for THIS project, target and adapter),
its nodes in DAG order, seed files as dbt reads them, and what the warehouse was last built with.

Reads ``target/manifest.json`` (schema v12, dbt 1.8-1.11). A manifest is *fresh* when it exists,
is this project's (``metadata.project_name``), was compiled for this target's adapter (and, for
a DuckDB target, its database file), no source file is newer, it was not written by
``dbt build --empty``, and every SQL model and snapshot has compiled SQL (filled in from
``target/compiled`` after ``dbt compile --select``, see `restore_compiled_sql`).

>>> dialect_for_adapter("databricks")
'databricks'
>>> dialect_for_adapter("sqlserver")
'tsql'
>>> looks_empty_compiled('select * from (select * from "db"."main"."x" where false limit 0)')
True
>>> split_seed_line("a;b;'c;d'", ";")
['a', 'b', "'c", "d'"]
"""

from __future__ import annotations

import contextlib
import csv
import graphlib
import hashlib
import io
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cache import file_stamp
from ..errors import ManifestError, UserError
from ..records import Node
from ..sql import check_dialect, relation_name, relation_parts
from . import artifacts
from .config import DbtConfig

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = "https://schemas.getdbt.com/dbt/manifest/v12.json"

#: dbt adapter type -> sqlglot dialect. Unlisted adapters are tried under their own name.
ADAPTER_DIALECTS: Mapping[str, str] = {
    "duckdb": "duckdb",
    "motherduck": "duckdb",
    "spark": "spark",
    "databricks": "databricks",
    "postgres": "postgres",
    "materialize": "postgres",
    "risingwave": "risingwave",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "redshift": "redshift",
    "trino": "trino",
    "starburst": "trino",
    "presto": "presto",
    "athena": "athena",
    "glue": "spark",
    "clickhouse": "clickhouse",
    "sqlserver": "tsql",
    "fabric": "tsql",
    "synapse": "tsql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "singlestore": "singlestore",
    "oracle": "oracle",
    "teradata": "teradata",
    "sqlite": "sqlite",
    "doris": "doris",
    "starrocks": "starrocks",
    "dremio": "dremio",
    "exasol": "exasol",
    "impala": "hive",
    "hive": "hive",
}

SQL_NODE_TYPES = ("model", "snapshot")
SOURCE_SUFFIXES = (".sql", ".yml", ".yaml", ".csv", ".py")
_EMPTY_REF = re.compile(r"\(\s*select\s+\*\s+from\s+\S+\s+where\s+false\s+limit\s+0\s*\)", re.I)
_IS_INCREMENTAL = re.compile(r"\bis_incremental\s*\(\s*\)")


def dialect_for_adapter(adapter_type: str) -> str:
    """The sqlglot dialect for a dbt adapter type (`DialectError` when sqlglot has none)."""
    return check_dialect(ADAPTER_DIALECTS.get(adapter_type.lower(), adapter_type.lower()))


# --------------------------------------------------------------------------------------------
# Reading


def read_manifest(path: Path) -> dict[str, Any]:
    """Load a manifest; `ManifestError` (one line naming the file, and the field at fault when it
    is JSON of the wrong shape) when it is not a v12 dbt manifest this tool can read."""
    data, problem = artifacts.load(path, artifacts.ARTIFACT_MANIFEST, "manifest")
    if problem is not None:
        if not path.exists():
            raise ManifestError(f"{path}: no manifest (run `dbt compile` or let this tool compile)")
        raise ManifestError(str(problem))
    version = data["metadata"].get("dbt_schema_version")
    if version != MANIFEST_SCHEMA:
        raise ManifestError(
            f"{path}: manifest schema {version or 'unknown'} is not supported (expected {MANIFEST_SCHEMA}, dbt 1.8-1.11)"
        )
    return data


def read_catalog_json(path: Path) -> dict[str, Any] | None:
    """dbt's catalog.json (from `dbt docs generate`) when present and usable; never required: an
    unreadable one, or one of the wrong shape, is ignored with a warning naming the field."""
    if not path.is_file():
        return None
    data, problem = artifacts.load(path, artifacts.ARTIFACT_CATALOG, "catalog")
    if problem is not None:
        log.warning("lineage-tools: ignoring %s", problem)
        return None
    return data


def looks_empty_compiled(sql: str | None) -> bool:
    """True for SQL compiled by `dbt build --empty` (each ref a `where false limit 0` subquery)."""
    return bool(sql) and _EMPTY_REF.search(sql) is not None


def is_enabled(node: Mapping[str, Any]) -> bool:
    return bool((node.get("config") or {}).get("enabled", True))


def sql_nodes(manifest: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The SQL nodes of a manifest whose compiled SQL lineage reads: enabled SQL models and
    snapshots (the one definition every reader uses)."""
    for node in (manifest.get("nodes") or {}).values():
        if node.get("resource_type") in SQL_NODE_TYPES and node.get("language", "sql") == "sql" and is_enabled(node):
            yield node


def uncompiled(manifest: Mapping[str, Any]) -> list[str]:
    """unique_ids of the SQL nodes without compiled SQL."""
    return [n["unique_id"] for n in sql_nodes(manifest) if not n.get("compiled_code")]


def tests_is_incremental(raw: Mapping[str, Any]) -> bool:
    """An incremental SQL model whose code tests `is_incremental()`: it compiles two ways."""
    return bool((raw.get("config") or {}).get("materialized") == "incremental"
                and raw.get("language", "sql") == "sql" and _IS_INCREMENTAL.search(raw.get("raw_code") or ""))


# --------------------------------------------------------------------------------------------
# Freshness


@dataclass(frozen=True)
class SourceScan:
    """The files that change compiled SQL (models, seeds, macros, snapshots, dbt_project.yml):
    the newest one, and a fingerprint of all of them (names, sizes, mtimes: any edit, new or
    deleted file changes it)."""

    newest: float
    which: Path | None
    fingerprint: str
    files: frozenset[str] = frozenset()  # every file scanned, as a path relative to the project


def scan_sources(cfg: DbtConfig) -> SourceScan:
    """One pass over the project's source files (a `stat` each)."""
    newest, which = 0.0, None
    candidates: list[Path] = [cfg.project_dir / "dbt_project.yml"]
    for d in cfg.source_dirs:
        if d.is_dir():
            candidates.extend(p for p in d.rglob("*") if p.suffix in SOURCE_SUFFIXES)
    stamps = []
    files = set()
    for p in candidates:
        try:
            st = p.stat()
        except OSError:
            continue
        stamps.append(f"{p}\x1f{st.st_size}\x1f{st.st_mtime_ns}")
        with contextlib.suppress(ValueError):
            files.add(p.relative_to(cfg.project_dir).as_posix())
        if st.st_mtime > newest:
            newest, which = st.st_mtime, p
    fingerprint = hashlib.sha256("\x1e".join(sorted(stamps)).encode()).hexdigest()
    return SourceScan(newest, which, fingerprint, frozenset(files))


_FILE_TYPES = frozenset(("model", "seed", "snapshot", "macro"))


def gone_file(manifest: Mapping[str, Any], scan: SourceScan, project_dir: Path) -> str | None:
    """A file of the project the manifest was parsed from that is no longer there (a model,
    seed, snapshot or macro deleted or renamed: no mtime says so), or None."""
    project = (manifest.get("metadata") or {}).get("project_name")
    for group in ("nodes", "macros"):
        for node in (manifest.get(group) or {}).values():
            path = node.get("original_file_path")
            if (node.get("resource_type") in _FILE_TYPES and node.get("package_name") == project and path
                    and path not in scan.files and not (project_dir / path).exists()):
                return path
    return None


def target_problem(cfg: DbtConfig, manifest: Mapping[str, Any]) -> str | None:
    """Why the manifest is not this project's, or not compiled for this target; None when it is.

    Checked: the project name, the adapter type, and for a DuckDB target the database (its
    file's name) of the project's own models and seeds. Without a readable profile only the
    project name is checked (reading lineage needs no profile)."""
    meta = manifest.get("metadata") or {}
    project = meta.get("project_name")
    if project and project != cfg.name:
        return f"{cfg.manifest_path} is the manifest of project {project!r}, not of {cfg.name!r}"
    try:
        target = cfg.target_info
    except UserError as exc:  # an unreadable profile: the project check is all we can do
        log.debug("target not checked: %s", exc)
        return None
    adapter = meta.get("adapter_type")
    if target.adapter_type and adapter and adapter.lower() != target.adapter_type:
        return (f"{cfg.manifest_path} was compiled for a {adapter} target, not for {target.describe()}")
    if target.adapter_type == "duckdb" and target.database:
        own = {str(n.get("database")).lower() for n in (manifest.get("nodes") or {}).values()
               if n.get("package_name") == cfg.name and n.get("resource_type") in ("model", "seed", "snapshot")
               and n.get("database")}
        if own and target.database.lower() not in own:
            return (f"{cfg.manifest_path} was compiled for database {sorted(own)[0]!r}, not for "
                    f"{target.describe()} (database {target.database!r})")
    return None


def manifest_problem(cfg: DbtConfig, manifest: Mapping[str, Any] | None, *, scan: SourceScan | None = None,
                     restored: list[tuple[Path, Any]] | None = None) -> str | None:
    """Why the manifest cannot be used as it is, or None when it is fresh and compiled.

    Fills in compiled SQL that `dbt compile --select` left out (see `restore_compiled_sql`;
    the files it came from are appended to `restored`, with their stamps).
    `scan`: `scan_sources(cfg)`, if done."""
    if manifest is None:
        return f"{cfg.manifest_path} is missing"
    problem = target_problem(cfg, manifest)
    if problem:
        return problem
    scan = scan or scan_sources(cfg)
    if scan.newest > cfg.manifest_path.stat().st_mtime:
        return f"{scan.which} is newer than {cfg.manifest_path}"
    gone = gone_file(manifest, scan, cfg.project_dir)
    if gone:
        return f"{gone} is in {cfg.manifest_path} but no longer in the project (deleted or renamed)"
    empty = [n["unique_id"] for n in sql_nodes(manifest) if looks_empty_compiled(n.get("compiled_code"))]
    if empty:
        return f"{cfg.manifest_path} was written by `dbt build --empty` (e.g. {empty[0]})"
    restore_compiled_sql(manifest, cfg.target_path, cfg.project_dir, used=restored)
    missing = uncompiled(manifest)
    if missing:
        return f"{cfg.manifest_path} has no compiled SQL for {len(missing)} node(s), e.g. {missing[0]}"
    return None


# --------------------------------------------------------------------------------------------
# Compiled SQL that dbt left in target/compiled


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def restore_compiled_sql(manifest: dict[str, Any], target_path: Path | str, project_dir: Path | str,
                         used: list[tuple[Path, list[Any] | None]] | None = None) -> int:
    """Fill in, in place, the compiled SQL of nodes the manifest has none for, from the files an
    earlier `dbt compile` left under ``target/compiled/``; returns how many were filled (and
    appends the files it took them from to `used`, each with its `file_stamp` taken before it was
    read: a file written again meanwhile never looks unchanged).

    `dbt compile --select m` writes a manifest with compiled SQL for `m` only: without this, the
    analyst's one-model edit would cost a full compile of the project. A file is used only when
    it is still what dbt would write: newer than the model's own file and than every macro file
    of the project, naming the current relation of each of its dependencies, and newer than the
    files of the ephemeral models it inlines. (SQL that depends on `--vars` given on dbt's
    command line cannot be checked: compile in full after changing them.)
    """
    target_path, project_dir = Path(target_path), Path(project_dir)
    nodes = manifest.get("nodes") or {}
    missing = [n for n in sql_nodes(manifest) if not n.get("compiled_code")]
    if not missing:
        return 0
    project_name = (manifest.get("metadata") or {}).get("project_name")
    macro_times = [_mtime(project_dir / m["original_file_path"]) for m in (manifest.get("macros") or {}).values()
                   if m.get("package_name") == project_name and m.get("original_file_path")]
    newest_macro = max([t for t in macro_times if t is not None] + [_mtime(project_dir / "dbt_project.yml") or 0.0])
    restored = 0
    for node in missing:
        compiled = target_path / "compiled" / node.get("package_name", "") / node.get("original_file_path", "")
        c_time = _mtime(compiled)
        src_time = _mtime(project_dir / node.get("original_file_path", ""))
        if c_time is None or src_time is None or c_time < src_time or c_time < newest_macro:
            continue
        stamp = file_stamp(compiled) if used is not None else None
        try:
            sql = compiled.read_text(encoding="utf-8")
        except OSError:
            continue
        if _deps_unchanged(node, nodes, sql, c_time, project_dir):
            node["compiled_code"] = sql
            restored += 1
            if used is not None:
                used.append((compiled, stamp))
    if restored:
        log.info("lineage-tools: compiled SQL of %d node(s) taken from %s (the manifest had none)",
                 restored, target_path / "compiled")
    return restored


def _deps_unchanged(node: Mapping[str, Any], nodes: Mapping[str, Any], sql: str, c_time: float,
                    project_dir: Path, depth: int = 0) -> bool:
    for uid in (node.get("depends_on") or {}).get("nodes") or ():
        dep = nodes.get(uid)
        if dep is None:
            continue  # a source: its relation is checked like a model's below when it has one
        if (dep.get("config") or {}).get("materialized") == "ephemeral":
            dep_time = _mtime(project_dir / dep.get("original_file_path", ""))
            if dep_time is None or dep_time > c_time or depth > 20:
                return False
            if not _deps_unchanged(dep, nodes, sql, c_time, project_dir, depth + 1):
                return False
        elif dep.get("relation_name") and dep["relation_name"] not in sql:
            return False
    return True


# --------------------------------------------------------------------------------------------
# Seeds, read as dbt reads them


def split_seed_line(line: str, delimiter: str = ",") -> list[str]:
    """One CSV line split as dbt's seed reader splits it (Python's csv, `delimiter`)."""
    return next(csv.reader(io.StringIO(line), delimiter=delimiter), [])


def seed_path(node: Node | Mapping[str, Any], project_dir: Path) -> Path | None:
    path = node.original_file_path if isinstance(node, Node) else node.get("original_file_path")
    if not path:
        return None
    root = None if isinstance(node, Node) else node.get("root_path")
    return Path(root or project_dir) / path


def seed_delimiter(node: Node | Mapping[str, Any]) -> str:
    """The seed's `delimiter` config (dbt's default: a comma)."""
    if isinstance(node, Node):
        return dict(node.config).get("delimiter") or ","
    return (node.get("config") or {}).get("delimiter") or ","


def read_seed(path: Path, delimiter: str = ",") -> Iterator[list[str]]:
    """The rows of a seed file as dbt reads them: UTF-8, a leading BOM dropped, the seed's
    delimiter (header first). `OSError` / `UnicodeDecodeError` when it cannot be read."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        yield from csv.reader(fh, delimiter=delimiter)


def seed_holds(node: Node, project_dir: Path, column: str, values: Iterable[str]) -> bool | None:
    """Does the seed's file hold a row whose `column` is one of `values`? None when the node is
    no seed or its file cannot be read."""
    if node.resource_type != "seed":
        return None
    path = seed_path(node, project_dir)
    if path is None:
        return None
    wanted = set(values)
    try:
        rows = read_seed(path, seed_delimiter(node))
        header = next(rows, [])
        idx = next((i for i, f in enumerate(header) if f.strip().lower() == column.lower()), None)
        if idx is None:
            return False
        return any(len(r) > idx and r[idx].strip() in wanted for r in rows)
    except (OSError, UnicodeDecodeError):
        return None


# --------------------------------------------------------------------------------------------
# Manifest -> Nodes


#: Columns dbt adds to every snapshot (dbt 1.11 defaults; `snapshot_meta_column_names` renames).
SNAPSHOT_META_COLUMNS = ("dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to")


def _relation(raw: Mapping[str, Any], dialect: str) -> str:
    return relation_name(node_relation_parts(raw, dialect), dialect)


def node_relation_parts(raw: Mapping[str, Any], dialect: str) -> tuple[str, ...]:
    """The normalized parts of a node's relation (`sql.relation_parts` reads its name back as
    these parts)."""
    rel = raw.get("relation_name")
    if rel:
        return relation_parts(rel, dialect)
    # Ephemeral models have no relation: give them a name of their own, so that lineage goes
    # through them as nodes.
    parts = [p for p in (raw.get("database"), raw.get("schema"), raw.get("alias") or raw.get("name")) if p]
    return tuple(str(p).lower() for p in parts)


def _seed_columns(raw: Mapping[str, Any], project_dir: Path) -> tuple[tuple[str, str | None], ...]:
    """A seed's columns: its file's header (read as dbt reads it), typed by `column_types`."""
    config = raw.get("config") or {}
    path = seed_path(raw, project_dir)
    try:
        header = next(read_seed(path, seed_delimiter(raw)), []) if path else []
    except (OSError, UnicodeDecodeError):
        log.warning("lineage-tools: %s: cannot read seed file %s", raw.get("unique_id"), path)
        header = [c for c in (raw.get("columns") or {})]
    types = {k.lower(): v for k, v in (config.get("column_types") or {}).items()}
    declared = {k.lower(): (v or {}).get("data_type") for k, v in (raw.get("columns") or {}).items()}
    return tuple((c.strip(), types.get(c.strip().lower()) or declared.get(c.strip().lower())) for c in header)


def _declared_columns(raw: Mapping[str, Any]) -> tuple[tuple[str, str | None], ...]:
    return tuple((c.get("name") or k, c.get("data_type")) for k, c in (raw.get("columns") or {}).items())


def catalog_columns(catalog_json: Mapping[str, Any] | None, uid: str) -> tuple[tuple[str, str | None], ...]:
    """A node's columns in dbt's catalog.json (in order), or ()."""
    if not catalog_json:
        return ()
    entry = (catalog_json.get("nodes") or {}).get(uid) or (catalog_json.get("sources") or {}).get(uid)
    if not entry:
        return ()
    cols = sorted((entry.get("columns") or {}).values(), key=lambda c: c.get("index") or 0)
    return tuple((c["name"], c.get("type")) for c in cols)


def _meta(raw: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    meta = dict(raw.get("meta") or {})
    meta.update((raw.get("config") or {}).get("meta") or {})
    return tuple(sorted((str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in meta.items()))


#: Config values lineage and its readers need (snapshot strategy, unique keys, seed delimiter).
CONFIG_KEYS = ("strategy", "unique_key", "updated_at", "check_cols", "hard_deletes", "snapshot_meta_column_names",
               "incremental_strategy", "delimiter")


def _config_items(raw: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The `CONFIG_KEYS` values of a node, as strings (a comma delimiter, the default, left out)."""
    config = raw.get("config") or {}
    out = []
    for k in CONFIG_KEYS:
        v = config.get(k)
        if v in (None, "", [], {}) or (k == "delimiter" and v == ","):
            continue
        out.append((k, v if isinstance(v, str) else json.dumps(v)))
    return tuple(out)


def node_from_manifest(raw: Mapping[str, Any], dialect: str, project_dir: Path,
                       catalog_json: Mapping[str, Any] | None = None) -> Node:
    """One manifest entry (model, seed, snapshot or source) as a `records.Node`."""
    rtype = raw["resource_type"]
    if rtype == "seed":
        columns = _seed_columns(raw, project_dir)
    elif rtype == "source":
        columns = _declared_columns(raw) or catalog_columns(catalog_json, raw["unique_id"])
    else:
        columns = _declared_columns(raw)
    config = raw.get("config") or {}
    return Node(
        unique_id=raw["unique_id"],
        name=raw["name"],
        resource_type=rtype,
        relation=_relation(raw, dialect),
        database=raw.get("database"),
        schema=raw.get("schema"),
        identifier=raw.get("identifier") or raw.get("alias") or raw["name"],
        original_file_path=raw.get("original_file_path"),
        materialized=config.get("materialized") if rtype != "source" else None,
        language=raw.get("language") or "sql",
        compiled_sql=raw.get("compiled_code"),
        raw_sql=raw.get("raw_code"),
        depends_on=tuple((raw.get("depends_on") or {}).get("nodes") or ()),
        columns=columns,
        meta=_meta(raw),
        tags=tuple(raw.get("tags") or ()),
        package_name=raw.get("package_name"),
        source_name=raw.get("source_name"),
        config=_config_items(raw),
        relation_name=raw.get("relation_name"),
    )


def dag_order(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Enabled seeds, sources, models and snapshots of the manifest, each after the nodes it
    depends on (the one walk of dbt's DAG); `ManifestError` on a cycle."""
    raw: dict[str, dict[str, Any]] = {}
    for n in (manifest.get("nodes") or {}).values():
        if n.get("resource_type") in ("model", "seed", "snapshot") and is_enabled(n):
            raw[n["unique_id"]] = n
    for s in (manifest.get("sources") or {}).values():
        if is_enabled(s):
            raw[s["unique_id"]] = s
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for uid in sorted(raw):
        deps = [d for d in (raw[uid].get("depends_on") or {}).get("nodes") or () if d in raw and d != uid]
        sorter.add(uid, *sorted(deps))
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as exc:
        raise ManifestError(f"dependency cycle between nodes: {' -> '.join(exc.args[1])}") from exc
    return [raw[uid] for uid in order]


def nodes_in_dag_order(manifest: Mapping[str, Any], dialect: str, project_dir: Path,
                       catalog_json: Mapping[str, Any] | None = None) -> tuple[Node, ...]:
    """Seeds, sources, models and snapshots of the manifest as `Node`s, in DAG order."""
    return tuple(node_from_manifest(raw, dialect, project_dir, catalog_json) for raw in dag_order(manifest))


@dataclass(frozen=True)
class ManifestNodes:
    """What lineage takes from the manifest: the nodes in DAG order and the project's setting."""

    adapter_type: str
    dialect: str
    project_name: str
    nodes: tuple[Node, ...]
    incremental_raw: Mapping[str, Mapping[str, Any]]  # manifest entries of models testing is_incremental()
    relation_parts: Mapping[str, tuple[str, ...]]  # each node's relation -> its normalized parts
    introspective: Mapping[str, str] = field(default_factory=dict)  # SQL node -> the introspective macros it calls


def manifest_nodes(manifest: Mapping[str, Any], project_dir: Path, catalog_json: Mapping[str, Any] | None,
                   *, where: Path | str = "manifest", project_name: str | None = None) -> ManifestNodes:
    """The `ManifestNodes` of a manifest (`where` names it in errors)."""
    adapter = manifest["metadata"].get("adapter_type")
    if not adapter:
        raise ManifestError(f"{where}: no adapter_type in metadata")
    dialect = dialect_for_adapter(adapter)
    ordered = dag_order(manifest)
    nodes = tuple(node_from_manifest(raw, dialect, project_dir, catalog_json) for raw in ordered)
    parts = {n.relation: node_relation_parts(raw, dialect) for n, raw in zip(nodes, ordered)}
    macros = Macros(manifest.get("macros") or {})
    return ManifestNodes(
        adapter_type=adapter,
        dialect=dialect,
        project_name=manifest["metadata"].get("project_name") or project_name or project_dir.name,
        nodes=nodes,
        incremental_raw={raw["unique_id"]: {**raw, MACROS_KEY: macros.fingerprint(raw)}
                         for raw in ordered if tests_is_incremental(raw)},
        relation_parts=parts,
        introspective={raw["unique_id"]: names for raw in ordered
                       if raw.get("resource_type") in SQL_NODE_TYPES and (names := macros.introspective(raw))},
    )


#: Key under which an incremental model's manifest entry carries `Macros.fingerprint`.
MACROS_KEY = "_lineage_tools_macros"

# Macros whose SQL queries the warehouse when it runs (introspection), by what they call.
_INTROSPECTION = re.compile(
    r"\b(?:get_columns_in_relation|get_relation|get_missing_columns|run_query|load_result|"
    r"get_column_values|get_filtered_columns_in_relation)\s*\(|adapter\.execute\b|\{%-?\s*call\s+statement\b")
# ... except those that `is_incremental()` and materializations use: this tool forces is_incremental().
_NOT_FOLLOWED = frozenset({"macro.dbt.is_incremental", "macro.dbt.should_full_refresh", "macro.dbt.load_relation",
                           "macro.dbt.load_cached_relation"})


class Macros:
    """The macros of a manifest, for what a node's SQL depends on through them."""

    def __init__(self, macros: Mapping[str, Mapping[str, Any]]):
        self.macros = macros
        self._closure: dict[str, frozenset[str]] = {}

    def closure(self, raw: Mapping[str, Any]) -> frozenset[str]:
        """The macros a node calls, directly or through other macros."""
        seen: set[str] = set()
        stack = list((raw.get("depends_on") or {}).get("macros") or ())
        while stack:
            uid = stack.pop()
            if uid in seen or uid in _NOT_FOLLOWED:
                continue
            seen.add(uid)
            stack.extend((self.macros.get(uid, {}).get("depends_on") or {}).get("macros") or ())
        return frozenset(seen)

    def fingerprint(self, raw: Mapping[str, Any]) -> str:
        """A hash of the SQL of every macro the node calls (a macro edit changes it)."""
        h = hashlib.sha256()
        for uid in sorted(self.closure(raw)):
            h.update(f"{uid}\x1e{self.macros.get(uid, {}).get('macro_sql', '')}\0".encode())
        return h.hexdigest()[:24]

    def introspective(self, raw: Mapping[str, Any]) -> str:
        """The macros a node calls that read the warehouse, directly or through other macros,
        named as the model's code calls them ('' for none): their SQL depends on what the
        warehouse holds when dbt compiles the node."""
        names = []
        for uid in (raw.get("depends_on") or {}).get("macros") or ():
            if uid in _NOT_FOLLOWED:
                continue
            reach = self.closure({"depends_on": {"macros": [uid]}})
            if any(_INTROSPECTION.search(self.macros.get(m, {}).get("macro_sql") or "") for m in reach):
                package, name = uid.split(".")[1], uid.split(".")[-1]
                names.append(name if package in ("dbt", raw.get("package_name")) else f"{package}.{name}")
        return ", ".join(sorted(set(names)))


# --------------------------------------------------------------------------------------------
# What the warehouse was last built with (run_results.json)

#: dbt commands whose run_results.json describe how the models in the warehouse were built.
BUILD_COMMANDS = ("build", "run")


@dataclass(frozen=True)
class BuildState:
    """The last `dbt build` / `dbt run` of a target: the ``--vars`` it was given."""

    vars: Mapping[str, Any]
    target: str  # the target it ran on (the profile's default when none was given)
    generated_at: str
    command: str  # as dbt recorded it (`invocation_command`), or `dbt <which>`

    def to_json(self) -> dict[str, Any]:
        return {"vars": dict(self.vars), "target": self.target, "generated_at": self.generated_at,
                "command": self.command}


def _state_file(cfg: DbtConfig) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", cfg.target_name)
    return cfg.cache_dir / f"last_build.{safe}.json"


def last_build(cfg: DbtConfig) -> BuildState | None:
    """What the warehouse of this target was last built with, or None when unknown.

    Read from ``target/run_results.json`` when it comes from a build or run of this target, and
    remembered under ``target/lineage_tools/`` (a later `dbt compile`, `dbt test` or `dbt seed`
    rewrites run_results.json without saying how the models were built). run_results.json is
    parsed only when it changed since the last look (it holds every node's SQL: megabytes)."""
    try:
        target = cfg.target_name
        default = cfg.default_target
    except UserError as exc:  # no readable profile: nothing to match a build against
        log.debug("no last build: %s", exc)
        return None
    path = _state_file(cfg)
    try:
        remembered = json.loads(path.read_text(encoding="utf-8"))
        known = remembered.get("state")
        state = BuildState(dict(known["vars"]), str(known["target"]), str(known["generated_at"]),
                           str(known["command"])) if known else None
        seen = remembered.get("seen")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        state, seen = None, None
    stamp = file_stamp(cfg.run_results_path)
    if stamp is None or stamp == seen:
        return state
    data, problem = artifacts.load(cfg.run_results_path, artifacts.ARTIFACT_RUN_RESULTS, "run results file")
    if problem is not None:
        log.warning("lineage-tools: ignoring %s (how the warehouse was last built is unknown)", problem)
        data = {}
    try:
        args = data.get("args") or {}
        if args.get("which") in BUILD_COMMANDS and (args.get("target") or default) == target:
            vars_ = args.get("vars") or {}
            state = BuildState(vars_ if isinstance(vars_, dict) else {}, target,
                               str((data.get("metadata") or {}).get("generated_at") or ""),
                               str(args.get("invocation_command") or f"dbt {args.get('which')}"))
    except (OSError, ValueError, AttributeError):
        pass
    _remember(path, {"seen": stamp, "state": state.to_json() if state else None})
    return state


def _remember(path: Path, data: Mapping[str, Any]) -> None:
    """Write the remembered build state atomically (best effort)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        log.debug("cannot remember the last build: %s", exc)
        tmp.unlink(missing_ok=True)


def compiled_vars(cfg: DbtConfig) -> dict[str, Any]:
    """The ``--vars`` to compile with: the ones this command was given, else those the
    warehouse was last built with (so the manifest describes what is in the warehouse)."""
    if cfg.vars is not None:
        return dict(cfg.vars)
    state = last_build(cfg)
    return dict(state.vars) if state else {}


def digest_files(read: ManifestNodes, cfg: DbtConfig, restored: Iterable[tuple[Path, Any]]) -> list[list[Any]]:
    """The files a digest of `read` depends on beyond the manifest: restored compiled files and
    seed files, with their stamps."""
    seeds = [p for p in (seed_path(n, cfg.project_dir) for n in read.nodes if n.resource_type == "seed") if p]
    files = [*restored, *((p, file_stamp(p)) for p in seeds)]
    return [[str(p), stamp] for p, stamp in files]
