"""What the server searches: one `Source` per collection, behind a small interface.

The handlers and the query pipeline only need: search by vector → (id, score, path), stored vectors
by id, id → file/caption, and a status line. `FolderSource` wraps a `cliplab.index.Collection`; an
index of another kind (e.g. embedding shards in clip-retrieval's layout) plugs in by implementing
the same methods.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from cliplab.data.formats import RAW_EXTENSIONS, VIDEO_EXTENSIONS
from cliplab.data.images import IMAGE_EXTENSIONS

# what a folder collection serves (RAW: as JPEG; videos: poster, file)
SERVED_EXTENSIONS = IMAGE_EXTENSIONS | RAW_EXTENSIONS | VIDEO_EXTENSIONS


@dataclass
class Match:
    id: int
    score: float
    path: str  # relative to the collection folder, '/'-separated
    media: str = "image"  # "video": a video's best moment is `timestamp` s in (index/frames.py)
    timestamp: float | None = None
    moments: list | None = None


@dataclass
class Item:
    id: int
    path: str  # relative, '/'-separated
    caption: str  # the image's caption when known, else its file name
    file: Path | None = None  # absolute file to serve, None when the source holds no local file
    url: str | None = None  # where the image lives when it is not served from here (an http(s) URL)


class Source(Protocol):
    name: str
    kind: str
    model: str
    folder: str

    @property
    def dim(self) -> int | None: ...

    def search(
        self,
        vector: np.ndarray,
        k: int,
        threshold: float | None = None,
        under: str | None = None,
        glob: str | None = None,
        exclude: Sequence[int] = (),
    ) -> list[Match]: ...

    def vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]: ...

    def items(self, ids: Sequence[int]) -> dict[int, Item]: ...

    def info(self) -> dict: ...

    def cache_dir(self) -> Path: ...

    def check_encoder(self) -> None: ...

    def fresh(self, item: Item) -> os.stat_result | None: ...


def _regular_stat(path: Path | None) -> os.stat_result | None:
    try:
        st = os.stat(path) if path is not None else None
    except OSError:
        return None
    return st if st is not None and stat.S_ISREG(st.st_mode) else None


class ReadWriteLock:
    """Many readers or one writer (writers wait for readers to leave; new readers wait for a
    waiting writer, so a refresh is never starved)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0

    @contextlib.contextmanager
    def read(self):
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def write(self):
        with self._cond:
            self._waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class _PinnedAnn:
    """Stands in for the served collection's AnnCache inside `search_vector`: hands out the current
    FAISS index and never changes it, so concurrent searches can share it."""

    def __init__(self, cache):
        self.cache = cache

    def get(self, save: bool = False):
        return self.cache.index


class FolderSource:
    """A `Collection` (SQLite catalog + FAISS cache) served read-only.

    Each search first compares the catalog's generation with the FAISS cache's (one cheap SQL read);
    when another process (`cliplab index`, `--watch`) has committed since, the cache applies the
    delta under the write side of a read-write lock, so new images become searchable without a
    restart. Searches hold the read side: they run side by side (FAISS releases the GIL), and only
    a refresh waits for them. Catalog reads use one SQLite connection per thread (Catalog.con).
    """

    kind = "folder"

    def __init__(self, collection, name: str):
        self.collection = collection
        self.name = name
        self.model = collection.model
        self.folder = str(collection.folder)
        self._cache = collection.ann
        collection.ann = _PinnedAnn(self._cache)
        self._lock = ReadWriteLock()

    def refresh(self) -> None:
        """Catch the FAISS cache up with the catalog, if anything was committed since."""
        if self._cache.index is not None and self._cache.gen == self.collection.catalog.gen:
            return
        with self._lock.write():
            self._cache.get()  # re-checks the generation: another thread may have refreshed already

    @property
    def dim(self) -> int | None:
        return self.collection.catalog.dim

    def check_encoder(self) -> None:
        """The model must make vectors that fit the index (dimension and fingerprint)."""
        self.collection.encoder()

    def search(self, vector, k, threshold=None, under=None, glob=None, exclude=()) -> list[Match]:
        self.refresh()
        with self._lock.read():
            hits = self.collection.search_vector(vector, k, threshold, under, glob, exclude)
        return [Match(h.id, h.score, h.relpath, h.media, h.timestamp, h.moments) for h in hits]

    def run(
        self, terms, k: int, threshold=None, under=None, glob=None, filters=None, mode=None, sort="relevance", info=None
    ):
        """An expression with filters, mode and sort (`cliplab.search.run`) → matches."""
        from cliplab.search import run

        self.refresh()
        with self._lock.read():
            hits = run(self.collection, terms, k, threshold, under, glob, filters, mode, sort, info)
        return [Match(h.id, h.score, h.relpath, h.media, h.timestamp, h.moments) for h in hits]

    def vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        got_ids, vecs = self.collection.catalog.vectors(ids=[int(i) for i in ids])
        return {int(i): v for i, v in zip(got_ids, vecs)}

    def items(self, ids: Sequence[int]) -> dict[int, Item]:
        paths = self.collection.catalog.paths([int(i) for i in ids])
        folder = self.collection.folder
        out = {}
        for i, rel in paths.items():
            # only what the catalog lists as an indexed image, and only files below the folder
            if Path(rel).suffix.lower() not in SERVED_EXTENSIONS or rel.startswith("/") or ".." in rel.split("/"):
                continue
            out[int(i)] = Item(int(i), rel, rel.rsplit("/", 1)[-1], folder / rel)
        return out

    def fresh(self, item: Item) -> os.stat_result | None:
        """The file's stat when it is still what was indexed (a regular file, following links as
        the indexer does, with the catalog's size and mtime); None when it was swapped or changed
        since (it is served again once re-indexed: `--watch` sees the change itself)."""
        known = self.collection.catalog.file_state(item.path)
        st = _regular_stat(item.file)
        if known is None or st is None or (st.st_size, st.st_mtime_ns) != (known.size, known.mtime_ns):
            return None
        return st

    def info(self) -> dict:
        cat = self.collection.catalog
        counts = cat.counts(self.collection.scope)
        updated = cat.meta("updated_at")
        return {
            "name": self.name,
            "folder": self.folder,
            "model": self.model,
            "dim": cat.dim,
            "images": counts["indexed"],
            "failed": counts["failed"],
            "kind": self.kind,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(float(updated))) if updated else None,
        }

    def cache_dir(self) -> Path:
        return self.collection.index_dir / "thumbs"

    def close(self) -> None:
        self.collection.close()


