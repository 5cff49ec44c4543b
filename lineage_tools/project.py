"""dbt's artifacts in: the manifest (compiled when missing or stale), seeds, sources, profiles.

Reads ``target/manifest.json`` (schema v12, dbt 1.11) and turns it into `records.Node`s in DAG
order, builds a `sql.Catalog` of seeds (CSV header + ``column_types``) and sources (YAML
columns, else ``catalog.json``), then runs the per-statement engine over every model in DAG
order, adding each model's inferred output columns to the catalog before its consumers.

dbt itself is imported lazily (it costs ~3 s): only when the manifest must be (re)compiled,
or when an incremental model's two branches are not in this tool's cache yet.

>>> dialect_for_adapter("databricks")
'databricks'
>>> dialect_for_adapter("sqlserver")
'tsql'
>>> looks_empty_compiled('select * from (select * from "db"."main"."x" where false limit 0)')
True
"""

from __future__ import annotations

import contextlib
import csv
import functools
import graphlib
import hashlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .cache import (
    LineageCache,
    ManifestDigest,
    file_stamp,
    nodes_from_json,
    nodes_to_json,
    restore_compiled_sql,
    tool_version,
)
from .errors import ManifestError, ProjectError, SqlError, UserError
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
from .sql import (
    Catalog,
    NameRules,
    check_dialect,
    name_rules,
    prime_names,
    relation_name,
    relation_parts,
)

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

#: Columns dbt adds to every snapshot (dbt 1.11 defaults; `snapshot_meta_column_names` renames).
SNAPSHOT_META_COLUMNS = ("dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to")

EPHEMERAL_PREFIX = "__dbt__cte__"

_EMPTY_REF = re.compile(r"\(\s*select\s+\*\s+from\s+\S+\s+where\s+false\s+limit\s+0\s*\)", re.I)
_IS_INCREMENTAL = re.compile(r"\bis_incremental\s*\(\s*\)")
_THIS = re.compile(r"\{\{\s*this\s*\}\}")
_JINJA_ALIAS = re.compile(r"\bas\s+(\w*)\{\{[^}]*\}\}(\w*)", re.I)

# Files under these dbt_project.yml keys change compiled SQL: newer than the manifest = stale.
_SOURCE_PATH_KEYS = {
    "model-paths": ["models"],
    "seed-paths": ["seeds"],
    "macro-paths": ["macros"],
    "snapshot-paths": ["snapshots"],
}
_SOURCE_SUFFIXES = (".sql", ".yml", ".yaml", ".csv", ".py")


# --------------------------------------------------------------------------------------------
# Locating the project, its profiles and its manifest


@dataclass(frozen=True)
class ProjectConfig:
    """Where a dbt project's pieces are, resolved the way dbt resolves them."""

    project_dir: Path
    profiles_dir: Path
    target: str | None
    name: str
    target_path: Path
    source_dirs: tuple[Path, ...]

    @property
    def manifest_path(self) -> Path:
        return self.target_path / "manifest.json"

    @property
    def catalog_path(self) -> Path:
        return self.target_path / "catalog.json"

    @property
    def cache_dir(self) -> Path:
        """This tool's own scratch folder inside dbt's target folder."""
        return self.target_path / "lineage_tools"


def resolve_profiles_dir(project_dir: Path, profiles_dir: Path | str | None = None) -> Path:
    """dbt's rule: `--profiles-dir`, else `DBT_PROFILES_DIR`, else the project folder if it has a
    profiles.yml, else ``~/.dbt``."""
    if profiles_dir:
        return Path(profiles_dir).expanduser().resolve()
    env = os.environ.get("DBT_PROFILES_DIR")
    if env:
        return Path(env).expanduser().resolve()
    if (project_dir / "profiles.yml").is_file():
        return project_dir
    return Path.home() / ".dbt"


def _yaml_load(path: Path) -> Any:
    import yaml  # dbt's own dependency; cheap to import

    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's when present, as dbt reads YAML
        return yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ProjectError(f"{path}: cannot read YAML ({_one_line(exc)})") from exc


