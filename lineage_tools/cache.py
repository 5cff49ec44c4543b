"""A per-model cache of lineage results under the project's ``target/lineage_cache/``.

A model's lineage is a pure function of its node (compiled SQL, raw SQL for line numbers,
config), the columns of the relations it reads, the opaque (ephemeral) CTE map, the dialect and
this tool's version. `cache_key` hashes exactly these; `LineageCache.wrap` puts the cache in
front of the project layer's per-model function, so that a warm run parses nothing that did not
change, and a change to a model's SQL, to an upstream model's columns, or to the tool's version
recomputes what it touches and nothing else.

Entries are small JSON files named by their key (``v<FORMAT>/<key>.json``), written to a
temporary file and renamed into place (safe with concurrent writers: the last rename wins and
both wrote the same value). An unreadable or corrupt entry counts as a miss and is rewritten.

Beside the entries, `ManifestDigest` keeps what the project layer read from the manifest last
time (its nodes, dialect, relation names), under a key the project layer computes from
everything that reading depends on (see `project.load_project`): a warm run then neither parses
the whole manifest nor restores compiled SQL again. `RenderStore` keeps the SQL dbt rendered for
incremental models' two branches (``target/lineage_tools/incremental/``), so that dbt renders
them once per change.

>>> from .records import ColumnEdge, ColumnRef, Subtype
>>> sl = StatementLineage(columns=("a",), edges=(ColumnEdge("a", ColumnRef("m.t", "x"), Subtype.IDENTITY),))
>>> lineage_from_json(lineage_to_json(sl)) == sl
True
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from . import __version__
from .records import (
    ColumnEdge,
    ColumnRef,
    ModelLineage,
    Node,
    Reason,
    ReasonCode,
    RowEffect,
    RowInfluence,
    StatementLineage,
    Status,
    Subtype,
)

log = logging.getLogger(__name__)

#: Bump when the entry layout or the key's ingredients change: old entries are then ignored.
FORMAT = 1
CACHE_DIRNAME = "lineage_cache"
#: Set to 1/true to turn the cache off (e.g. to time a cold run).
DISABLE_ENV = "LINEAGE_TOOLS_NO_CACHE"

# The fields the codec below writes. If records.py gains a field the codec does not know, the
# cache turns itself off (with a warning) rather than drop the field: see `codec_is_complete`.
_CODEC_FIELDS: dict[type, tuple[str, ...]] = {
    StatementLineage: ("columns", "edges", "row_influences", "status", "reasons", "target",
                       "column_lines"),
    ColumnEdge: ("target", "source", "subtype", "masking", "incremental_only"),
    ColumnRef: ("relation", "column"),
    RowInfluence: ("relation", "effect"),
    Reason: ("code", "message", "line", "column"),
}

_SUBTYPES = {s.value: s for s in Subtype}
_STATUSES = {s.value: s for s in Status}
_EFFECTS = {e.value: e for e in RowEffect}
_REASONS = {r.value: r for r in ReasonCode}
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def codec_is_complete() -> bool:
    """True when the JSON codec writes every field of the records it stores.

    >>> codec_is_complete()
    True
    """
    return all(
        tuple(f.name for f in dataclasses.fields(cls)) == names for cls, names in _CODEC_FIELDS.items()
    )


# --------------------------------------------------------------------------------------------
# JSON codec for StatementLineage (compact: one list per edge)


def lineage_to_json(sl: StatementLineage) -> dict[str, Any]:
    """A JSON-ready dict of a StatementLineage (see `lineage_from_json`)."""
    return {
        "columns": list(sl.columns),
        "edges": [
            [e.target, e.source.relation, e.source.column, e.subtype.value, e.masking, e.incremental_only]
            for e in sl.edges
        ],
        "row_influences": [[r.relation, r.effect.value] for r in sl.row_influences],
        "status": sl.status.value,
        "reasons": [[r.code.value, r.message, r.line, r.column] for r in sl.reasons],
        "target": sl.target,
        "column_lines": [[c, line] for c, line in sl.column_lines],
    }


def lineage_from_json(data: Mapping[str, Any]) -> StatementLineage:
    """The StatementLineage written by `lineage_to_json`; KeyError/ValueError/TypeError if bad."""
    refs: dict[tuple[str, str], ColumnRef] = {}  # one ColumnRef per source column
    edges = []
    for target, rel, col, sub, masking, incr in data["edges"]:  # a plain loop: the warm run's hot spot
        ref = refs.get((rel, col))
        if ref is None:
            ref = refs[(rel, col)] = ColumnRef(rel, col)
        edges.append(ColumnEdge(target, ref, _SUBTYPES[sub], bool(masking), bool(incr)))
    return StatementLineage(
        columns=tuple(data["columns"]),
        edges=tuple(edges),
        row_influences=tuple(RowInfluence(rel, _EFFECTS[eff]) for rel, eff in data["row_influences"]),
        status=_STATUSES[data["status"]],
        reasons=tuple(Reason(_REASONS[c], m, line, col) for c, m, line, col in data["reasons"]),
        target=data["target"],
        column_lines=tuple((c, int(line)) for c, line in data["column_lines"]),
    )


# --------------------------------------------------------------------------------------------
# Keys


def _canonical(value: Any) -> Any:
    """Mappings sorted by key, sets sorted, tuples as lists: a stable JSON shape."""
    if isinstance(value, Mapping):
        return [[str(k), _canonical(v)] for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))]
    if isinstance(value, (set, frozenset)):
        return sorted(_canonical(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def cache_key(
    *,
    sql: str,
    dialect: str,
    upstream: Mapping[str, Iterable[Any]],
    opaque_ctes: Mapping[str, str] | None = None,
    extra: Any = None,
    version: str = __version__,
) -> str:
    """The hex SHA-256 of everything a model's lineage depends on.

    `upstream` maps each relation the SQL may read to what it holds (its columns in order: `*`
    expands in that order), as a value or already serialized as a string. `extra` carries anything else the result depends on (the node's
    config, its raw SQL for line numbers, ...).

    >>> k = cache_key(sql="select a from t", dialect="duckdb", upstream={"t": ["a"]})
    >>> k == cache_key(sql="select a from t", dialect="duckdb", upstream={"t": ["a", "b"]})
    False
    """
    h = hashlib.sha256()
    for part in (str(FORMAT), version, dialect, sql):
        h.update(part.encode())
        h.update(b"\0")
    for rel in sorted(upstream):
        value = upstream[rel]
        h.update(f"{rel}\x1e{value if isinstance(value, str) else repr(_canonical(value))}\0".encode())
    for name, target in sorted((opaque_ctes or {}).items()):
        h.update(f"{name}\x1e{target}\0".encode())
    h.update((extra if isinstance(extra, str) else repr(_canonical(extra))).encode())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# The store


@dataclasses.dataclass
class CacheStats:
    """What a run did: `analysed` is the number of models computed (cache misses)."""

    hits: int = 0
    analysed: int = 0
    written: int = 0
    corrupt: int = 0
    uncacheable: int = 0
    analysed_ids: list[str] = dataclasses.field(default_factory=list)  # unique_ids, in order


class LineageCache:
    """Per-model lineage results in ``<directory>/v<FORMAT>/<key>.json``."""

    def __init__(self, directory: Path | str, *, enabled: bool = True, version: str | None = None):
        self.directory = Path(directory)
        self.version = version if version is not None else tool_version()
        self.entries = self.directory / f"v{FORMAT}"
        self.enabled = enabled and codec_is_complete()
        if enabled and not self.enabled:
            log.warning("lineage-tools: lineage cache off: records.py has fields the cache codec "
                        "does not store (update lineage_tools/cache.py)")
        self.stats = CacheStats()
        self._lock = threading.Lock()
        self._made_dir = False

    @classmethod
    def for_target(cls, target_path: Path | str) -> LineageCache:
        """The cache of a dbt project whose target folder is `target_path`; off when the
        environment variable LINEAGE_TOOLS_NO_CACHE is set to 1/true/yes."""
        off = os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "true", "yes")
        return cls(Path(target_path) / CACHE_DIRNAME, enabled=not off)

    def _path(self, key: str) -> Path:
        return self.entries / f"{key}.json"

    def get(self, key: str) -> StatementLineage | None:
        """The stored result for `key`, or None (missing, corrupt, or another format)."""
        if not self.enabled:
            return None
        try:
            raw = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.debug("lineage cache: cannot read %s: %s", key, exc)
            return None
        try:
            data = json.loads(raw)
            if data.get("format") != FORMAT or data.get("key") != key:
                raise ValueError("format or key mismatch")
            return lineage_from_json(data["lineage"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self.stats.corrupt += 1
            log.debug("lineage cache: ignoring corrupt entry %s (%s)", key, exc)
            return None

    def put(self, key: str, lineage: StatementLineage) -> None:
        """Store `lineage` under `key` atomically (temporary file + rename)."""
        if not self.enabled:
            return
        text = json.dumps({"format": FORMAT, "key": key, "version": self.version,
                           "lineage": lineage_to_json(lineage)}, separators=(",", ":"))
        path = self._path(key)
        tmp = path.with_name(f".{key}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            if not self._made_dir:
                self.entries.mkdir(parents=True, exist_ok=True)
                self._made_dir = True
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
            self.stats.written += 1
        except OSError as exc:  # a read-only target folder must not break lineage
            log.debug("lineage cache: cannot write %s: %s", path, exc)
            tmp.unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove every entry of this format."""
        if self.entries.is_dir():
            for p in self.entries.iterdir():
                p.unlink(missing_ok=True)

    def prune(self, keep: Iterable[str]) -> int:
        """Remove entries whose key is not in `keep` (e.g. the keys of the last full run)."""
        keep = set(keep)
        removed = 0
        if self.entries.is_dir():
            for p in self.entries.glob("*.json"):
                if p.stem not in keep:
                    p.unlink(missing_ok=True)
                    removed += 1
        return removed

    def summary(self) -> str:
        s = self.stats
        return (f"lineage cache: {s.hits} model(s) from cache, {s.analysed} analysed"
                + (f", {s.corrupt} corrupt entr(y/ies) rewritten" if s.corrupt else ""))

    # -- the project layer's per-model function, cached ---------------------------------------

    def wrap(self, analyze: Callable[..., ModelLineage]) -> Callable[..., ModelLineage]:
        """`analyze` (signature of `project.analyze_node`) behind this cache."""
        memo: list[Any] = [None, None]

        def index(relation_ids: Mapping[str, str]) -> RelationIndex:
            if memo[0] is not relation_ids or memo[1].size != len(relation_ids):
                memo[0], memo[1] = relation_ids, RelationIndex.of(relation_ids)
            return memo[1]

        def cached_analyze(node: Node, catalog: Any, dialect: str, *, relation_ids: Mapping[str, str],
                           opaque_ctes: Mapping[str, str] | None = None, **kwargs: Any) -> ModelLineage:
            if not self.enabled:
                self.stats.analysed += 1
                self.stats.analysed_ids.append(node.unique_id)
                return analyze(node, catalog, dialect, relation_ids=relation_ids, opaque_ctes=opaque_ctes,
                               **kwargs)
            key = model_key(node, catalog, dialect, relation_ids, opaque_ctes, index(relation_ids),
                            version=self.version)
            hit = self.get(key)
            if hit is not None:
                self.stats.hits += 1
                return ModelLineage(node, hit)
            result = analyze(node, catalog, dialect, relation_ids=relation_ids, opaque_ctes=opaque_ctes,
                             **kwargs)
            with self._lock:
                self.stats.analysed += 1
                self.stats.analysed_ids.append(node.unique_id)
            if any(r.code == ReasonCode.TIME_BUDGET for r in result.lineage.reasons):
                self.stats.uncacheable += 1  # depends on the machine's speed: never stored
            else:
                self.put(key, result.lineage)
            return result

        return cached_analyze


