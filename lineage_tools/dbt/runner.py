"""The only place dbt runs, and how.

Two ways, each counted as one *dbt invocation* (`invocations()` lists them, for tests and
``--verbose``):

* **a child process** (`run_dbt`, `QuerySession`): this environment's ``dbt`` executable with an
  argv list (never a shell) for what changes the warehouse (``dbt seed``, ``dbt build``), and
  ``dbt show`` for counting rows on adapters other than DuckDB. A child process ends, and so
  do its locks.
* **dbt in this process** (`DbtProject`): dbt's own parser and compiler on the project, with
  no warehouse connection, no relation cache and no artifact written unless compiling. It
  compiles the project when the manifest is stale (every SQL model and snapshot, with
  `is_incremental()` false: the full-refresh SQL, whatever state the warehouse is in) and
  renders any model's SQL again on demand, `is_incremental()` forced either way
  (`render`, `render_branches`). A long-lived front end (a language server, a watch loop)
  keeps one `DbtProject` and calls `render(path)` after each edit.

Nothing queries the warehouse from this process. A model whose SQL needs the warehouse to
compile (a macro calling ``run_query``, ``adapter.get_columns_in_relation``, ...) fails to
render in-process with `NeedsWarehouse`; compiling then falls back to ``dbt compile`` in a child
process (which opens the warehouse as dbt does).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ManifestError, WarehouseError
from .config import DbtConfig, one_line
from .manifest import SQL_NODE_TYPES, compiled_vars, read_manifest

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Counting invocations


@dataclass(frozen=True)
class Invocation:
    """One time this process ran dbt: `how` is ``child`` (a ``dbt`` process) or ``in-process``."""

    how: str
    what: str


_INVOCATIONS: list[Invocation] = []
_LOCK = threading.Lock()


def invocations() -> tuple[Invocation, ...]:
    """Every dbt invocation of this process so far, in order."""
    with _LOCK:
        return tuple(_INVOCATIONS)


def _record(how: str, what: str) -> None:
    with _LOCK:
        _INVOCATIONS.append(Invocation(how, what))
        n = len(_INVOCATIONS)
    log.debug("dbt invocation %d (%s): %s", n, how, what)


# --------------------------------------------------------------------------------------------
# Child processes


def dbt_executable() -> str:
    """This environment's `dbt` (next to the running Python), else the one on PATH."""
    local = Path(sys.executable).parent / "dbt"
    if local.exists():
        return str(local)
    found = shutil.which("dbt")
    if not found:
        raise WarehouseError("dbt is not installed in this environment")
    return found


def dbt_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return env


def dbt_argv(cfg: DbtConfig, args: Sequence[str]) -> list[str]:
    """`dbt <args>` for this project, profiles and target; `--vars` from `cfg` unless `args`
    carry their own."""
    flags = cfg.flags(vars={} if "--vars" in args else None)
    return [dbt_executable(), *args, *flags]


def _dies_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child end when this process ends, however it ends (even
    ``kill -9``): Linux's PR_SET_PDEATHSIG sends the child SIGTERM. None where there is no prctl."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import signal

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent ended between fork and prctl
            os._exit(1)

    return preexec


def run_dbt(cfg: DbtConfig, args: Sequence[str], on_line: Callable[[str], None] | None = None) -> int:
    """Run `dbt <args>` for `cfg` as a child process (argv list, no shell), from the project
    folder (dbt resolves relative paths of profiles against it).

    Its output goes to the log line by line (and to `on_line`); returns the exit code."""
    argv = dbt_argv(cfg, args)
    _record("child", "dbt " + " ".join(args))
    log.info("running: %s", " ".join(argv))
    proc = subprocess.Popen(argv, cwd=cfg.project_dir, env=dbt_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1, preexec_fn=_dies_with_parent())
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        log.info("  dbt | %s", line)
        if on_line:
            on_line(line)
    return proc.wait()


_ANSWER = "\x1elineage-tools "  # marks the child's answers among whatever else reaches its stdout


