"""One writer per index: an advisory lock (fcntl) on the index's `lock` file. Readers never take it;
SQLite keeps their snapshots consistent. Without fcntl (Windows) SQLite alone serialises writes."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from cliplab.errors import IndexBusyError

LOCK_NAME = "lock"


@contextlib.contextmanager
def writer_lock(index_dir: str | Path, wait: bool = False, busy: str | None = None) -> Iterator[None]:
    """Hold the index's writer lock; IndexBusyError (message `busy`) when another process holds it
    and `wait` is False. Closing the file releases it, also when the process dies."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(Path(index_dir) / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise IndexBusyError(
                busy
                or f"another process is updating the index {index_dir}; "
                "wait for it (searches still work on what it has committed)"
            ) from None
        yield
    finally:
        os.close(fd)