@dataclasses.dataclass(frozen=True)
class RelationIndex:
    """The project's relations by last name part, and by the dbt node they belong to."""

    by_name: Mapping[str, tuple[str, ...]]
    by_uid: Mapping[str, tuple[str, ...]]
    size: int

    @classmethod
    def of(cls, relation_ids: Mapping[str, str]) -> RelationIndex:
        by_name: dict[str, list[str]] = {}
        by_uid: dict[str, list[str]] = {}
        for rel, uid in relation_ids.items():
            by_name.setdefault(rel.rpartition(".")[2].lower(), []).append(rel)
            by_uid.setdefault(uid, []).append(rel)
        return cls({k: tuple(v) for k, v in by_name.items()}, {k: tuple(v) for k, v in by_uid.items()},
                   len(relation_ids))


def _catalog_columns(catalog: Any, relation: str) -> list[str] | None:
    """A relation's columns from the catalog, looked up by its already-normalized parts (no
    SQL parsing on this path)."""
    cols = catalog.columns(tuple(relation.split(".")))
    return list(cols) if cols is not None else None


def model_key(
    node: Node,
    catalog: Any,
    dialect: str,
    relation_ids: Mapping[str, str],
    opaque_ctes: Mapping[str, str] | None,
    index: RelationIndex | None = None,
    *,
    version: str | None = None,
) -> str:
    """The cache key of one model: the node itself (SQL, raw SQL for line numbers, config...)
    and, for every relation of the project its SQL may read (its dbt dependencies, and any
    relation whose name appears in the SQL), the node it maps to and its columns in order."""
    index = index or RelationIndex.of(relation_ids)
    relations: set[str] = set()
    for uid in node.depends_on:
        relations.update(index.by_uid.get(uid, ()))
    for text in (node.compiled_sql, node.incremental_sql):
        if text:
            for name in set(_TOKEN.findall(text.lower())):
                relations.update(index.by_name.get(name, ()))
    upstream = {}
    for rel in relations:
        cols = _catalog_columns(catalog, rel)
        upstream[rel] = f"{relation_ids.get(rel)}\x1e" + ("\x1f".join(cols) if cols is not None else "\x15")
        if cols is not None and not catalog.is_complete(tuple(rel.split("."))):
            upstream[rel] += "\x1d"  # a partial column list: lineage reads a missing column otherwise
    return cache_key(sql=node.compiled_sql or "", dialect=dialect, upstream=upstream,
                     opaque_ctes=opaque_ctes, extra=repr(node),
                     version=version if version is not None else tool_version())