class QuerySession:
    """``dbt show --inline`` in one child process that parses once: SQL (with Jinja: refs,
    sources, adapter calls) run through dbt's connection for the target. For adapters this
    tool cannot reach directly (Spark, ...). Use as a context manager; the child exits (and
    releases the warehouse) on leaving it."""

    def __init__(self, cfg: DbtConfig):
        self.cfg = cfg
        self.proc: subprocess.Popen[str] | None = None
        self._log: Any = None

    def __enter__(self) -> QuerySession:
        import tempfile

        _record("child", "dbt show (a query session)")
        self._log = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.proc = subprocess.Popen([sys.executable, "-m", "lineage_tools.dbt.runner", "query-session"],
                                     cwd=self.cfg.project_dir, env=dbt_env(), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1,
                                     preexec_fn=_dies_with_parent())
        try:
            self._send({"flags": self.cfg.flags(vars=compiled_vars(self.cfg))})
        except BaseException:
            self.__exit__()
            raise
        return self

    def _send(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(obj) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            while line and not line.startswith(_ANSWER):  # a JVM or a library printing: to the log
                log.debug("  dbt | %s", line.rstrip())
                line = self.proc.stdout.readline()
        except OSError:
            line = ""
        if not line:
            self._log.seek(0)
            err = [x for x in self._log.read().strip().splitlines() if x.strip()]
            raise WarehouseError(f"cannot query through dbt: {one_line(err[-1]) if err else 'dbt exited'}")
        answer = json.loads(line[len(_ANSWER):])
        if answer.get("error"):
            raise WarehouseError(f"query through dbt failed: {answer['error']}")
        return answer

    def query(self, sql: str) -> list[dict[str, Any]]:
        """The rows of `sql` (dbt Jinja allowed) as dicts."""
        return self._send({"sql": sql})["rows"]

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError):
                if self.proc.stdin:
                    self.proc.stdin.close()
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


def _query_session_main() -> int:
    """The child of `QuerySession`: parse once, then answer one JSON request per line."""
    from dbt.cli.main import dbtRunner

    def answer(obj: Mapping[str, Any]) -> None:
        sys.stdout.write(_ANSWER + json.dumps(obj, default=str) + "\n")
        sys.stdout.flush()

    flags = json.loads(sys.stdin.readline())["flags"]
    with contextlib.redirect_stdout(sys.stderr):
        res = dbtRunner().invoke(["parse", "--no-write-json", "--log-level", "none", *flags])
    if not res.success:
        answer({"error": f"dbt parse failed: {one_line(res.exception or 'see dbt log')}"})
        return 2
    runner = dbtRunner(manifest=res.result)
    answer({"ok": True})
    for line in sys.stdin:
        sql = json.loads(line)["sql"]
        with contextlib.redirect_stdout(sys.stderr):
            res = runner.invoke(["show", "--inline", sql, "--limit", "-1", "--no-write-json", "--log-level", "none",
                                 *flags])
        if not res.success or res.result is None:
            answer({"error": one_line(res.exception or "see the dbt log")})
            continue
        table = res.result.results[0].agate_table
        answer({"rows": [{k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v))
                          for k, v in zip(table.column_names, row)} for row in table.rows]})
    return 0


# --------------------------------------------------------------------------------------------
# dbt in this process


class NeedsWarehouse(ManifestError):
    """A model's SQL cannot be rendered without querying the warehouse (an introspective macro)."""


class RenderError(ManifestError):
    """dbt could not render a model's SQL (a Jinja or compilation error), named in the message."""


_NO_CONNECTION = ("connection never acquired", "InvalidConnectionError")


def _is_no_connection(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}"
    return any(s in text for s in _NO_CONNECTION)


@dataclass(frozen=True)
class Branches:
    """An incremental model's SQL both ways, or why it could not be rendered."""

    full_refresh: str | None
    incremental: str | None
    error: str | None = None
    needs_warehouse: bool = False


