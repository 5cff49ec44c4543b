"""Progress bars on stderr for work that can take more than a couple of seconds.

Off when stderr is not a terminal (CI logs, pipes, tests) or when the user asked for quiet;
then every helper here is a no-op that costs nothing. Library code takes an optional
``advance`` callback; the CLI owns the bar:

>>> with bar("Lineage", total=3, quiet=True) as advance:
...     for _ in range(3):
...         advance()
>>> list(track([1, 2], "Counting rows", quiet=True))
[1, 2]
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TextIO, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Advance = Callable[..., None]

_quiet = False


def set_quiet(quiet: bool) -> None:
    """Turn every bar off for this process (the CLI's ``--quiet``)."""
    global _quiet
    _quiet = quiet


def enabled(quiet: bool = False, stream: TextIO | None = None) -> bool:
    """True when bars should show: not quiet, and the stream is an interactive terminal."""
    stream = stream if stream is not None else sys.stderr
    if quiet or _quiet:
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _noop(*_args: object, **_kwargs: object) -> None:
    return None


@contextmanager
def bar(description: str, total: int | None = None, *, quiet: bool = False) -> Iterator[Advance]:
    """A bar (or a spinner when `total` is None); yields ``advance(n=1, description=None)``."""
    if not enabled(quiet):
        yield _noop
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)

        def advance(n: int = 1, description: str | None = None) -> None:
            if description is not None:
                progress.update(task, description=description)
            progress.advance(task, n)

        yield advance


def track(items: Iterable[T], description: str, total: int | None = None, *, quiet: bool = False) -> Iterator[T]:
    """Yield `items`, advancing a bar for each."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with bar(description, total, quiet=quiet) as advance:
        for item in items:
            yield item
            advance()


@contextmanager
def spinner(description: str, *, quiet: bool = False) -> Iterator[Advance]:
    """A spinner for work of unknown length (compiling the project, starting dbt)."""
    with bar(description, None, quiet=quiet) as advance:
        yield advance
