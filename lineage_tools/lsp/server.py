"""`lineage-tools lsp`: a language server over stdio for the model files of a dbt project.

It loads the project once (`state.Workspace`), publishes `check`'s findings of every model, and
keeps dbt's parsed project and the lineage graph in memory. Each edit of a model (the editor's
text, saved or not) is debounced, then rendered and analysed in one worker thread; its answer is
published only if it is still the answer for the text the editor holds (diagnostics carry the
document version). Hover, go to definition and find references are answered at once from the
last snapshot (`answers.py`).

Files changed outside the editor (a model created, deleted or renamed, YAML, macros, seeds,
``dbt_project.yml``) are seen through the client's ``workspace/didChangeWatchedFiles`` and the
server's own watcher (watchfiles): dbt parses the project again and what changed is analysed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path

from .. import __version__
from ..errors import LineageToolsError
from . import answers
from .state import Snapshot, Workspace, same_text

log = logging.getLogger(__name__)

SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning,
            "information": lsp.DiagnosticSeverity.Information}
STRUCTURE_SUFFIXES = (".yml", ".yaml", ".csv", ".py")


def _path_of_uri(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


class LineageServer(LanguageServer):
    """The server's state: one workspace, one worker thread, the last snapshot."""

    def __init__(self, project_dir: Path | None = None, profiles_dir: Path | None = None,
                 target: str | None = None, debounce: float = 0.25, watch: bool = True):
        super().__init__("lineage-tools", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental)
        self.project_dir = project_dir
        self.profiles_dir = profiles_dir
        self.target = target
        self.debounce = debounce
        self.watch_files = watch
        self.ws: Workspace | None = None
        self.snap: Snapshot | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lineage-worker")
        self._queued = 0  # jobs submitted to the worker and not started yet
        self._busy = 0  # jobs submitted and not finished
        self._queued_lock = threading.Lock()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._published: dict[str, list[lsp.Diagnostic]] = {}
        self._reload_queued = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_watch = threading.Event()

    # ---- plumbing --------------------------------------------------------------------------

    def rel(self, uri: str) -> str | None:
        """A file URI as a path relative to the project (None: outside it)."""
        p = _path_of_uri(uri)
        if p is None or self.ws is None:
            return None
        try:
            return str(p.resolve().relative_to(self.ws.project_dir))
        except ValueError:
            return None

    def uri(self, rel: str) -> str:
        return from_fs_path(str(self.ws.project_dir / rel)) if self.ws else rel

    def submit(self, fn, *args) -> None:
        """Run `fn(*args)` in the worker, after the jobs already queued."""
        with self._queued_lock:
            self._queued += 1
            self._busy += 1

        def run() -> None:
            with self._queued_lock:
                self._queued -= 1
            try:
                fn(*args)
            except LineageToolsError as exc:
                self.notify(f"lineage-tools: {exc}", lsp.MessageType.Error)
            except Exception as exc:  # noqa: BLE001 - the server must stay up; say what happened
                log.exception("lineage-tools lsp: internal error")
                self.notify(f"lineage-tools: internal error: {type(exc).__name__}: {exc}", lsp.MessageType.Error)
            finally:
                with self._queued_lock:
                    self._busy -= 1

        self._worker.submit(run)

    def newer_work(self) -> bool:
        with self._queued_lock:
            return self._queued > 0

    def notify(self, message: str, kind: lsp.MessageType = lsp.MessageType.Info) -> None:
        log.info("%s", message)
        self._call(lambda: self.window_log_message(lsp.LogMessageParams(type=kind, message=message)))
        if kind == lsp.MessageType.Error:
            self._call(lambda: self.window_show_message(lsp.ShowMessageParams(type=kind, message=message)))

    def _call(self, fn) -> None:
        """Run `fn` on the event loop (the only thread that writes to the client)."""
        if self._loop is None or self._loop.is_closed():
            return
        try:
            self._loop.call_soon_threadsafe(fn)
        except RuntimeError:  # the loop closed meanwhile: the client has gone
            pass

    # ---- worker jobs -----------------------------------------------------------------------

    def job_load(self) -> None:
        ws = Workspace(self.project_dir or Path.cwd(), self.profiles_dir, self.target)
        snap = ws.load()
        self.ws = ws  # only a loaded project answers
        n = sum(len(f) for f in snap.findings.values())
        self._call(lambda: self.after(snap, everything=True))
        self.notify(f"lineage-tools: {len(snap.by_path)} models loaded, {n} finding(s); starting dbt")
        ws.warm_up()
        self.notify("lineage-tools: dbt ready: edits are rendered in-process")
        if self.watch_files:
            threading.Thread(target=self._watch, name="lineage-watch", daemon=True).start()
        # documents opened while loading: analyse their text if it is not the file's
        self._call(self._recheck_open_documents)

    def job_edit(self, uri: str) -> None:
        if self.ws is None:
            return
        rel = self.rel(uri)
        doc = self.workspace.text_documents.get(uri)
        if rel is None or doc is None:
            return
        text = doc.source
        if self.ws.uid_of(rel) is None:
            self.job_reload()
            return
        snap0 = self.ws.snapshot
        uid = self.ws.uid_of(rel)
        if snap0 is not None and same_text(snap0.texts.get(uid), text) and uid not in snap0.render_problems \
                and not snap0.pending:
            self._call(lambda: self.after(snap0, force={uid}))
            return
        for i, snap in enumerate(self.ws.edit(rel, text, self.newer_work)):
            # the edited file is answered for every version analysed, even when nothing changed
            self._call(lambda s=snap, f=(uid,) if i == 0 else (): self.after(s, force=f))

    def job_settle(self) -> None:
        if self.ws is not None and self.ws.snapshot is not None and self.ws.snapshot.pending:
            for snap in self.ws.settle(self.newer_work):
                self._call(lambda s=snap: self.after(s))

    def job_reload(self) -> None:
        self._reload_queued = False
        if self.ws is None:
            return
        buffers = {}
        for uri, doc in list(self.workspace.text_documents.items()):
            rel = self.rel(uri)
            if rel is not None:
                buffers[rel] = doc.source
        snap = self.ws.reload(buffers)
        self._call(lambda: self.after(snap, everything=True))

    def job_disk_edit(self, rel: str) -> None:
        """A model file changed on disk and is not open in the editor."""
        if self.ws is None:
            return
        try:
            text = (self.ws.project_dir / rel).read_text(encoding="utf-8")
        except OSError:
            return self.job_reload()
        uid = self.ws.uid_of(rel)
        if uid is None:
            return self.job_reload()
        snap = self.ws.snapshot
        if snap is not None and same_text(snap.texts.get(uid), text):
            return
        for s in self.ws.edit(rel, text, self.newer_work):
            self._call(lambda s=s: self.after(s))

    # ---- publishing (event loop) -----------------------------------------------------------

    def after(self, snap: Snapshot, everything: bool = False, force: Iterable[str] = ()) -> None:
        """A snapshot is ready: keep it for questions, publish the diagnostics it changed for
        files whose text in the editor is the text it analysed."""
        if self.snap is None or snap.generation >= self.snap.generation:
            self.snap = snap
        uids = set(snap.by_path.values()) if everything else set(snap.changed) | set(force)
        for uid in uids:
            path = snap.path_of(uid)
            if path is None or uid not in snap.texts:
                continue
            uri = self.uri(path)
            doc = self.workspace.text_documents.get(uri)
            text = snap.texts[uid]
            version = None
            if doc is not None:
                if not same_text(doc.source, text):
                    continue  # the editor holds a newer text: its own job will answer
                version = doc.version
            diags = [self._diagnostic(p) for p in answers.problems(snap, uid, text)]
            prev = self._published.get(uri)
            if uid not in force and (prev == diags or prev is None and not diags and doc is None):
                continue
            self._published[uri] = diags
            self.text_document_publish_diagnostics(
                lsp.PublishDiagnosticsParams(uri=uri, diagnostics=diags, version=version))
        for uri in [u for u in self._published if everything and self.rel(u) not in snap.by_path]:
            self._published.pop(uri)
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
        if snap.pending and not self.newer_work():
            self.submit(self.job_settle)

    @staticmethod
    def _diagnostic(p: answers.Problem) -> lsp.Diagnostic:
        return lsp.Diagnostic(
            range=lsp.Range(start=lsp.Position(line=p.line, character=p.start),
                            end=lsp.Position(line=p.line, character=max(p.end, p.start))),
            message=p.message, severity=SEVERITY[p.severity], code=p.code, source=answers.SOURCE)

    def schedule(self, uri: str, delay: float | None = None) -> None:
        """Debounce: the edit of `uri` is analysed once its text has been still for a moment."""
        loop = asyncio.get_running_loop()
        old = self._timers.pop(uri, None)
        if old is not None:
            old.cancel()

        def fire() -> None:
            self._timers.pop(uri, None)
            self.submit(self.job_edit, uri)

        self._timers[uri] = loop.call_later(self.debounce if delay is None else delay, fire)

    def schedule_reload(self) -> None:
        if not self._reload_queued:
            self._reload_queued = True
            self.submit(self.job_reload)

    def _recheck_open_documents(self) -> None:
        for uri in list(self.workspace.text_documents):
            if self.rel(uri) is not None:
                self.schedule(uri, 0)

    # ---- the server's own file watcher -----------------------------------------------------

    def _watch(self) -> None:
        """Files changed outside the editor (git checkout, a generator, another editor)."""
        from watchfiles import Change, watch

        ws = self.ws
        assert ws is not None
        roots = [str(d) for d in ws.cfg.source_dirs if d.is_dir()] + [str(ws.project_dir / "dbt_project.yml")]
        try:
            for changes in watch(*roots, stop_event=self._stop_watch, debounce=200, step=50,
                                 raise_interrupt=False):
                self._call(lambda c=changes: self.on_disk_changes(
                    [(kind == Change.deleted, kind == Change.added, Path(p)) for kind, p in c]))
        except Exception as exc:  # noqa: BLE001 - watching is a convenience; say it stopped
            log.warning("lineage-tools lsp: file watcher stopped: %s", exc)

    def on_disk_changes(self, changes: list[tuple[bool, bool, Path]]) -> None:
        """Disk events (deleted, added, path): a changed model file not open in the editor is
        analysed from the disk; anything else that dbt parses makes dbt parse again."""
        if self.ws is None:
            return
        for deleted, added, path in changes:
            try:
                rel = str(path.resolve().relative_to(self.ws.project_dir))
            except ValueError:
                continue
            if path.suffix == ".sql" and not deleted and not added and self.ws.uid_of(rel) is not None:
                if self.workspace.text_documents.get(self.uri(rel)) is None:
                    self.submit(self.job_disk_edit, rel)
                continue
            if path.suffix in (".sql", *STRUCTURE_SUFFIXES) or path.name == "dbt_project.yml":
                if path.suffix == ".sql" and not (deleted or added) and self.ws.uid_of(rel) is not None:
                    continue
                self.schedule_reload()