def project_config(
    project_dir: Path | str = ".", profiles_dir: Path | str | None = None, target: str | None = None
) -> ProjectConfig:
    """Read ``dbt_project.yml``; raise `ProjectError` when there is none."""
    project_dir = Path(project_dir).expanduser().resolve()
    yml = project_dir / "dbt_project.yml"
    if not yml.is_file():
        raise ProjectError(f"{yml}: no dbt_project.yml here (use --project-dir)")
    data = _yaml_load(yml)
    if not isinstance(data, dict):
        raise ProjectError(f"{yml}: not a YAML mapping")
    target_path = os.environ.get("DBT_TARGET_PATH") or _plain(data.get("target-path")) or "target"
    dirs: list[Path] = []
    for key, default in _SOURCE_PATH_KEYS.items():
        for rel in data.get(key) or default:
            if _plain(rel):
                dirs.append(project_dir / str(rel))
    return ProjectConfig(
        project_dir=project_dir,
        profiles_dir=resolve_profiles_dir(project_dir, profiles_dir),
        target=target,
        name=str(data.get("name") or project_dir.name),
        target_path=(project_dir / str(target_path)).resolve(),
        source_dirs=tuple(dirs),
    )


def _plain(value: Any) -> str | None:
    """A YAML value usable as a path: a string without Jinja."""
    return value if isinstance(value, str) and "{{" not in value else None


def _one_line(exc: BaseException | str) -> str:
    text = " ".join(str(exc).split())
    return text[:400] + ("..." if len(text) > 400 else "")


# --------------------------------------------------------------------------------------------
# Reading and checking the manifest


def read_manifest(path: Path) -> dict[str, Any]:
    """Load a manifest; `ManifestError` (naming the file) when it is not a v12 dbt manifest."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ManifestError(f"{path}: no manifest (run `dbt compile` or let this tool compile)") from exc
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not JSON or truncated ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict) or "nodes" not in data:
        raise ManifestError(f"{path}: not a dbt manifest (no metadata/nodes)")
    version = data["metadata"].get("dbt_schema_version")
    if version != MANIFEST_SCHEMA:
        raise ManifestError(
            f"{path}: manifest schema {version or 'unknown'} is not supported (expected {MANIFEST_SCHEMA}, dbt 1.8-1.11)"
        )
    return data


def looks_empty_compiled(sql: str | None) -> bool:
    """True for SQL compiled by `dbt build --empty` (each ref a `where false limit 0` subquery)."""
    return bool(sql) and _EMPTY_REF.search(sql) is not None


def _sql_nodes(manifest: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") in ("model", "snapshot") and node.get("language", "sql") == "sql":
            if node.get("config", {}).get("enabled", True):
                yield node


@dataclass(frozen=True)
class SourceScan:
    """The files that change compiled SQL (models, seeds, macros, snapshots, dbt_project.yml):
    the newest one, and a fingerprint of all of them (names, sizes, mtimes: any edit, new or
    deleted file changes it)."""

    newest: float
    which: Path | None
    fingerprint: str


def scan_sources(cfg: ProjectConfig) -> SourceScan:
    """One pass over the project's source files (a `stat` each)."""
    newest, which = 0.0, None
    candidates: list[Path] = [cfg.project_dir / "dbt_project.yml"]
    for d in cfg.source_dirs:
        if d.is_dir():
            candidates.extend(p for p in d.rglob("*") if p.suffix in _SOURCE_SUFFIXES)
    stamps = []
    for p in candidates:
        try:
            st = p.stat()
        except OSError:
            continue
        stamps.append(f"{p}\x1f{st.st_size}\x1f{st.st_mtime_ns}")
        if st.st_mtime > newest:
            newest, which = st.st_mtime, p
    fingerprint = hashlib.sha256("\x1e".join(sorted(stamps)).encode()).hexdigest()
    return SourceScan(newest, which, fingerprint)


