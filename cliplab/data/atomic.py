"""The one way cliplab writes a file: beside the target under a temp name, fsync, rename.

Readers (another process, a server thread, the next run after a crash) see the old file or the
new one, never half of either. Files get the usual permissions (0666 less the umask), whatever
wrote them: a checkpoint, an ONNX graph, a shard, a FAISS index, a thumbnail.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

_UMASK = os.umask(0)
os.umask(_UMASK)


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | Path, fsync: bool = True) -> Iterator[Path]:
    """A temp path to write `path` through (for writers that want a file name: numpy, pandas,
    FAISS, ONNX); renamed over `path` when the block ends without an error, removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        yield tmp
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, default: Callable | None = None) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=default) + "\n")


def atomic_copy(src: str | Path, dst: str | Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def atomic_replace(src: str | Path, dst: str | Path) -> None:
    """Move a finished file (made by a tool that writes where it is told) over `dst` atomically."""
    src = Path(src)
    os.chmod(src, 0o666 & ~_UMASK)
    os.replace(src, dst)