class ShardsSource:
    """An index built from embedding shards (`cliplab index --from-embeddings`, clip-retrieval's
    layout). Ids are its global row ids; a row's `image_path` is a local file (served by id), an
    http(s) URL (handed out as the result's url) or a tar member (listed, not served). No folder
    filters: the rows are not a folder tree."""

    kind = "shards"

    def __init__(self, index, name: str):
        self.index = index
        self.name = name
        self.model = index.model
        self.folder = str(index.index_dir)
        self._lock = threading.Lock()  # the metadata and mmap caches are plain dicts

    @property
    def dim(self) -> int | None:
        return self.index.dim

    def check_encoder(self) -> None:
        self.index.encoder()

    def search(self, vector, k, threshold=None, under=None, glob=None, exclude=()) -> list[Match]:
        from cliplab.errors import CliplabError

        if under or glob:
            raise CliplabError(f"collection {self.name!r} is an embeddings index: it has no folders to filter by")
        with self._lock:
            hits = self.index.search_vector(vector, k + len(exclude), threshold)
        return [Match(h.id, h.score, h.path) for h in hits if h.id not in exclude][:k]

    def vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        ids = [int(i) for i in ids if 0 <= int(i) < self.index.table.offsets[-1]]
        with self._lock:
            vecs = self.index.table.vectors(np.asarray(ids, np.int64)) if ids else []
        return {i: v for i, v in zip(ids, vecs) if np.any(v)}  # failed rows are zero vectors

    def items(self, ids: Sequence[int]) -> dict[int, Item]:
        ids = [int(i) for i in ids if 0 <= int(i) < self.index.table.offsets[-1]]
        with self._lock:
            rows = self.index.lookup_many(ids)
        out = {}
        for i, row in rows.items():
            path = str(row.get("image_path") or "")
            if row.get("status") not in (None, "ok") or not path:
                continue
            name = row.get("key") or path.rsplit("/", 1)[-1]
            caption = row.get("caption") or name
            if path.startswith(("http://", "https://")):
                out[i] = Item(i, path, caption, None, path)
                continue
            file = Path(path)
            local = file.is_absolute() and file.suffix.lower() in IMAGE_EXTENSIONS and "#" not in path
            out[i] = Item(i, path, caption, file if local else None)
        return out

    def fresh(self, item: Item) -> os.stat_result | None:
        """Embedding rows store no size or mtime: only a regular file is served."""
        return _regular_stat(item.file)

    def info(self) -> dict:
        stamp = (self.index.index_dir / "index.json").stat().st_mtime
        return {
            "name": self.name,
            "folder": self.folder,
            "model": self.model,
            "dim": self.index.dim,
            "images": self.index.count,
            "failed": 0,
            "kind": self.kind,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(stamp)),
        }

    def cache_dir(self) -> Path:
        return self.index.index_dir / "thumbs"

    def close(self) -> None:
        self.index.close()
