"""Every index under the index home: what it covers, removing one, and dropping those whose folder
is gone. Removing deletes only the files an index consists of (`index_files`), never anything else."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from cliplab.errors import CliplabError
from cliplab.index.catalog import CATALOG_NAME, catalog_exists
from cliplab.index.locate import choose, folder_indexes, index_home, normalize_spec
from cliplab.index.lock import LOCK_NAME, writer_lock


@dataclass
class IndexInfo:
    id: str  # the index folder's name: `cliplab indexes rm ID`
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
        id=index_dir.name,
        index_dir=str(index_dir),
        folder=folder,
        folder_exists=bool(folder) and Path(folder).is_dir(),
        model=meta.get("model"),
        dim=int(meta["dim"]) if meta.get("dim") else None,
        images=int(counts.get("ok", 0)),
        failed=int(counts.get("failed", 0)),
        size_bytes=sum(p.stat().st_size for p in index_dir.iterdir() if p.is_file()),
        updated_at=iso_time(updated),
    )


def collection_status(col, check: bool = False, max_failures: int = 50) -> dict:
    """`Collection.status`: counts, failures with reasons, model, size on disk; `check` adds what an
    update would do."""
    from cliplab.index.photos import coverage
    from cliplab.index.vectors import ANN_THRESHOLD  # faiss: not for a plain listing

    meta = col.catalog.all_meta()
    counts = col.catalog.counts(col.scope)
    failures = col.catalog.failures(col.scope)
    size = col.catalog.size_on_disk()
    out = {
        "kind": "folder",
        "folder": str(col.folder),
        "scope": col.scope,
        "id": col.index_dir.name,
        "index_dir": str(col.index_dir),
        "model": meta.get("model"),
        "dim": int(meta["dim"]) if meta.get("dim") else None,
        "schema_version": int(meta["schema_version"]),
        **counts,
        "failure_reasons": dict(Counter(_reason_kind(e) for _, e in failures).most_common()),
        "failures": [{"path": p, "reason": e} for p, e in failures[:max_failures]],
        "size_bytes": size,
        "bytes_per_image": round(size / counts["indexed"]) if counts["indexed"] else None,
        "search": "exact (flat)" if counts["indexed"] < ANN_THRESHOLD else "approximate (IVF, tuned)",
        "updated_at": iso_time(meta.get("updated_at")),
        "metadata": coverage(col.catalog),  # photo metadata: how many files have it, dates from which field
        "written_by": meta.get("upgraded_by") or meta.get("created_by"),
    }
    if check:
        out["pending"] = col.pending()
    return out


def iso_time(ts: str | float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(float(ts))) if ts else None


def _reason_kind(reason: str | None) -> str:
    """'corrupt or truncated image (…)' → 'corrupt or truncated image': groups reasons for status."""
    return (reason or "unknown").split(" (")[0]


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
            remove_index(i)
    return gone


def index_files(index_dir: Path) -> list[Path]:
    """What an index consists of: its catalog (+ WAL), FAISS caches, a killed writer's temp files,
    the server's thumbnails; the lock file goes last, by the caller."""
    names = [CATALOG_NAME, f"{CATALOG_NAME}-wal", f"{CATALOG_NAME}-shm", "thumbs"]
    found = [index_dir / n for n in names if (index_dir / n).exists()]
    return found + sorted(index_dir.glob("ann-*-*.faiss")) + sorted(index_dir.glob(".ann-*.tmp"))


def delete_index_files(index_dir: Path) -> None:
    """Delete an index's own files, then its folder if nothing else is left in it."""
    for p in index_files(index_dir):
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
    (index_dir / LOCK_NAME).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        index_dir.rmdir()


def find_one(target: str, model: str | None = None, home: str | Path | None = None) -> IndexInfo:
    """The index `cliplab indexes rm` names: an image folder (+ `model` when it has several), an
    index folder, or an index id (its folder name under the home, or a unique prefix of one)."""
    path = Path(target).expanduser()
    if path.is_dir() and catalog_exists(path):
        return _read(path.resolve())
    if path.is_dir() or "/" in target:  # an image folder, or one that is gone (its indexes are not)
        refs = folder_indexes(path)
        if refs:
            if model is None and len(refs) > 1:
                have = ", ".join(sorted(str(r.model) for r in refs))
                raise CliplabError(f"{path} has {len(refs)} indexes ({have}): pick one with --model")
            hit = choose(refs, normalize_spec(model)) if model else refs[0]
            if hit is None or (model and hit.model != normalize_spec(model)):
                have = ", ".join(sorted(str(r.model) for r in refs))
                raise CliplabError(f"{path} has no index of model {model} (it has: {have})")
            return _read(hit.dir)
        if path.is_dir():
            raise CliplabError(f"{path} is not indexed (see `cliplab indexes`)")
    root = Path(home) if home is not None else index_home()
    names = [d.name for d in sorted(root.iterdir()) if d.is_dir() and catalog_exists(d)] if root.is_dir() else []
    hits = [n for n in names if n == target] or [n for n in names if n.startswith(target)]
    if len(hits) > 1:
        raise CliplabError(f"{target!r} matches {len(hits)} indexes ({', '.join(hits[:5])}): give more of the id")
    if not hits:
        raise CliplabError(f"no index {target!r} in {root} (no such folder or id; see `cliplab indexes`)")
    return _read(root / hits[0])


def remove_index(info: IndexInfo) -> None:
    """Delete one index; IndexBusyError while another process holds its writer lock."""
    d = Path(info.index_dir)
    busy = f"the index {info.id} ({info.folder}, {info.model}) is being updated by another process; try again when it is done"
    with writer_lock(d, busy=busy):
        delete_index_files(d)