class DbtProject:
    """dbt's view of one project, held in this process: its runtime config, its adapter (never
    connected) and its parsed manifest, to compile the project or render models' SQL.

    >>> with DbtProject(cfg) as dbt:                       # doctest: +SKIP
    ...     dbt.load(manifest_json)                        # or dbt.parse(): dbt's own parser
    ...     sql = dbt.render("models/marts/orders.sql")    # the file as it is now, compiled

    Counted as ONE dbt invocation however many models it compiles or renders. Not thread-safe.
    """

    def __init__(self, cfg: DbtConfig, *, vars: Mapping[str, Any] | None = None):
        self.cfg = cfg
        self.vars = dict(compiled_vars(cfg) if vars is None else vars)
        self.manifest: Any = None  # dbt.contracts.graph.manifest.Manifest
        self._config: Any = None
        self._adapter: Any = None
        self._compiler: Any = None
        self._by_path: dict[str, str] = {}
        self._complete = False  # the manifest holds every node (parse / whole manifest.json)

    # ---- set-up ----------------------------------------------------------------------------

    def __enter__(self) -> DbtProject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _setup(self) -> None:
        if self._config is not None:
            return
        _record("in-process", "dbt's parser and compiler (no warehouse connection)")
        os.environ.setdefault("DO_NOT_TRACK", "1")
        os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        from argparse import Namespace

        with self._quiet():
            from dbt.adapters.factory import get_adapter, register_adapter
            from dbt.config.runtime import RuntimeConfig, load_profile, load_project
            from dbt.context.providers import generate_runtime_macro_context
            from dbt.flags import get_flags, set_from_args
            from dbt.mp_context import get_mp_context
            from dbt.tracking import initialize_from_flags
            from dbt_common.context import set_invocation_context
            from dbt_common.events.event_manager_client import cleanup_event_logger

            cfg = self.cfg
            target = cfg.target or os.environ.get("DBT_TARGET")  # as dbt's --target reads it
            args = Namespace(project_dir=str(cfg.project_dir), profiles_dir=str(cfg.profiles_path),
                             target=target, vars=self.vars, threads=None, profile=None, which="compile",
                             version_check=False, send_anonymous_usage_stats=False, log_level="none",
                             log_level_file="none", quiet=True, partial_parse=True, static_parser=True,
                             introspect=False, populate_cache=False, write_json=False, use_colors=False)
            with contextlib.chdir(cfg.project_dir):
                set_invocation_context(dict(os.environ))
                set_from_args(args, {})
                initialize_from_flags(False, str(cfg.profiles_path))  # no usage statistics
                cleanup_event_logger()
                try:
                    profile = load_profile(str(cfg.project_dir), self.vars, None, target, None)
                    project = load_project(str(cfg.project_dir), False, profile, self.vars)
                    config = RuntimeConfig.from_parts(project, profile, get_flags())
                except Exception as exc:  # dbt's own config errors: one line, naming the project
                    raise ManifestError(f"{cfg.project_dir}: dbt cannot load the project: {one_line(exc)}") from None
                register_adapter(config, get_mp_context())
                adapter = get_adapter(config)
                adapter.set_macro_context_generator(generate_runtime_macro_context)
        self._config, self._adapter = config, adapter

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """dbt writes to stdout, which is for this tool's data: send it to stderr."""
        with contextlib.redirect_stdout(sys.stderr):
            yield

    def close(self) -> None:
        """Forget the adapter (it never connected) and the manifest."""
        if self._adapter is not None:
            from dbt.adapters.factory import reset_adapters

            reset_adapters()
        self._adapter = self._config = self._compiler = self.manifest = None

    def _use(self, manifest: Any) -> None:
        from dbt.compilation import Compiler

        self.manifest = manifest
        self._adapter.set_macro_resolver(manifest)
        manifest.build_flat_graph()

        class _Compiler(Compiler):
            writes = False

            def _write_node(self, node: Any, split_suffix: str | None = None) -> Any:  # noqa: D401
                return super()._write_node(node, split_suffix) if self.writes else node

        self._compiler = _Compiler(self._config)
        self._by_path = {str(n.original_file_path): uid for uid, n in manifest.nodes.items()
                         if n.resource_type in SQL_NODE_TYPES}

    def parse(self) -> Any:
        """Parse the project with dbt's parser (partial parsing from ``target/partial_parse.msgpack``
        when it is current; dbt rewrites that file, nothing else)."""
        self._setup()
        from dbt.parser.manifest import ManifestLoader

        with self._quiet(), contextlib.chdir(self.cfg.project_dir):
            try:
                manifest = ManifestLoader.get_full_manifest(self._config)
            except Exception as exc:
                raise ManifestError(f"{self.cfg.project_dir}: dbt cannot parse the project: {_dbt_message(exc)}") from None
        self._use(manifest)
        self._complete = True
        return manifest

    def load(self, manifest_json: Mapping[str, Any], only: Iterable[str] | None = None) -> Any:
        """Take dbt's manifest from a ``manifest.json`` already read (with `only`: just those
        nodes, what they depend on, and every macro). Ephemeral models are recompiled on use."""
        self._setup()
        from dbt.contracts.graph.manifest import Manifest, WritableManifest

        data = dict(manifest_json)
        nodes = data.get("nodes") or {}
        if only is not None:
            keep = _closure(nodes, only)
            data["nodes"] = {k: v for k, v in nodes.items() if k in keep}
            data["sources"] = {k: v for k, v in (data.get("sources") or {}).items() if k in keep}
            for key in ("exposures", "metrics", "semantic_models", "saved_queries", "unit_tests", "disabled"):
                data[key] = {}
        else:
            data["nodes"] = dict(nodes)
        for uid, n in list(data["nodes"].items()):
            if (n.get("config") or {}).get("materialized") == "ephemeral":
                data["nodes"][uid] = {**n, "compiled": False, "compiled_code": None, "extra_ctes": [],
                                      "extra_ctes_injected": False}
        with self._quiet():
            try:
                manifest = Manifest.from_writable_manifest(WritableManifest.from_dict(data))
            except Exception as exc:
                raise ManifestError(f"{self.cfg.manifest_path}: dbt cannot read it back: {one_line(exc)}") from None
        self._use(manifest)
        self._complete = only is None
        return manifest

    # ---- compiling and rendering -----------------------------------------------------------

    def node_id(self, node: str | Path) -> str:
        """A model's unique_id from its unique_id or its file (relative to the project, or absolute)."""
        if self.manifest is None:
            raise ManifestError("no manifest loaded (call parse() or load())")
        key = str(node)
        if key in self.manifest.nodes:
            return key
        path = Path(key)
        if path.is_absolute():
            with contextlib.suppress(ValueError):
                path = path.resolve().relative_to(self.cfg.project_dir)
        uid = self._by_path.get(str(path))
        if uid is None:
            raise ManifestError(f"{node}: not a model or snapshot of {self.cfg.name} (a new file needs parse())")
        return uid

    def render(self, node: str | Path, *, is_incremental: bool | None = None, raw_code: str | None = None) -> str:
        """The SQL dbt compiles for one model or snapshot (ephemeral inputs inlined as CTEs).

        `node`: its unique_id or file; a file is read again (its text as it is now) unless
        `raw_code` is given. `is_incremental`: force `is_incremental()` (None: the model's own
        answer, which needs the warehouse: use it only where dbt may connect). Raises
        `NeedsWarehouse` when a macro queries the warehouse, `RenderError` on other failures.
        Writes nothing; the session's manifest is not changed."""
        uid = self.node_id(node)
        original = self.manifest.nodes[uid]
        if raw_code is None and not str(node).startswith(f"{original.resource_type}."):
            path = self.cfg.project_dir / original.original_file_path
            try:
                raw_code = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ManifestError(f"{path}: cannot read ({exc.strerror})") from None
        target = copy.deepcopy(original)
        if raw_code is not None:
            target.raw_code = raw_code
        return self._compile_one(target, is_incremental, write=False).compiled_code or ""

    def _compile_one(self, node: Any, is_incremental: bool | None, *, write: bool) -> Any:
        node.compiled = False
        node.compiled_code = None
        node.extra_ctes = []
        node.extra_ctes_injected = False
        extra = {} if is_incremental is None else {"is_incremental": (lambda: is_incremental)}
        self._compiler.writes = write
        with self._quiet(), contextlib.chdir(self.cfg.project_dir):
            try:
                return self._compiler.compile_node(node, self.manifest, extra, write=write)
            except Exception as exc:
                if _is_no_connection(exc):
                    raise NeedsWarehouse(f"{node.unique_id}: its SQL queries the warehouse when it compiles "
                                         f"(a macro such as run_query or adapter.get_columns_in_relation)") from None
                raise RenderError(f"{node.unique_id}: dbt cannot compile it: {_dbt_message(exc)}") from None

    def render_branches(self, unique_ids: Iterable[str]) -> dict[str, Branches]:
        """Incremental models' SQL with `is_incremental()` false (full refresh) and true."""
        out: dict[str, Branches] = {}
        for uid in unique_ids:
            sql: list[str | None] = []
            try:
                for branch in (False, True):
                    sql.append(self.render(uid, is_incremental=branch))
                out[uid] = Branches(sql[0], sql[1])
            except NeedsWarehouse as exc:
                out[uid] = Branches(*(sql + [None, None])[:2], error=str(exc), needs_warehouse=True)
            except ManifestError as exc:
                out[uid] = Branches(*(sql + [None, None])[:2], error=str(exc))
        return out

    def compile(self) -> tuple[dict[str, Any], dict[str, str]]:
        """Compile every enabled SQL model and snapshot of the parsed project as ``dbt compile``
        does, but with `is_incremental()` false and no warehouse; write ``manifest.json`` (and
        ``target/compiled``). Returns the manifest as JSON data and {unique_id: why} for the
        nodes that need the warehouse to compile (their SQL is left out)."""
        if self.manifest is None or not self._complete:
            self.parse()
        failed: dict[str, str] = {}
        for uid, node in list(self.manifest.nodes.items()):
            if node.resource_type not in SQL_NODE_TYPES or getattr(node, "language", "sql") != "sql":
                continue
            if not node.config.enabled or node.compiled:
                continue  # an ephemeral model already compiled into a consumer
            try:
                self._compile_one(node, False, write=True)
            except NeedsWarehouse as exc:
                failed[uid] = str(exc)
                node.compiled_code = None
            except RenderError as exc:
                raise ManifestError(f"{self.cfg.manifest_path}: dbt compile failed: {exc}") from None
        from dbt.parser.manifest import write_manifest

        self.cfg.target_path.mkdir(parents=True, exist_ok=True)
        with self._quiet():
            write_manifest(self.manifest, str(self.cfg.target_path))
        return read_manifest(self.cfg.manifest_path), failed


