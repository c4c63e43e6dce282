"""The FAISS index as a cache of the catalog: loaded, caught up, rebuilt or saved as needed.

Saved as `ann-<epoch>-<gen>.faiss` in the index folder: the catalog generation it reflects, under the
catalog's epoch (a new one on --reindex). Any saved file at or below the current generation is a valid
start: the catalog's delta since then (vectors written later, tombstones of removed ids) brings it up
to date, and its size is checked against the catalog. Writes are atomic renames; a damaged or
vanished file is skipped and the index rebuilt from the catalog.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from cliplab.index.catalog import Catalog
from cliplab.index.vectors import VectorIndex

SAVE_AFTER = 1_000  # a search saves the refreshed cache once this many rows changed (update always saves)
_NAME = re.compile(r"ann-([0-9a-f]+)-(\d+)\.faiss")


class AnnCache:
    def __init__(self, catalog: Catalog, index_dir: Path):
        self.catalog, self.dir = catalog, index_dir
        self.index: VectorIndex | None = None
        self.gen = -1

    def get(self, save: bool = False) -> VectorIndex | None:
        """The FAISS index at the catalog's current generation (None while nothing is embedded)."""
        gen = self.catalog.gen
        if self.index is not None and self.gen == gen:
            return self.index
        dim = self.catalog.dim
        if dim is None:
            return None
        if self.index is None:
            self.index, self.gen = self._load(gen, dim)
        changed = 0
        if self.index is not None:
            delta = self.catalog.delta(self.gen)
            self.index.apply(delta.ids, delta.vectors, delta.removed)
            self.gen = delta.gen
            changed = len(delta.ids) + len(delta.removed)
            if self.index.ntotal != delta.count or self.index.should_rebuild(delta.count):
                self.index = None  # disagrees with the catalog, or outgrew its shape: rebuild
        if self.index is None:
            self.gen, ids, vecs = self.catalog.snapshot_vectors()
            self.index = VectorIndex.build(ids, vecs, dim=dim)
            changed = max(len(ids), SAVE_AFTER)
        if changed and (save or changed >= SAVE_AFTER):
            self._save()
        return self.index

    def drop(self) -> None:
        self.index, self.gen = None, -1
        for _, _, p in self._files():
            p.unlink(missing_ok=True)

    def _files(self) -> list[tuple[str, int, Path]]:
        out = []
        for p in self.dir.glob("ann-*-*.faiss"):
            m = _NAME.fullmatch(p.name)
            if m:
                out.append((m.group(1), int(m.group(2)), p))
        return out

    def _load(self, gen: int, dim: int) -> tuple[VectorIndex | None, int]:
        epoch = self.catalog.meta("epoch")
        for e, g, p in sorted(self._files(), key=lambda t: -t[1]):
            if e == epoch and g <= gen:
                try:
                    index = VectorIndex.load(p)
                except (OSError, RuntimeError):
                    continue  # removed by a concurrent save, or damaged: try older, else rebuild
                if index.dim == dim:
                    return index, g
        return None, -1

    def _save(self) -> None:
        target = self.dir / f"ann-{self.catalog.meta('epoch')}-{self.gen}.faiss"
        try:
            self.index.save(target)
            for _, _, p in self._files():
                if p != target:
                    p.unlink(missing_ok=True)
            for p in self.dir.glob(".ann-*.tmp"):
                if time.time() - p.stat().st_mtime > 3600:  # left by a killed writer
                    p.unlink(missing_ok=True)
            self.catalog.prune_removed(self.gen)
        except OSError:
            pass  # a read-only index still searches; it just rebuilds the cache in memory
