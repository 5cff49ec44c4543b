"""The source registry seed (`seeds/data_sources.csv`): read it, validate source ids, and
change a source's status durably.

The registry is a CSV a reviewer reads in a diff, so an edit changes only the cells it must
(`status`, `status_reason`, `status_changed_on`) and keeps every other byte: row order,
quoting, line endings. Files are replaced atomically (temp file + rename).

>>> check_id_syntax("spam_model_v1")
'spam_model_v1'
>>> split_raw_fields('a,"b, c",,d')
['a', '"b, c"', '', 'd']
>>> quote_field('needs, quotes')
'"needs, quotes"'
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from .errors import UnknownNodeError, UserError

log = logging.getLogger(__name__)

SOURCE_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
ACTIVE, QUARANTINED = "active", "quarantined"
STATUS_COLUMNS = ("status", "status_reason", "status_changed_on")


class RegistryError(UserError):
    """The registry seed is missing or does not have the columns this tool needs."""


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


def _read_text(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return fh.read()
    except OSError as err:
        raise RegistryError(f"cannot read the source registry {path}: {err.strerror}") from err


def read_registry(path: Path) -> Registry:
    """Read the registry CSV at `path`."""
    text = _read_text(path)
    rows = list(csv.reader(io.StringIO(text)))
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
    first date). Returns the ids whose row changed.
    """
    for sid in source_ids:
        check_id_syntax(sid)
    reason = " ".join(reason.split())
    text = _read_text(path)
    records = _records(text)
    if not records:
        raise RegistryError(f"the source registry {path} is empty")
    header = [h.strip() for h in next(csv.reader([records[0][0]]))]
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
