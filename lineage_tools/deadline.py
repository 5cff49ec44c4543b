"""A hard deadline for one call: run it in a forked child and kill the child when time is up.

sqlglot's compiled parser and optimizer do not return to the interpreter for long stretches, so a
timer or signal in the same process cannot stop them (a 4,000-term sum spends 9 s inside one
`qualify` call; a SIGALRM set for 1 s ran after 64 s). A forked child shares everything the
parent has built (catalog, parsed trees) without copying it up front, and can be killed at any
instant. Forking costs a few milliseconds, so callers isolate only work that may be long (see
`lineage.analyze`: large statements), and run the rest in-process.

>>> run(sum, [1, 2, 3], seconds=30)
6
>>> import time
>>> run(time.sleep, 5, seconds=0.2)
Traceback (most recent call last):
...
lineage_tools.deadline.DeadlineExceeded: 0.2
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


DEFAULT_TIME_BUDGET = 60.0  # seconds of analysis per model or statement: the CLI's default


class DeadlineExceeded(Exception):
    """The call ran past its deadline and was stopped. Carries the seconds it was given."""


def can_isolate() -> bool:
    """True where a call can run in a forked child (POSIX)."""
    return hasattr(os, "fork")


def run(fn: Callable[..., T], *args: Any, seconds: float, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a forked child, its result (or exception) sent back pickled;
    `DeadlineExceeded` when it has not answered within `seconds` (the child is killed).

    Without fork (not POSIX), the call runs here, without a hard deadline."""
    if not can_isolate():
        return fn(*args, **kwargs)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, answer, leave without running the parent's cleanup
        os.close(read_fd)
        _child(write_fd, fn, args, kwargs)
    os.close(write_fd)
    try:
        data = _read_until(read_fd, time.monotonic() + seconds)
    finally:
        os.close(read_fd)
    if data is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise DeadlineExceeded(seconds)
    os.waitpid(pid, 0)
    try:
        ok, value = pickle.loads(data)
    except Exception as exc:  # the child died before answering (killed, out of memory)
        raise RuntimeError(f"the isolated call ended without an answer ({exc!r})") from None
    if ok:
        return value
    raise value


def _child(write_fd: int, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    code = 0
    try:
        logging.disable(logging.CRITICAL)  # the parent owns the terminal (and maybe a progress bar)
        try:
            answer = (True, fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - sent to the parent, which raises it
            answer = (False, exc)
        try:
            data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001
            data = pickle.dumps((False, RuntimeError(f"unpicklable answer: {exc!r}")))
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view):]
    except BaseException:  # noqa: BLE001
        code = 1
    finally:
        os._exit(code)  # no flush: buffered output the parent had at fork time is the parent's


def _read_until(fd: int, deadline: float) -> bytes | None:
    """Everything the child writes until it closes the pipe, or None at the deadline."""
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
