"""The editor's text of one model rendered in-process by dbt, on the project the dbt layer holds.

`EditorSession` is the dbt layer's `DbtProject` (dbt's parser and compiler in this process:
no warehouse connection, no relation cache, nothing written) with the one thing an editor needs
beyond `DbtProject.render(path, raw_code=...)`: the text may ref models the parsed manifest
does not list among the model's dependencies (the analyst just typed the ``ref``). dbt's
compiler refuses such a ref ("dbt was unable to infer all dependencies"), so `render_text`
first parses the text with dbt's own model parser (the static parser, else a parse-time Jinja
render) and resolves its refs and sources against the manifest as dbt's loader does; the copy
it compiles depends on exactly those. The text's ``config()`` calls are read but not kept:
the model's configuration stays the parsed project's until the file is saved and the project
parsed again.

Used by the editor loop (`lineage_tools.lsp`); `text_dependencies` is what `DbtProject.render`
would need to render any editor text itself (see docs/editor.md).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from ..errors import ManifestError
from .runner import DbtProject, NeedsWarehouse
from .runner import RenderError as _DbtRenderError

_LINE = re.compile(r"\bline (\d+)\b")
_CALLS = re.compile(r"\b(?:ref|source)\s*\([^)]*\)")


def _calls(text: str) -> list[str]:
    """The ``ref(...)`` / ``source(...)`` calls of a text, spaces removed, sorted."""
    return sorted("".join(m.group(0).split()) for m in _CALLS.finditer(text))


class RenderError(ManifestError):
    """dbt could not render a model's text (a Jinja or compilation error, an unknown ref, a ref
    that makes a cycle). `line` is the 1-based line of the text it names, when known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Rendered:
    """One model's text compiled by dbt: its SQL and the nodes it depends on."""

    unique_id: str
    sql: str
    depends_on: tuple[str, ...]


def _message(exc: BaseException) -> str:
    text = " ".join(str(getattr(exc, "msg", None) or exc).split())
    return text[:400] + ("..." if len(text) > 400 else "")


def _error_line(text: str, exc: BaseException) -> int | None:
    """The line of the text an error is about: the ``line N`` dbt's Jinja errors carry, else
    the line of the ``ref``/``source`` a resolution error names."""
    msg = str(getattr(exc, "msg", None) or exc)
    m = _LINE.search(msg)
    if m:
        return int(m.group(1))
    for m in re.finditer(r"named '([^']+)'", msg):
        name = re.escape(m.group(1))
        for i, line in enumerate(text.splitlines(), 1):
            if re.search(rf"\b(ref|source)\s*\([^)]*['\"]{name}['\"]", line):
                return i
    return None


class EditorSession(DbtProject):
    """A `DbtProject` that renders editor text, new refs included. One thread uses it."""

    def render_text(self, path: str, text: str, *, is_incremental: bool = False) -> Rendered:
        """The SQL dbt compiles from `text` as the model in `path` (relative to the project;
        ``is_incremental()`` false unless told otherwise) and the nodes it depends on. Raises
        `RenderError` with the text's line when dbt names one."""
        if self.manifest is None:
            self.parse()
        uid = self.node_id(path)
        original = self.manifest.nodes[uid]
        target = copy.deepcopy(original)
        target.raw_code = text
        target.depends_on.nodes = self.text_dependencies(original, text)
        try:
            compiled = self._compile_one(target, is_incremental, write=False)
        except (NeedsWarehouse, _DbtRenderError) as exc:
            raise RenderError(f"{original.name}: {_message(exc).split(': ', 1)[-1]}", _error_line(text, exc)) from None
        return Rendered(uid, compiled.compiled_code or "", tuple(target.depends_on.nodes))

    def set_text(self, unique_id: str, text: str, depends_on: tuple[str, ...]) -> None:
        """The parsed project's node now reads `text`: for an ephemeral model, whose SQL dbt
        inlines into its consumers' when it renders them (its compiled SQL is dropped, so the
        next render compiles the new text)."""
        node = self.manifest.nodes[unique_id]
        node.raw_code = text
        node.depends_on.nodes = list(depends_on)
        node.compiled = False
        node.compiled_code = None
        node.extra_ctes = []
        node.extra_ctes_injected = False
        node._pre_injected_sql = None  # what dbt inlines when set

    def text_dependencies(self, original: Any, text: str) -> list[str]:
        """The nodes `text` refs and sources, resolved as dbt's parser resolves them (an unknown
        ref is an error naming it)."""
        if text == original.raw_code or _calls(text) == _calls(original.raw_code):
            return list(original.depends_on.nodes)  # the same refs and sources: the same nodes
        from dbt.parser.manifest import _process_refs, _process_sources_for_node
        from dbt.parser.models import ModelParser

        scratch = copy.deepcopy(original)
        scratch.raw_code = text
        scratch.refs, scratch.sources = [], []
        scratch.depends_on.nodes = []
        with self._quiet():
            try:
                parser = self.__dict__.get("_parser")
                if parser is None or parser.manifest is not self.manifest:
                    parser = self.__dict__["_parser"] = ModelParser(self._config, self.manifest, self._config)
                parser.render_update(scratch, parser.initial_config(scratch.fqn))
                name = self._config.project_name
                _process_refs(self.manifest, name, scratch, self._config.dependencies)
                _process_sources_for_node(self.manifest, name, scratch)
            except Exception as exc:  # dbt's own parse / resolution errors, one line
                raise RenderError(f"{original.name}: {_message(exc)}", _error_line(text, exc)) from None
        return list(dict.fromkeys(scratch.depends_on.nodes))