def tool_version() -> str:
    """`lineage_tools.__version__` (read when called, so a new version is seen at once) plus a
    fingerprint of the engine's source and of sqlglot's version: an edited engine (a developer's
    checkout) or an upgraded sqlglot never gets answers computed by the old one."""
    import lineage_tools

    return f"{lineage_tools.__version__}+{_engine_fingerprint()}"


@functools.lru_cache(maxsize=1)
def _engine_fingerprint() -> str:
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in ("sql.py", "lineage.py", "project.py", "records.py", "cache.py", "dbt/manifest.py"):
        h.update((here / name).read_bytes())
    h.update(_sqlglot_version().encode())
    return h.hexdigest()[:16]


def _sqlglot_version() -> str:
    """sqlglot's version without importing it: its generated ``_version.py`` (importlib.metadata
    costs 10 ms of imports a warm run need not pay), else the installed distribution's version."""
    spec = importlib.util.find_spec("sqlglot")
    if spec is not None and spec.origin:
        try:
            return (Path(spec.origin).parent / "_version.py").read_text(encoding="utf-8")
        except OSError:
            pass
    from importlib import metadata

    try:
        return metadata.version("sqlglot")
    except metadata.PackageNotFoundError:
        return ""


# --------------------------------------------------------------------------------------------
# The manifest digest: the project's nodes as read from an unchanged manifest

