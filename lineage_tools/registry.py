"""The source registry seed (`seeds/data_sources.csv`): read it, validate source ids, and
change a source's status durably.

The registry is a CSV a reviewer reads in a diff, so an edit changes only the cells it must
(`status`, `status_reason`, `status_changed_on`) and keeps every other byte: row order,
quoting, line endings. Files are replaced atomically (temp file + rename).

One writer at a time: every change runs under `locked(path)`, a lock file beside the registry
(``.data_sources.csv.lock``, from the filelock library) that a whole quarantine holds from
reading the registry to its final proof. A second writer waits a bounded time, then fails with
`RegistryBusyError` naming the holder (its pid, command and start, from ``...lock.holder``).

>>> check_id_syntax("spam_model_v1")
'spam_model_v1'
>>> split_raw_fields('a,"b, c",,d')
['a', '"b, c"', '', 'd']
>>> quote_field('needs, quotes')
'"needs, quotes"'
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import re
import socket
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import filelock

from .errors import UnknownNodeError, UserError

log = logging.getLogger(__name__)

SOURCE_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
ACTIVE, QUARANTINED = "active", "quarantined"
STATUS_COLUMNS = ("status", "status_reason", "status_changed_on")
#: How long a writer waits for another one to finish (seconds); LINEAGE_TOOLS_LOCK_WAIT overrides.
LOCK_WAIT = 600.0
BOM = "\ufeff"  # a byte-order mark some editors write: read past it, keep it when writing


class RegistryError(UserError):
    """The registry seed is missing or does not have the columns this tool needs."""


class RegistryBusyError(UserError):
    """Another writer held the registry for longer than this one would wait. Exit 2."""


@dataclass(frozen=True)
class Source:
    """One registered source: its id, status and the rest of its row (as text)."""

    source_id: str
    status: str
    status_reason: str = ""
    status_changed_on: str = ""
    fields: tuple[tuple[str, str], ...] = ()

    def get(self, column: str) -> str | None:
        return dict(self.fields).get(column)


@dataclass(frozen=True)
class Registry:
    """The registry as read from its CSV file, in file order."""

    path: Path
    sources: tuple[Source, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(s.source_id for s in self.sources)

    def get(self, source_id: str) -> Source | None:
        return next((s for s in self.sources if s.source_id == source_id), None)

    @property
    def quarantined(self) -> tuple[str, ...]:
        return tuple(s.source_id for s in self.sources if s.status == QUARANTINED)


def check_id_syntax(source_id: str) -> str:
    """Return `source_id` if it is a well-formed source id; raise `UserError` otherwise.

    >>> check_id_syntax("x'; drop table users; --")
    Traceback (most recent call last):
    ...
    lineage_tools.errors.UserError: not a valid source id: "x'; drop table users; --" (expected lower-case letters, digits and _, starting with a letter)
    """
    if not isinstance(source_id, str) or not SOURCE_ID_RE.fullmatch(source_id):
        raise UserError(
            f"not a valid source id: {source_id!r} (expected lower-case letters, digits and _, "
            "starting with a letter)"
        )
    return source_id


def validate_ids(source_ids: Iterable[str], registry: Registry) -> tuple[str, ...]:
    """Check syntax and registration of every id; keep order, drop duplicates.

    Raises `UnknownNodeError` (exit 2) naming the unknown ids and listing the registered ones.
    """
    ids: list[str] = []
    for sid in source_ids:
        if sid not in ids:
            ids.append(sid)
    if not ids:
        raise UserError("no source id given")
    unknown = [s for s in ids if s not in registry.ids]
    if unknown:
        raise UnknownNodeError(
            f"unknown source id{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"in {registry.path.name}; registered: {', '.join(registry.ids) or '(none)'}"
        )
    for sid in ids:
        check_id_syntax(sid)
    return tuple(ids)


def lock_path(path: Path) -> Path:
    """The lock file of the registry at `path` (beside it, hidden)."""
    return path.with_name(f".{path.name}.lock")


def lock_wait() -> float:
    """Seconds a writer waits for the registry: LINEAGE_TOOLS_LOCK_WAIT, else `LOCK_WAIT`."""
    raw = os.environ.get("LINEAGE_TOOLS_LOCK_WAIT", "")
    try:
        return max(0.0, float(raw)) if raw.strip() else LOCK_WAIT
    except ValueError:
        raise UserError(f"LINEAGE_TOOLS_LOCK_WAIT={raw!r}: not a number of seconds") from None


def _holder_path(path: Path) -> Path:
    return lock_path(path).with_name(lock_path(path).name + ".holder")


def holder(path: Path) -> str:
    """Who holds the registry's lock, as one line (best effort: the holder writes it on taking
    the lock and removes it on letting go)."""
    try:
        info = json.loads(_holder_path(path).read_text(encoding="utf-8"))
        return (f"pid {info['pid']} on {info['host']}, `{info['command']}`, since {info['since']}")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (it left no name)"


@contextlib.contextmanager
def locked(path: Path, *, wait: float | None = None) -> Iterator[None]:
    """Hold the registry at `path` for writing; re-entrant in one thread. Waits `wait` seconds
    (default `lock_wait()`) for another holder, then raises `RegistryBusyError` naming it."""
    wait = lock_wait() if wait is None else wait
    lock = filelock.FileLock(lock_path(path), is_singleton=True)
    try:
        lock.acquire(timeout=wait)
    except filelock.Timeout:
        raise RegistryBusyError(
            f"the source registry {path} is being changed by {holder(path)}; waited {wait:g} s "
            "(LINEAGE_TOOLS_LOCK_WAIT sets how long): run this again when it has finished") from None
    except OSError as err:
        raise RegistryError(f"cannot lock the source registry {path}: {err.strerror or err}") from err
    outermost = lock.lock_counter == 1
    try:
        if outermost:
            _write_holder(path)
        yield
    finally:
        if outermost:
            with contextlib.suppress(OSError):
                _holder_path(path).unlink()
        lock.release()


def _write_holder(path: Path) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300],
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with contextlib.suppress(OSError):
        write_atomic(_holder_path(path), json.dumps(info))


def _read_text(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return fh.read()
    except OSError as err:
        raise RegistryError(f"cannot read the source registry {path}: {err.strerror}") from err


def read_registry(path: Path) -> Registry:
    """Read the registry CSV at `path`."""
    text = _read_text(path)
    try:
        rows = list(csv.reader(io.StringIO(text.removeprefix(BOM), newline="")))
    except csv.Error as err:
        raise RegistryError(f"the source registry {path} is not a CSV file this tool can read ({err})") from None
    if not rows:
        raise RegistryError(f"the source registry {path} is empty")
    header = [h.strip() for h in rows[0]]
    if "source_id" not in header:
        raise RegistryError(f"the source registry {path} has no source_id column")
    sources = []
    for row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue
        values = dict(zip(header, (cell.strip() for cell in row)))
        sources.append(
            Source(
                source_id=values.get("source_id", ""),
                status=values.get("status", "") or ACTIVE,
                status_reason=values.get("status_reason", ""),
                status_changed_on=values.get("status_changed_on", ""),
                fields=tuple(values.items()),
            )
        )
    return Registry(path=path, sources=tuple(sources))


def split_raw_fields(record: str) -> list[str]:
    """Split one CSV record (without its line ending) into its raw field texts, quotes kept."""
    fields, cur, in_quotes, i = [], [], False, 0
    while i < len(record):
        ch = record[i]
        if in_quotes:
            cur.append(ch)
            if ch == '"':
                if i + 1 < len(record) and record[i + 1] == '"':
                    cur.append('"')
                    i += 1
                else:
                    in_quotes = False
        elif ch == '"':
            in_quotes = True
            cur.append(ch)
        elif ch == ",":
            fields.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    fields.append("".join(cur))
    return fields


def quote_field(value: str) -> str:
    """Quote a value the way the csv module's QUOTE_MINIMAL would."""
    if any(c in value for c in ',"\r\n') or value != value.strip():
        return '"' + value.replace('"', '""') + '"'
    return value