def _closure(nodes: Mapping[str, Any], roots: Iterable[str]) -> set[str]:
    """`roots`, what they depend on, and (transitively) what ephemeral models among those depend
    on: the nodes dbt needs to render the roots."""
    roots = set(roots)
    keep: set[str] = set()
    stack = list(roots)
    while stack:
        uid = stack.pop()
        if uid in keep:
            continue
        keep.add(uid)
        node = nodes.get(uid)
        if node is None:
            continue
        if uid in roots or (node.get("config") or {}).get("materialized") == "ephemeral":
            stack.extend((node.get("depends_on") or {}).get("nodes") or ())
    return keep


def _dbt_message(exc: BaseException) -> str:
    msg = getattr(exc, "msg", None) or str(exc)
    return one_line(msg)


# --------------------------------------------------------------------------------------------
# Compiling a project


def non_utf8_files(cfg: DbtConfig) -> Iterator[Path]:
    """Project files dbt reads (models, seeds, macros, snapshots) that are not UTF-8."""
    for d in cfg.source_dirs:
        if not d.is_dir():
            continue
        for p in sorted(d.rglob("*")):
            if p.suffix in (".sql", ".yml", ".yaml", ".csv", ".py") and p.is_file():
                try:
                    p.read_bytes().decode("utf-8")
                except UnicodeDecodeError:
                    yield p
                except OSError:
                    continue