def build_server(project_dir: Path | None = None, profiles_dir: Path | None = None, target: str | None = None,
                 debounce: float = 0.25, watch: bool = True) -> LineageServer:
    """The language server with its features registered."""
    server = LineageServer(project_dir, profiles_dir, target, debounce, watch)

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: LineageServer, params: lsp.InitializeParams) -> None:
        opts = params.initialization_options if isinstance(params.initialization_options, dict) else {}
        if ls.project_dir is None:
            root = opts.get("projectDir") or (params.root_uri and _path_of_uri(params.root_uri)) \
                or (params.workspace_folders and _path_of_uri(params.workspace_folders[0].uri))
            ls.project_dir = Path(root) if root else Path.cwd()
        if ls.profiles_dir is None and opts.get("profilesDir"):
            ls.profiles_dir = Path(opts["profilesDir"])
        ls.target = ls.target or opts.get("target")
        if "debounceMs" in opts:
            ls.debounce = float(opts["debounceMs"]) / 1000

    @server.feature(lsp.INITIALIZED)
    def initialized(ls: LineageServer, params: lsp.InitializedParams) -> None:
        ls._loop = asyncio.get_running_loop()
        ls.submit(ls.job_load)

    @server.feature(lsp.SHUTDOWN)
    def shutdown(ls: LineageServer, params: Any) -> None:
        ls._stop_watch.set()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: LineageServer, params: lsp.DidOpenTextDocumentParams) -> None:
        uri = params.text_document.uri
        snap = ls.snap
        rel = ls.rel(uri)
        log.debug("didOpen %s (%s), snapshot %s", uri, rel, snap.generation if snap else None)
        if snap is None or rel is None:
            return
        uid = snap.by_path.get(rel)
        if uid is not None and same_text(snap.texts.get(uid), params.text_document.text):
            ls._published.pop(uri, None)
            ls.after(snap, force={uid})
        elif rel.endswith(".sql"):
            ls.schedule(uri, 0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LineageServer, params: lsp.DidChangeTextDocumentParams) -> None:
        if ls.rel(params.text_document.uri) is not None and params.text_document.uri.endswith(".sql"):
            ls.schedule(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE, lsp.SaveOptions(include_text=False))
    def did_save(ls: LineageServer, params: lsp.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        rel = ls.rel(uri)
        if rel is None or ls.ws is None:
            return
        if rel.endswith(".sql") and ls.ws.uid_of(rel) is not None:
            ls.schedule(uri, 0)
        elif rel.endswith((".sql", *STRUCTURE_SUFFIXES)):
            ls.schedule_reload()

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LineageServer, params: lsp.DidCloseTextDocumentParams) -> None:
        rel = ls.rel(params.text_document.uri)
        if rel is not None and ls.ws is not None and ls.ws.uid_of(rel) is not None:
            ls.submit(ls.job_disk_edit, rel)  # the file on disk is the model again

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched(ls: LineageServer, params: lsp.DidChangeWatchedFilesParams) -> None:
        changes = []
        for ev in params.changes:
            p = _path_of_uri(ev.uri)
            if p is not None:
                changes.append((ev.type == lsp.FileChangeType.Deleted, ev.type == lsp.FileChangeType.Created, p))
        ls.on_disk_changes(changes)

    @server.feature(lsp.WORKSPACE_DID_RENAME_FILES)
    def did_rename(ls: LineageServer, params: lsp.RenameFilesParams) -> None:
        ls.schedule_reload()

    @server.feature(lsp.WORKSPACE_DID_CREATE_FILES)
    def did_create(ls: LineageServer, params: lsp.CreateFilesParams) -> None:
        ls.schedule_reload()

    @server.feature(lsp.WORKSPACE_DID_DELETE_FILES)
    def did_delete(ls: LineageServer, params: lsp.DeleteFilesParams) -> None:
        ls.schedule_reload()

    def _where(ls: LineageServer, params: Any) -> tuple[Snapshot, str, str] | None:
        snap = ls.snap
        rel = ls.rel(params.text_document.uri)
        if snap is None or rel is None or rel not in snap.by_path:
            return None
        doc = ls.workspace.get_text_document(params.text_document.uri)
        return snap, snap.by_path[rel], doc.source

    def _loc(ls: LineageServer, loc: answers.Location) -> lsp.Location:
        return lsp.Location(uri=ls.uri(loc.path), range=lsp.Range(
            start=lsp.Position(line=loc.line, character=loc.start), end=lsp.Position(line=loc.line, character=loc.end)))

    @server.feature("lineageTools/status")
    def status(ls: LineageServer, params: Any) -> dict[str, Any]:
        """Whether the server is busy: for benchmarks and scripts (not part of LSP)."""
        snap = ls.snap
        return {"ready": ls.ws is not None and ls.ws.session.manifest is not None,
                "generation": snap.generation if snap else 0, "pending": bool(snap and snap.pending),
                "busy": ls._busy, "debouncing": len(ls._timers),
                "models": len(snap.by_path) if snap else 0}

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: LineageServer, params: lsp.HoverParams) -> lsp.Hover | None:
        where = _where(ls, params)
        if where is None:
            return None
        snap, uid, text = where
        md = answers.hover(snap, uid, text, params.position.line, params.position.character)
        if md is None:
            return None
        return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=md))

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: LineageServer, params: lsp.DefinitionParams) -> list[lsp.Location] | None:
        where = _where(ls, params)
        if where is None:
            return None
        snap, uid, text = where
        return [_loc(ls, x) for x in answers.definition(snap, uid, text, params.position.line, params.position.character)]

    @server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
    def references(ls: LineageServer, params: lsp.ReferenceParams) -> list[lsp.Location] | None:
        where = _where(ls, params)
        if where is None:
            return None
        snap, uid, text = where
        found = answers.references(snap, uid, text, params.position.line, params.position.character,
                                   params.context.include_declaration)
        return [_loc(ls, x) for x in found]

    return server


def serve(project_dir: Path | None = None, profiles_dir: Path | None = None, target: str | None = None,
          debounce: float = 0.25, watch: bool = True) -> None:
    """Serve on stdio until the client says exit. Anything else that writes to stdout (dbt)
    goes to stderr: stdout carries only the protocol."""
    logging.getLogger("pygls").setLevel(logging.WARNING)
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    server = build_server(project_dir, profiles_dir, target, debounce, watch)
    server.start_io(sys.stdin.buffer, protocol_out)