def manifest_problem(cfg: ProjectConfig, manifest: Mapping[str, Any] | None, *,
                     scan: SourceScan | None = None,
                     restored: list[tuple[Path, Any]] | None = None) -> str | None:
    """Why the manifest cannot be used as it is, or None when it is fresh and compiled.

    Fills in compiled SQL that `dbt compile --select` left out (see `cache.restore_compiled_sql`;
    the files it came from are appended to `restored`, with their stamps).
    `scan`: `scan_sources(cfg)`, if done."""
    if manifest is None:
        return f"{cfg.manifest_path} is missing"
    scan = scan or scan_sources(cfg)
    if scan.newest > cfg.manifest_path.stat().st_mtime:
        return f"{scan.which} is newer than {cfg.manifest_path}"
    empty = [n["unique_id"] for n in _sql_nodes(manifest) if looks_empty_compiled(n.get("compiled_code"))]
    if empty:
        return f"{cfg.manifest_path} was written by `dbt build --empty` (e.g. {empty[0]})"
    # fills in, after `dbt compile --select`
    restore_compiled_sql(manifest, cfg.target_path, cfg.project_dir, used=restored)
    uncompiled = [n["unique_id"] for n in _sql_nodes(manifest) if not n.get("compiled_code")]
    if uncompiled:
        return f"{cfg.manifest_path} has no compiled SQL for {len(uncompiled)} node(s), e.g. {uncompiled[0]}"
    return None


# --------------------------------------------------------------------------------------------
# dbt in-process (lazy import)


def _dbt_args(cfg: ProjectConfig, *extra: str) -> list[str]:
    args = [*extra, "--project-dir", str(cfg.project_dir), "--profiles-dir", str(cfg.profiles_dir)]
    if cfg.target:
        args += ["--target", cfg.target]
    return args


def _invoke_dbt(args: list[str], manifest: Any = None, *, quiet: bool = False) -> Any:
    """Run dbt in-process; its console output goes to stderr (stdout is for our data), or
    nowhere when `quiet`."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    try:
        from dbt.cli.main import dbtRunner
    except ImportError as exc:  # pragma: no cover - dbt is a dependency
        raise ManifestError(f"dbt is not installed, cannot compile ({exc})") from exc
    project_dir = args[args.index("--project-dir") + 1]
    # dbt resolves relative paths in profiles (e.g. a DuckDB file) against the working folder:
    # run it from the project folder, as a user would.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull if quiet else sys.stderr), \
            contextlib.chdir(project_dir):
        return dbtRunner(manifest=manifest).invoke(args)


def _dbt_failure(res: Any) -> str:
    if res.exception is not None:
        return _one_line(res.exception)
    results = getattr(res.result, "results", None) or []
    for r in results:
        if str(getattr(r, "status", "")).lower() in ("error", "fail", "runtimeerror"):
            return _one_line(f"{getattr(r.node, 'unique_id', '?')}: {r.message}")
    return "dbt reported a failure"


def compile_project(cfg: ProjectConfig, reason: str) -> dict[str, Any]:
    """`dbt compile` in-process into the project's target folder; returns the new manifest."""
    log.warning("lineage-tools: %s; compiling with dbt (dbt compile)", reason)
    res = _invoke_dbt(_dbt_args(cfg, "compile", "--quiet"))
    if not res.success:
        failure = _dbt_failure(res)
        if "codec can't decode" in failure:
            bad = next(iter(_non_utf8_files(cfg)), None)
            if bad is not None:
                raise ManifestError(f"{bad}: not UTF-8 text, dbt cannot read it ({failure})")
        raise ManifestError(f"{cfg.manifest_path}: dbt compile failed: {failure}")
    return read_manifest(cfg.manifest_path)


def _non_utf8_files(cfg: ProjectConfig) -> Iterable[Path]:
    """Project files dbt reads (models, seeds, macros, snapshots) that are not UTF-8."""
    for d in cfg.source_dirs:
        if not d.is_dir():
            continue
        for p in sorted(d.rglob("*")):
            if p.suffix in _SOURCE_SUFFIXES and p.is_file():
                try:
                    p.read_bytes().decode("utf-8")
                except UnicodeDecodeError:
                    yield p
                except OSError:
                    continue


def load_manifest(cfg: ProjectConfig, *, compile: bool = True, scan: SourceScan | None = None,
                  restored: list[tuple[Path, Any]] | None = None) -> dict[str, Any]:
    """The project's manifest with compiled SQL for every SQL node, compiling when needed.

    `restored` collects the files of ``target/compiled`` whose SQL was filled in (see
    `manifest_problem`); `scan`: `scan_sources(cfg)`, if done."""
    manifest: dict[str, Any] | None = None
    if cfg.manifest_path.exists():
        manifest = read_manifest(cfg.manifest_path)
    problem = manifest_problem(cfg, manifest, scan=scan, restored=restored)
    if problem is None:
        return manifest  # type: ignore[return-value]
    if not compile:
        raise ManifestError(f"{problem} (compiling is turned off)")
    if restored is not None:
        restored.clear()  # the new manifest is compiled in full
    return compile_project(cfg, problem)