#: Bump when the digest's layout changes.
DIGEST_FORMAT = 1
DIGEST_NAME = f"manifest_digest.v{DIGEST_FORMAT}.json"

# Node fields and how each is read back from JSON (lists -> the tuples `Node` holds): the
# decoded node must be equal to the original, repr included (the lineage cache key hashes it).
_NODE_PAIRS = ("columns", "meta", "config")
_NODE_TUPLES = ("depends_on", "tags")


def _node_fields() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(Node))


def node_codec_is_complete() -> bool:
    """True when every field of `Node` is a plain value, or a tuple the codec knows.

    >>> node_codec_is_complete()
    True
    """
    hints = {f.name: str(f.type) for f in dataclasses.fields(Node)}
    known = {n for n, t in hints.items() if t in ("str", "str | None", "int", "bool")}
    return set(hints) == known | set(_NODE_PAIRS) | set(_NODE_TUPLES)


def nodes_to_json(nodes: Iterable[Node]) -> list[list[Any]]:
    """Nodes as JSON-ready rows (one list of field values per node, in field order)."""
    return [[getattr(n, f) for f in _node_fields()] for n in nodes]


def nodes_from_json(rows: Iterable[list[Any]]) -> tuple[Node, ...]:
    """The nodes written by `nodes_to_json`; ValueError/TypeError when a row does not fit.

    >>> n = Node("model.p.a", "a", "model", "db.main.a", "db", "main", "a", depends_on=("seed.p.s",),
    ...          columns=(("x", None), ("y", "int")), config=(("strategy", "check"),))
    >>> nodes_from_json(json.loads(json.dumps(nodes_to_json([n])))) == (n,)
    True
    """
    fields = _node_fields()
    out = []
    for row in rows:
        if not isinstance(row, list) or len(row) != len(fields):
            raise ValueError("node row of the wrong shape")
        values = dict(zip(fields, row))
        for f in _NODE_TUPLES:
            values[f] = tuple(values[f])
        for f in _NODE_PAIRS:
            values[f] = tuple((a, b) for a, b in values[f])
        out.append(Node(**values))
    return tuple(out)


