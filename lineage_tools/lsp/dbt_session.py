"""dbt's parsed project held in this process: render one model's SQL from any text, in-process.

A long-lived front end (the language server, the watch loop) keeps one `DbtSession`: dbt's
runtime config, its adapter (registered, never connected) and its parsed manifest. After an
edit it calls `render(path, text)`, which

1. parses the text with dbt's own model parser (the static parser, else a parse-time Jinja
   render) to learn the model's refs and sources, and resolves them against the manifest as
   dbt does (`depends_on` of the edited text: an added ``ref`` is known without a re-parse);
2. compiles a copy of the model's manifest node with that text through dbt's compiler
   (ephemeral inputs inlined as CTEs), with ``is_incremental()`` false: the full-refresh SQL.

Nothing is written (no manifest, no ``target/compiled``), no relation cache is built and no
warehouse connection is opened; the session's manifest is not changed by a render.

This is the smallest adapter the server needs while the project's dbt layer
(``lineage_tools.dbt``) is being written; `render` and `parse` are the two calls that should
move there (see docs/editor.md, "How it works").
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ManifestError

log = logging.getLogger(__name__)

SQL_NODE_TYPES = ("model", "snapshot")
_LINE = re.compile(r"\bline (\d+)\b")


class RenderError(ManifestError):
    """dbt could not render a model's text (a Jinja or compilation error). `line` is the
    1-based line of the model file dbt names, when it names one."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Rendered:
    """One model's text compiled by dbt: its SQL and the nodes it depends on."""

    unique_id: str
    sql: str
    depends_on: tuple[str, ...]


def _one_line(text: object, limit: int = 400) -> str:
    s = " ".join(str(text).split())
    return s[:limit] + ("..." if len(s) > limit else "")


def _dbt_message(exc: BaseException) -> str:
    return _one_line(getattr(exc, "msg", None) or str(exc))


def _error_line(exc: BaseException) -> int | None:
    """The model-file line dbt's error names (Jinja errors carry ``line N``)."""
    m = _LINE.search(str(getattr(exc, "msg", None) or exc))
    return int(m.group(1)) if m else None


