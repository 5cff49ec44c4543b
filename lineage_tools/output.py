"""Writing what a command produces: to stdout, to a device or pipe as it is, or to a regular file
atomically (a temporary file in the same folder, then a rename), never half-written.

`-o PATH` follows what a shell's ``> PATH`` would do, with the rename on top:

* ``-`` is stdout;
* a character or block device (``/dev/null``, ``/dev/full``), a FIFO or a socket is written
  directly: it is never replaced by a regular file, even by root;
* a folder is refused (exit 2), naming it; missing parent folders are created;
* a symbolic link is written through (the file it points to is replaced, the link stays);
* anything else is written to ``.<name>.<random>.tmp`` beside it, flushed, then renamed over
  it; the new file gets the old file's permissions (or the umask's for a new file). The
  temporary file never outlives the call, whatever fails.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> write_text("a\\n", d / "out.txt"); (d / "out.txt").read_text(), sorted(p.name for p in d.iterdir())
('a\\n', ['out.txt'])
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
from pathlib import Path

from .errors import UserError

STDOUT = "-"


class OutputError(UserError):
    """The output path cannot be written: a folder, a missing parent, no permission, a full disk."""


def is_stdout(dest: Path | str | None) -> bool:
    """True when `dest` means standard output (no path, or ``-``)."""
    return dest is None or str(dest) == STDOUT


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _why(exc: OSError) -> str:
    return exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))


def write_text(text: str, dest: Path | str | None, *, newline: bool = False) -> None:
    """Write `text` to `dest` (see the module docstring); `newline` adds a final newline when
    `text` lacks one. Raises `OutputError` (exit 2) naming the path on any failure."""
    if newline and text and not text.endswith("\n"):
        text += "\n"
    if is_stdout(dest):
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(dest)  # type: ignore[arg-type]
    try:
        st = os.stat(path)  # follows links: what a write would reach
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputError(f"{path}: cannot write output ({_why(exc)})") from exc
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{path}: is a folder (-o takes a file; - for stdout)")
    if st is not None and not stat.S_ISREG(st.st_mode):
        _write_direct(text, path)  # a device, FIFO or socket: write into it, never replace it
        return
    _write_replacing(text, Path(os.path.realpath(path)), st.st_mode if st is not None else None)


def _write_direct(text: str, path: Path) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
    except OSError as exc:
        raise OutputError(f"{path}: cannot write output ({_why(exc)})") from exc


def _write_replacing(text: str, path: Path, old_mode: int | None) -> None:
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write output ({_why(exc)})") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        mode = stat.S_IMODE(old_mode) if old_mode is not None else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write output ({_why(exc)})") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