def file_stamp(path: Path | str) -> list[Any] | None:
    """What says a file changed: [size, mtime_ns, inode, device], or None when it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev]


class ManifestDigest:
    """One file, ``<directory>/manifest_digest.v<N>.json``: a payload stored under a key (the
    key on the first line, so a stale digest is known without parsing it; then the JSON).

    The payload's ``files`` ([path, stamp] pairs, see `file_stamp`) are checked on `get`: a
    digest whose files changed since it was written is a miss. Written atomically; unreadable,
    corrupt or foreign content counts as a miss."""

    def __init__(self, directory: Path | str, *, enabled: bool = True):
        self.path = Path(directory) / DIGEST_NAME
        self.enabled = enabled and node_codec_is_complete()

    @classmethod
    def for_target(cls, target_path: Path | str) -> ManifestDigest:
        """The digest of the project whose target folder is `target_path` (off like the cache)."""
        off = os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "true", "yes")
        return cls(Path(target_path) / CACHE_DIRNAME, enabled=not off)

    def get(self, key: str) -> dict[str, Any] | None:
        """The payload stored under `key`, if its files are unchanged; else None."""
        if not self.enabled:
            return None
        try:
            raw = self.path.read_bytes()
            head, _, body = raw.partition(b"\n")
            if head != key.encode():
                return None
            data = json.loads(body)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.debug("manifest digest: unreadable (%s)", exc)
            return None
        if not isinstance(data, dict) or data.get("format") != DIGEST_FORMAT or data.get("key") != key:
            return None
        payload = data.get("payload")
        try:
            if not all(file_stamp(path) == stamp for path, stamp in payload["files"]):
                log.debug("manifest digest: a file it was read from changed")
                return None
        except (TypeError, KeyError, ValueError):
            return None
        return payload

    def put(self, key: str, payload: Mapping[str, Any]) -> None:
        """Store `payload` (JSON-ready, with a ``files`` list) under `key`, atomically."""
        if not self.enabled:
            return
        text = key + "\n" + json.dumps({"format": DIGEST_FORMAT, "key": key, "payload": payload},
                                       separators=(",", ":"))
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:  # a read-only target folder must not break lineage
            log.debug("manifest digest: cannot write %s: %s", self.path, exc)
            tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Incremental models' branches, as dbt rendered them

#: Bump when what a render depends on changes.
RENDER_FORMAT = 2


def render_key(node: Mapping[str, Any], branch: bool, context: Any) -> str:
    """The key of one branch of an incremental model's SQL: its manifest entry (raw and compiled
    code, relation, dependencies), the branch, and `context` (the vars dbt renders with, a
    fingerprint of the macros it calls)."""
    h = hashlib.sha256()
    for part in (str(RENDER_FORMAT), node.get("raw_code") or "", node.get("relation_name") or "", str(branch),
                 node.get("compiled_code") or "", json.dumps(node.get("depends_on"), sort_keys=True),
                 json.dumps(context, sort_keys=True, default=str)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


class RenderStore:
    """SQL files named by `render_key` under one folder, written atomically."""

    def __init__(self, directory: Path | str, *, enabled: bool = True):
        self.directory = Path(directory)
        self.enabled = enabled

    @classmethod
    def for_cache_dir(cls, cache_dir: Path | str) -> RenderStore:
        """The store of a project whose tool folder is `cache_dir` (off like the lineage cache)."""
        off = os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "true", "yes")
        return cls(Path(cache_dir) / "incremental", enabled=not off)

    def get(self, key: str) -> str | None:
        if not self.enabled:
            return None
        try:
            return (self.directory / f"{key}.sql").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def put(self, key: str, sql: str) -> None:
        if not self.enabled:
            return
        path = self.directory / f"{key}.sql"
        tmp = path.with_name(f".{key}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp.write_text(sql, encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            log.debug("render store: cannot write %s: %s", path, exc)
            tmp.unlink(missing_ok=True)