class _IncrementalCompiler:
    """Renders an incremental model's raw code with `is_incremental()` forced true and false,
    through dbt's `compile --inline` (one parse for all models), cached on disk by content."""

    def __init__(self, cfg: ProjectConfig):
        self.cfg = cfg
        self._manifest_obj: Any = None
        self._broken = False

    def _key(self, node: Mapping[str, Any], branch: bool) -> Path:
        h = hashlib.sha256()
        for part in (node.get("raw_code") or "", node.get("relation_name") or "", str(branch),
                     node.get("compiled_code") or "", json.dumps(node.get("depends_on"), sort_keys=True)):
            h.update(part.encode())
            h.update(b"\0")
        return self.cfg.cache_dir / "incremental" / f"{h.hexdigest()[:32]}.sql"

    def render(self, node: Mapping[str, Any], branch: bool) -> str | None:
        path = self._key(node, branch)
        if path.exists():
            return path.read_text(encoding="utf-8")
        if self._broken:
            return None
        sql = self._compile(node, branch)
        if sql is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(sql, encoding="utf-8")
            tmp.replace(path)
        return sql

    def _compile(self, node: Mapping[str, Any], branch: bool) -> str | None:
        private = str(self.cfg.cache_dir / "dbt-target")
        if self._manifest_obj is None:
            log.info("lineage-tools: compiling incremental branches of incremental models with dbt")
            res = _invoke_dbt(_dbt_args(self.cfg, "parse", "--quiet", "--target-path", private), quiet=True)
            if not res.success:
                log.warning("lineage-tools: dbt parse failed, incremental-only lineage not checked: %s",
                            _dbt_failure(res))
                self._broken = True
                return None
            self._manifest_obj = res.result
        raw = _IS_INCREMENTAL.sub("true" if branch else "false", node.get("raw_code") or "")
        raw = _THIS.sub(lambda _m: node.get("relation_name") or "", raw)
        res = _invoke_dbt(_dbt_args(self.cfg, "compile", "--quiet", "--target-path", private, "--inline", raw),
                          manifest=self._manifest_obj, quiet=True)
        if not res.success or not getattr(res.result, "results", None):
            log.warning("lineage-tools: %s: cannot compile the %s branch: %s", node.get("unique_id"),
                        "incremental" if branch else "full-refresh", _dbt_failure(res))
            return None
        return res.result.results[0].node.compiled_code


# --------------------------------------------------------------------------------------------
# Manifest -> Nodes


def dialect_for_adapter(adapter_type: str) -> str:
    """The sqlglot dialect for a dbt adapter type (`DialectError` when sqlglot has none)."""
    return check_dialect(ADAPTER_DIALECTS.get(adapter_type.lower(), adapter_type.lower()))


def _relation(raw: Mapping[str, Any], dialect: str) -> str:
    return relation_name(_relation_parts(raw, dialect), dialect)


def _relation_parts(raw: Mapping[str, Any], dialect: str) -> tuple[str, ...]:
    """The normalized parts of a node's relation (`_relation` joins them; `sql.relation_parts`
    reads that name back as these parts)."""
    rel = raw.get("relation_name")
    if rel:
        return relation_parts(rel, dialect)
    # Ephemeral models have no relation: give them a name of their own, so that lineage goes
    # through them as nodes.
    parts = [p for p in (raw.get("database"), raw.get("schema"), raw.get("alias") or raw.get("name")) if p]
    return tuple(str(p).lower() for p in parts)


