"""One progress-bar helper (rich), on stderr so --json output on stdout stays clean."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

_console = Console(stderr=True)


@contextlib.contextmanager
def progress_bar(total: int, description: str, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    # Bars are for people at a terminal; in logs and pipes they only leave noise behind.
    if not enabled or total <= 0 or not _console.is_terminal:
        yield lambda n=1: None
        return
    cols = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*cols, console=_console) as prog:
        task = prog.add_task(description, total=total)
        yield lambda n=1: prog.advance(task, n)
