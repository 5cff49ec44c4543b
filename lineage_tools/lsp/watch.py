"""`lineage-tools watch`: the language server's loop in a terminal. The project is loaded once;
on every save (watchfiles) the saved model is rendered in-process by dbt, analysed with what it
changes downstream, and the findings and what changed in lineage are printed.

Output (stdout), per save::

    12:03:04 models/marts/training_examples.sql (0.41 s)
      lineage: training_examples: - column label_source_ids; 2 edge(s) removed
      models/marts/training_examples.sql:43: error [rule 3] training_examples: the origin of ...
      1 finding(s) in 1 model(s)
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from ..records import ModelLineage
from . import answers
from .state import Snapshot, Workspace

log = logging.getLogger(__name__)


def lineage_changes(before: ModelLineage | None, after: ModelLineage | None, name: str) -> str | None:
    """One line saying how a model's lineage changed (columns, edges, status), or None."""
    if before is None or after is None:
        return f"{name}: {'new model' if before is None else 'removed'}" if before is not after else None
    a, b = before.lineage, after.lineage
    parts = []
    added = [c for c in b.columns if c not in a.columns]
    removed = [c for c in a.columns if c not in b.columns]
    if added:
        parts.append("+ column " + ", ".join(added))
    if removed:
        parts.append("- column " + ", ".join(removed))
    ea, eb = set(a.edges), set(b.edges)
    if eb - ea:
        parts.append(f"{len(eb - ea)} edge(s) added")
    if ea - eb:
        parts.append(f"{len(ea - eb)} edge(s) removed")
    if a.status != b.status:
        parts.append(f"status {a.status.value} -> {b.status.value}")
    return f"{name}: {'; '.join(parts)}" if parts else None


def report(snap: Snapshot, before: Snapshot | None, uids: Iterable[str], out: TextIO) -> int:
    """Print what changed in lineage and the findings of the models `uids`; returns how many
    findings the whole project has."""
    uids = sorted(set(uids), key=lambda u: snap.path_of(u) or u)
    for uid in uids:
        old = before.graph.models.get(uid) if before else None
        line = lineage_changes(old, snap.graph.models.get(uid), snap.graph.display_name(uid))
        if line:
            out.write(f"  lineage: {line}\n")
    for uid in uids:
        path = snap.path_of(uid)
        for p in answers.problems(snap, uid):
            out.write(f"  {path}:{p.line + 1}: {p.severity} [{p.code}] {p.message}\n")
    total = sum(len(answers.problems(snap, u)) for u in snap.by_path.values())
    models = sum(1 for u in snap.by_path.values() if answers.problems(snap, u))
    out.write(f"  {total} finding(s) in {models} model(s)\n")
    out.flush()
    return total


def run(project_dir: Path, profiles_dir: Path | None = None, target: str | None = None, *,
        out: TextIO = sys.stdout, stop: Callable[[], bool] | None = None, debounce_ms: int = 200) -> int:
    """Watch until interrupted (or `stop()`); returns the number of findings at the end."""
    from watchfiles import Change, watch

    ws = Workspace(project_dir, profiles_dir, target)
    t0 = time.perf_counter()
    snap = ws.load()
    total = report(snap, None, [u for u in snap.by_path.values() if answers.problems(snap, u)], out)
    ws.warm_up()
    out.write(f"watching {ws.project_dir} ({len(snap.by_path)} models, ready in "
              f"{time.perf_counter() - t0:.1f} s); Ctrl-C to stop\n")
    out.flush()
    roots = [str(d) for d in ws.cfg.source_dirs if d.is_dir()] + [str(ws.project_dir / "dbt_project.yml")]
    import threading

    stop_event = threading.Event()
    if stop is not None:
        def poll() -> None:
            while not stop():
                time.sleep(0.05)
            stop_event.set()
        threading.Thread(target=poll, daemon=True).start()
    for changes in watch(*roots, stop_event=stop_event, debounce=debounce_ms, raise_interrupt=False):
        before = ws.snapshot
        t1 = time.perf_counter()
        edits: list[str] = []
        structural = False
        for kind, p in changes:
            path = Path(p)
            try:
                rel = str(path.resolve().relative_to(ws.project_dir))
            except ValueError:
                continue
            if path.suffix == ".sql" and kind == Change.modified and ws.uid_of(rel) is not None:
                edits.append(rel)
            elif path.suffix in (".sql", ".yml", ".yaml", ".csv", ".py") or path.name == "dbt_project.yml":
                structural = True
        try:
            if structural:
                snap = ws.reload()
                touched = set(snap.changed)
            else:
                touched = set()
                for rel in dict.fromkeys(edits):
                    text = (ws.project_dir / rel).read_text(encoding="utf-8")
                    for snap in ws.edit(rel, text):
                        touched |= snap.changed
        except Exception as exc:  # noqa: BLE001 - keep watching; say what went wrong
            out.write(f"{time.strftime('%H:%M:%S')} error: {exc}\n")
            out.flush()
            continue
        if not edits and not structural:
            continue
        what = ", ".join(dict.fromkeys(edits)) or "project files"
        out.write(f"{time.strftime('%H:%M:%S')} {what} ({time.perf_counter() - t1:.2f} s)\n")
        total = report(snap, before, touched, out)
    return total