def compile_project(cfg: DbtConfig, reason: str) -> tuple[dict[str, Any], DbtProject | None]:
    """Compile the project into its target folder; returns the new manifest and, when dbt
    compiled in this process, the `DbtProject` that did (it can render more).

    dbt's parser and compiler run in this process without touching the warehouse
    (`DbtProject.compile`); when some model needs the warehouse to compile, ``dbt compile``
    runs as a child process instead (dbt then opens the warehouse)."""
    vars_ = compiled_vars(cfg)
    shown = f" --vars '{json.dumps(vars_, sort_keys=True)}'" if vars_ and cfg.vars is None else ""
    log.warning("lineage-tools: %s; compiling with dbt (dbt compile%s)", reason, shown)
    bad = next(iter(non_utf8_files(cfg)), None)
    if bad is not None:
        raise ManifestError(f"{bad}: not UTF-8 text, dbt cannot read it")
    session = DbtProject(cfg, vars=vars_)
    try:
        manifest, failed = session.compile()
    except ManifestError as exc:
        session.close()
        msg = str(exc)
        raise ManifestError(msg if "dbt compile failed" in msg else f"{cfg.manifest_path}: dbt compile failed: {msg}") from None
    except BaseException:
        session.close()
        raise
    if not failed:
        return manifest, session
    session.close()
    names = ", ".join(sorted(failed)[:3]) + (" ..." if len(failed) > 3 else "")
    log.warning("lineage-tools: %d model(s) query the warehouse when they compile (%s): running dbt compile",
                len(failed), names)
    rc = run_dbt(cfg.with_vars(vars_), ["compile", "--quiet", "--exclude", "resource_type:test"])
    if rc != 0:
        raise ManifestError(f"{cfg.manifest_path}: dbt compile failed (exit {rc}; see the log above); {names} "
                            "need the warehouse to compile (is another process holding it?)")
    return read_manifest(cfg.manifest_path), None


if __name__ == "__main__":  # pragma: no cover - the child of QuerySession
    if sys.argv[1:] == ["query-session"]:
        sys.exit(_query_session_main())
    sys.exit(f"usage: python -m {__package__}.runner query-session")