def _records(text: str) -> list[tuple[str, str]]:
    """Split `text` into (record, line ending) pairs; a record may span lines inside quotes."""
    out: list[tuple[str, str]] = []
    buf, in_quotes, i = [], False, 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            in_quotes = not in_quotes
            buf.append(ch)
        elif ch in "\r\n" and not in_quotes:
            end = "\r\n" if text.startswith("\r\n", i) else ch
            out.append(("".join(buf), end))
            buf = []
            i += len(end)
            continue
        else:
            buf.append(ch)
        i += 1
    if buf:
        out.append(("".join(buf), ""))
    return out


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically: a reader sees the old file or the new one."""
    from .output import write_text

    write_text(text, path)


def set_status(
    path: Path,
    source_ids: Sequence[str],
    status: str,
    reason: str,
    on: date | None = None,
) -> tuple[str, ...]:
    """Set `status` (and its reason and date) of `source_ids` in the registry CSV at `path`.

    Only rows whose status changes are touched (so a re-run changes nothing and keeps the
    first date). Returns the ids whose row changed. Reads and writes under `locked(path)`, so
    concurrent writers never undo each other's change.
    """
    for sid in source_ids:
        check_id_syntax(sid)
    with locked(path):
        try:
            return _set_status(path, source_ids, status, " ".join(reason.split()), on)
        except csv.Error as err:
            raise RegistryError(f"the source registry {path} is not a CSV file this tool can edit ({err})") from None


def _set_status(path: Path, source_ids: Sequence[str], status: str, reason: str,
                on: date | None) -> tuple[str, ...]:
    text = _read_text(path)
    records = _records(text)
    if not records:
        raise RegistryError(f"the source registry {path} is empty")
    header = [h.strip() for h in next(csv.reader([records[0][0].removeprefix(BOM)]))]
    missing = [c for c in ("source_id", *STATUS_COLUMNS) if c not in header]
    if missing:
        raise RegistryError(f"the source registry {path} has no column {', '.join(missing)}")
    idx = {c: header.index(c) for c in ("source_id", *STATUS_COLUMNS)}
    new_values = {
        "status": status,
        "status_reason": reason,
        "status_changed_on": (on or date.today()).isoformat(),
    }
    changed: list[str] = []
    out = [records[0][0] + records[0][1]]
    for record, end in records[1:]:
        raw = split_raw_fields(record)
        parsed = next(csv.reader([record]), [])
        sid = parsed[idx["source_id"]].strip() if len(parsed) > idx["source_id"] else ""
        current = parsed[idx["status"]].strip() if len(parsed) > idx["status"] else ""
        if sid in source_ids and current != status:
            while len(raw) < len(header):
                raw.append("")
            for col, value in new_values.items():
                raw[idx[col]] = quote_field(value)
            record = ",".join(raw)
            changed.append(sid)
        out.append(record + end)
    if changed:
        write_atomic(path, "".join(out))
        log.info("registry %s: %s set to %s", path.name, ", ".join(changed), status)
    return tuple(changed)