class DbtSession:
    """dbt's parser and compiler on one project, in this process. Not thread-safe: one
    thread (the server's analysis worker) uses it."""

    def __init__(self, project_dir: Path, profiles_dir: Path, target: str | None = None):
        self.project_dir = Path(project_dir)
        self.profiles_dir = Path(profiles_dir)
        self.target = target
        self.manifest: Any = None
        self._config: Any = None
        self._compiler: Any = None
        self._by_path: dict[str, str] = {}

    # ---- set-up ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """dbt prints to stdout: send it to stderr, from the project folder (dbt resolves
        relative paths against it)."""
        with contextlib.redirect_stdout(sys.stderr), contextlib.chdir(self.project_dir):
            yield

    def _setup(self) -> None:
        if self._config is not None:
            return
        os.environ.setdefault("DO_NOT_TRACK", "1")
        os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        from argparse import Namespace

        with self._quiet():
            from dbt.adapters.factory import get_adapter, register_adapter, reset_adapters
            from dbt.config.runtime import RuntimeConfig, load_profile, load_project
            from dbt.context.providers import generate_runtime_macro_context
            from dbt.flags import get_flags, set_from_args
            from dbt.mp_context import get_mp_context
            from dbt.tracking import initialize_from_flags
            from dbt_common.context import set_invocation_context
            from dbt_common.events.event_manager_client import cleanup_event_logger

            args = Namespace(project_dir=str(self.project_dir), profiles_dir=str(self.profiles_dir),
                             target=self.target, vars={}, threads=None, profile=None, which="compile",
                             version_check=False, send_anonymous_usage_stats=False, log_level="none",
                             log_level_file="none", quiet=True, partial_parse=True, static_parser=True,
                             introspect=False, populate_cache=False, write_json=False, use_colors=False)
            set_invocation_context(dict(os.environ))
            set_from_args(args, {})
            initialize_from_flags(False, str(self.profiles_dir))  # no usage statistics
            cleanup_event_logger()
            try:
                profile = load_profile(str(self.project_dir), {}, None, self.target, None)
                project = load_project(str(self.project_dir), False, profile, {})
                config = RuntimeConfig.from_parts(project, profile, get_flags())
            except Exception as exc:  # dbt's own config errors: one line, naming the project
                raise ManifestError(f"{self.project_dir}: dbt cannot load the project: {_dbt_message(exc)}") from None
            reset_adapters()
            register_adapter(config, get_mp_context())
            get_adapter(config).set_macro_context_generator(generate_runtime_macro_context)
        self._config = config

    def close(self) -> None:
        """Forget the adapter (it never connected) and the manifest."""
        if self._config is not None:
            from dbt.adapters.factory import reset_adapters

            reset_adapters()
        self._config = self._compiler = self.manifest = None

    def parse(self) -> Any:
        """(Re)parse the project with dbt's parser (partial parsing from
        ``target/partial_parse.msgpack`` when current; dbt rewrites that file, nothing else).
        A changed ``dbt_project.yml`` is read again."""
        self.close()
        self._setup()
        from dbt.adapters.factory import get_adapter
        from dbt.compilation import Compiler
        from dbt.parser.manifest import ManifestLoader

        with self._quiet():
            try:
                manifest = ManifestLoader.get_full_manifest(self._config)
            except Exception as exc:
                raise ManifestError(f"{self.project_dir}: dbt cannot parse the project: {_dbt_message(exc)}") from None
            get_adapter(self._config).set_macro_resolver(manifest)
            manifest.build_flat_graph()
        self.manifest = manifest
        self._compiler = Compiler(self._config)
        self._by_path = {str(n.original_file_path): uid for uid, n in manifest.nodes.items()
                         if n.resource_type in SQL_NODE_TYPES}
        return manifest

    # ---- rendering -------------------------------------------------------------------------

    def node_id(self, path: str) -> str | None:
        """The unique_id of the model or snapshot in `path` (relative to the project)."""
        return self._by_path.get(path)

    def render(self, path: str, text: str, *, is_incremental: bool = False) -> Rendered:
        """The SQL dbt compiles from `text` as the model in `path` (``is_incremental()`` false:
        the full refresh, unless told otherwise), and what it depends on. Raises `RenderError`
        (one line, with the file line when dbt names one)."""
        if self.manifest is None:
            self.parse()
        uid = self.node_id(path)
        if uid is None:
            raise ManifestError(f"{path}: not a model of this project (a new file needs a parse)")
        original = self.manifest.nodes[uid]
        target = copy.deepcopy(original)
        target.raw_code = text
        with self._quiet():
            try:
                target.depends_on.nodes = list(self._dependencies(original, text))
                target.compiled = False
                target.compiled_code = None
                target.extra_ctes = []
                target.extra_ctes_injected = False
                compiled = self._compiler.compile_node(target, self.manifest, {"is_incremental": lambda: is_incremental},
                                                       write=False)
            except RenderError:
                raise
            except Exception as exc:
                raise RenderError(f"{original.name}: dbt cannot compile it: {_dbt_message(exc)}",
                                  _error_line(exc)) from None
        return Rendered(uid, compiled.compiled_code or "", tuple(target.depends_on.nodes))

    def _dependencies(self, original: Any, text: str) -> list[str]:
        """The nodes `text` refs and sources, resolved as dbt's parser resolves them (an
        unknown ref is an error naming it). The text's config() calls are read but not kept:
        the node's configuration stays the manifest's until the project is parsed again."""
        if text == original.raw_code:
            return list(original.depends_on.nodes)
        from dbt.parser.manifest import _process_refs, _process_sources_for_node
        from dbt.parser.models import ModelParser

        scratch = copy.deepcopy(original)
        scratch.raw_code = text
        scratch.refs, scratch.sources = [], []
        scratch.depends_on.nodes = []
        parser = ModelParser(self._config, self.manifest, self._config)
        config = parser.initial_config(scratch.fqn)
        try:
            parser.render_update(scratch, config)
        except Exception as exc:
            raise RenderError(f"{original.name}: dbt cannot parse it: {_dbt_message(exc)}", _error_line(exc)) from None
        name = self._config.project_name
        try:
            _process_refs(self.manifest, name, scratch, self._config.dependencies)
            _process_sources_for_node(self.manifest, name, scratch)
        except Exception as exc:
            raise RenderError(f"{original.name}: {_dbt_message(exc)}", _ref_line(text, exc)) from None
        return list(dict.fromkeys(scratch.depends_on.nodes))


def _ref_line(text: str, exc: BaseException) -> int | None:
    """The line of the ``ref``/``source`` a resolution error names."""
    msg = str(getattr(exc, "msg", None) or exc)
    for m in re.finditer(r"named '([^']+)'", msg):
        name = m.group(1)
        for i, line in enumerate(text.splitlines(), 1):
            if re.search(rf"\b(ref|source)\s*\([^)]*['\"]{re.escape(name)}['\"]", line):
                return i
    return None
