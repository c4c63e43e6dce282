"""Every index under the index home: what it covers, and dropping those whose folder is gone."""

from __future__ import annotations

import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cliplab.index.catalog import CATALOG_NAME, catalog_exists
from cliplab.index.locate import index_home


@dataclass
class IndexInfo:
    index_dir: str
    folder: str | None
    folder_exists: bool
    model: str | None
    dim: int | None
    images: int
    failed: int
    size_bytes: int
    updated_at: str | None

    def as_dict(self) -> dict:
        return asdict(self)


def _read(index_dir: Path) -> IndexInfo:
    """Read-only look at one catalog (opening it as a Catalog would write: WAL mode, schema)."""
    meta: dict[str, str] = {}
    counts: dict[str, int] = {}
    try:
        con = sqlite3.connect(f"file:{index_dir / CATALOG_NAME}?mode=ro", uri=True, timeout=5.0)
        try:
            meta = dict(con.execute("SELECT key, value FROM meta"))
            counts = dict(con.execute("SELECT status, COUNT(*) FROM files GROUP BY status"))
        finally:
            con.close()
    except sqlite3.Error:
        pass  # damaged or foreign: listed with what is known (nothing), never pruned for it
    folder = meta.get("folder")
    updated = meta.get("updated_at")
    return IndexInfo(
        index_dir=str(index_dir),
        folder=folder,
        folder_exists=bool(folder) and Path(folder).is_dir(),
        model=meta.get("model"),
        dim=int(meta["dim"]) if meta.get("dim") else None,
        images=int(counts.get("ok", 0)),
        failed=int(counts.get("failed", 0)),
        size_bytes=sum(p.stat().st_size for p in index_dir.iterdir() if p.is_file()),
        updated_at=time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(float(updated))) if updated else None,
    )


def list_indexes(home: str | Path | None = None) -> list[IndexInfo]:
    """The indexes directly under `home` (default: the index home), by folder."""
    root = Path(home) if home is not None else index_home()
    if not root.is_dir():
        return []
    found = [_read(d) for d in sorted(root.iterdir()) if d.is_dir() and catalog_exists(d)]
    return sorted(found, key=lambda i: (i.folder or "", i.index_dir))


def prune_indexes(home: str | Path | None = None, dry_run: bool = False) -> list[IndexInfo]:
    """Delete the indexes whose recorded folder no longer exists; returns them. Indexes without a
    recorded folder (never used, or unreadable) are kept: there is no proof their folder is gone."""
    gone = [i for i in list_indexes(home) if i.folder and not i.folder_exists]
    if not dry_run:
        for i in gone:
            shutil.rmtree(i.index_dir)
    return gone