def _seed_columns(raw: Mapping[str, Any], project_dir: Path) -> tuple[tuple[str, str | None], ...]:
    """A seed's columns: its CSV header, typed by `column_types`."""
    root = Path(raw.get("root_path") or project_dir)
    path = root / raw.get("original_file_path", "")
    config = raw.get("config") or {}
    delimiter = config.get("delimiter") or ","
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh, delimiter=delimiter), [])
    except OSError:
        log.warning("lineage-tools: %s: cannot read seed file %s", raw.get("unique_id"), path)
        header = [c for c in (raw.get("columns") or {})]
    types = {k.lower(): v for k, v in (config.get("column_types") or {}).items()}
    declared = {k.lower(): (v or {}).get("data_type") for k, v in (raw.get("columns") or {}).items()}
    return tuple((c.strip(), types.get(c.strip().lower()) or declared.get(c.strip().lower())) for c in header)


def _declared_columns(raw: Mapping[str, Any]) -> tuple[tuple[str, str | None], ...]:
    return tuple((c.get("name") or k, c.get("data_type")) for k, c in (raw.get("columns") or {}).items())


def _catalog_columns(catalog_json: Mapping[str, Any] | None, uid: str) -> tuple[tuple[str, str | None], ...]:
    if not catalog_json:
        return ()
    entry = (catalog_json.get("nodes") or {}).get(uid) or (catalog_json.get("sources") or {}).get(uid)
    if not entry:
        return ()
    cols = sorted((entry.get("columns") or {}).values(), key=lambda c: c.get("index", 0))
    return tuple((c["name"], c.get("type")) for c in cols)


def _meta(raw: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    meta = dict(raw.get("meta") or {})
    meta.update((raw.get("config") or {}).get("meta") or {})
    return tuple(sorted((str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in meta.items()))


def node_from_manifest(raw: Mapping[str, Any], dialect: str, project_dir: Path,
                       catalog_json: Mapping[str, Any] | None = None) -> Node:
    """One manifest entry (model, seed, snapshot or source) as a `records.Node`."""
    rtype = raw["resource_type"]
    if rtype == "seed":
        columns = _seed_columns(raw, project_dir)
    elif rtype == "source":
        columns = _declared_columns(raw) or _catalog_columns(catalog_json, raw["unique_id"])
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
        config=_config_items(raw, rtype),
    )


def _config_items(raw: Mapping[str, Any], rtype: str) -> tuple[tuple[str, str], ...]:
    """The few config values lineage needs (snapshot strategy, unique keys), as strings."""
    config = raw.get("config") or {}
    keep = ("strategy", "unique_key", "updated_at", "check_cols", "hard_deletes", "snapshot_meta_column_names",
            "incremental_strategy")
    out = []
    for k in keep:
        v = config.get(k)
        if v not in (None, "", [], {}):
            out.append((k, v if isinstance(v, str) else json.dumps(v)))
    return tuple(out)


def nodes_in_dag_order(manifest: Mapping[str, Any], dialect: str, project_dir: Path,
                       catalog_json: Mapping[str, Any] | None = None) -> tuple[Node, ...]:
    """Seeds, sources, models and snapshots of the manifest, each after the nodes it depends on."""
    raw: dict[str, Mapping[str, Any]] = {}
    for n in manifest.get("nodes", {}).values():
        if n.get("resource_type") in ("model", "seed", "snapshot") and (n.get("config") or {}).get("enabled", True):
            raw[n["unique_id"]] = n
    for s in manifest.get("sources", {}).values():
        if (s.get("config") or {}).get("enabled", True):
            raw[s["unique_id"]] = s
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for uid in sorted(raw):
        deps = [d for d in (raw[uid].get("depends_on") or {}).get("nodes") or () if d in raw and d != uid]
        sorter.add(uid, *sorted(deps))
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as exc:
        raise ManifestError(f"dependency cycle between nodes: {' -> '.join(exc.args[1])}") from exc
    return tuple(node_from_manifest(raw[uid], dialect, project_dir, catalog_json) for uid in order)


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
    exempt = lineage_exemption(node)
    if exempt is not None:  # shown wherever the model's reasons are
        return ModelLineage(node, _with_exemption(
            _analyze_node(node, catalog, dialect, relation_ids=relation_ids, opaque_ctes=opaque_ctes,
                          time_budget=time_budget).lineage, exempt))
    return _analyze_node(node, catalog, dialect, relation_ids=relation_ids, opaque_ctes=opaque_ctes,
                         time_budget=time_budget)


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


def read_catalog_json(path: Path) -> dict[str, Any] | None:
    """dbt's catalog.json (from `dbt docs generate`) when present and readable; never required."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("lineage-tools: ignoring unreadable %s (%s)", path, _one_line(exc))
        return None
    return data if isinstance(data, dict) else None


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


def _tests_is_incremental(n: Node) -> bool:
    return bool(n.materialized == "incremental" and n.language == "sql" and n.raw_sql
                and _IS_INCREMENTAL.search(n.raw_sql))


def _with_incremental_branches(nodes: Sequence[Node], raw_nodes: Mapping[str, Mapping[str, Any]],
                               cfg: ProjectConfig) -> tuple[Node, ...]:
    """Incremental models whose code tests `is_incremental()`: full-refresh SQL as compiled SQL
    (whatever state the warehouse was in at compile time) and the incremental branch beside it.
    `raw_nodes`: their manifest entries by unique_id."""
    compiler: _IncrementalCompiler | None = None
    out = []
    for n in nodes:
        if _tests_is_incremental(n):
            compiler = compiler or _IncrementalCompiler(cfg)
            raw = raw_nodes[n.unique_id]
            full = compiler.render(raw, False)
            incr = compiler.render(raw, True)
            n = replace(n, compiled_sql=full or n.compiled_sql, incremental_sql=incr)
        out.append(n)
    return tuple(out)


@dataclass(frozen=True)
class ManifestNodes:
    """What lineage takes from the manifest: the nodes in DAG order and the project's setting."""

    adapter_type: str
    dialect: str
    project_name: str
    nodes: tuple[Node, ...]
    incremental_raw: Mapping[str, Mapping[str, Any]]  # manifest entries of models testing is_incremental()
    relation_parts: Mapping[str, tuple[str, ...]]  # each node's relation -> its normalized parts


def _nodes_of_manifest(manifest: Mapping[str, Any], cfg: ProjectConfig,
                       catalog_json: Mapping[str, Any] | None) -> ManifestNodes:
    adapter = manifest["metadata"].get("adapter_type")
    if not adapter:
        raise ManifestError(f"{cfg.manifest_path}: no adapter_type in metadata")
    dialect = dialect_for_adapter(adapter)
    nodes = nodes_in_dag_order(manifest, dialect, cfg.project_dir, catalog_json)
    raw = {**manifest.get("sources", {}), **manifest.get("nodes", {})}
    parts = {n.relation: _relation_parts(raw[n.unique_id], dialect) for n in nodes}
    prime_names(name_rules(dialect), parts)  # the catalog reads these names again: no parsing
    return ManifestNodes(
        adapter_type=adapter,
        dialect=dialect,
        project_name=manifest["metadata"].get("project_name") or cfg.name,
        nodes=nodes,
        incremental_raw={n.unique_id: manifest["nodes"][n.unique_id] for n in nodes if _tests_is_incremental(n)},
        relation_parts=parts,
    )


def _digest_key(cfg: ProjectConfig, scan: SourceScan) -> str | None:
    """The key of the manifest digest: everything reading the manifest depends on (this tool's
    version and engine, the manifest file, catalog.json, every source file); None when the
    manifest is missing or older than a source file (it is then recompiled, not digested)."""
    try:
        st = os.stat(cfg.manifest_path)
    except OSError:
        return None
    if scan.newest > st.st_mtime:
        return None
    parts = ["manifest-digest", tool_version(), str(cfg.project_dir), str(cfg.manifest_path),
             [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev], file_stamp(cfg.catalog_path), scan.fingerprint]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _digest_payload(read: ManifestNodes, cfg: ProjectConfig,
                    restored: Iterable[tuple[Path, Any]]) -> dict[str, Any]:
    rules = name_rules(read.dialect)
    seeds = [cfg.project_dir / n.original_file_path for n in read.nodes
             if n.resource_type == "seed" and n.original_file_path]
    files = [*restored, *((p, file_stamp(p)) for p in seeds)]
    return {
        "adapter_type": read.adapter_type,
        "dialect": read.dialect,
        "project_name": read.project_name,
        "name_rules": [rules.keeps_quoted_lower, rules.keeps_plain_lower],
        "relations": {k: list(v) for k, v in read.relation_parts.items()},
        "nodes": nodes_to_json(read.nodes),
        "incremental_raw": dict(read.incremental_raw),
        "files": [[str(p), stamp] for p, stamp in files],
    }


def _nodes_of_digest(payload: Mapping[str, Any]) -> ManifestNodes:
    """The `ManifestNodes` of a digest payload (KeyError/TypeError/ValueError when malformed);
    hands its names to `sql` so that reading them needs no sqlglot."""
    dialect = payload["dialect"]
    quoted, plain = payload["name_rules"]
    relations = {str(k): tuple(str(p) for p in v) for k, v in payload["relations"].items()}
    read = ManifestNodes(
        adapter_type=str(payload["adapter_type"]),
        dialect=str(dialect),
        project_name=str(payload["project_name"]),
        nodes=nodes_from_json(payload["nodes"]),
        incremental_raw=dict(payload["incremental_raw"]),
        relation_parts=relations,
    )
    prime_names(NameRules(read.dialect, bool(quoted), bool(plain)), relations)
    return read


def read_manifest_nodes(cfg: ProjectConfig, *, compile: bool = True, catalog_json: Mapping[str, Any] | None = None,
                        digest: ManifestDigest | None = None) -> ManifestNodes:
    """The project's nodes from its manifest (compiled when needed, see `load_manifest`).

    With `digest`, what was read from an unchanged manifest is kept in it, and taken from it
    while the manifest, catalog.json, the source files, the compiled files whose SQL was filled
    in, the seed files and this tool's version stay as they were."""
    scan = scan_sources(cfg)
    key = _digest_key(cfg, scan) if digest is not None and digest.enabled else None
    if key is not None:
        payload = digest.get(key)  # type: ignore[union-attr]
        if payload is not None:
            try:
                return _nodes_of_digest(payload)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.debug("manifest digest: malformed (%s); reading the manifest", exc)
    before = file_stamp(cfg.manifest_path)
    restored: list[tuple[Path, Any]] = []
    manifest = load_manifest(cfg, compile=compile, scan=scan, restored=restored)
    read = _nodes_of_manifest(manifest, cfg, catalog_json)
    if key is not None and before is not None and file_stamp(cfg.manifest_path) == before:
        digest.put(key, _digest_payload(read, cfg, restored))  # type: ignore[union-attr]
    return read


def load_project(
    project_dir: Path | str = ".",
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
) -> ProjectLineage:
    """Lineage of every model of a dbt project, from its manifest (compiled when needed).

    With `cache`, per-model results are kept under ``target/lineage_cache/`` (see `cache.py`),
    and so is a digest of the manifest (see `read_manifest_nodes`).
    With `upstream_of` (the project's nodes -> the unique_ids wanted), only those models and
    the models upstream of them are analysed (or read from the cache): their lineage is the
    same as in a full load; every node is still listed."""
    cfg = project_config(project_dir, profiles_dir, target)
    lineage_cache = LineageCache.for_target(cfg.target_path) if cache else None
    if lineage_cache is not None:
        analyze = lineage_cache.wrap(analyze)
    catalog_json = read_catalog_json(cfg.catalog_path)
    read = read_manifest_nodes(cfg, compile=compile, catalog_json=catalog_json,
                               digest=ManifestDigest.for_target(cfg.target_path) if cache else None)
    nodes = read.nodes
    only = upstream_closure(nodes, upstream_of(nodes)) if upstream_of is not None else None
    if incremental_branches:
        raw = read.incremental_raw
        if only is None:
            nodes = _with_incremental_branches(nodes, raw, cfg)
        else:
            kept = dict(zip((n.unique_id for n in nodes if n.unique_id in only),
                            _with_incremental_branches([n for n in nodes if n.unique_id in only], raw, cfg)))
            nodes = tuple(kept.get(n.unique_id, n) for n in nodes)
    result = analyze_project(
        nodes,
        project_name=read.project_name,
        adapter_type=read.adapter_type,
        dialect=read.dialect,
        catalog_json=catalog_json,
        time_budget=time_budget,
        manifest_path=str(cfg.manifest_path),
        analyze=analyze,
        progress=progress,
        only=only,
    )
    if lineage_cache is not None:
        log.info("lineage-tools: %s", lineage_cache.summary())
    return result


def is_user_error(exc: BaseException) -> bool:
    """True for errors the CLI reports on one line."""
    return isinstance(exc, UserError)
