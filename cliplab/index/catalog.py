"""The SQLite catalog: the single source of truth of an index.

One row per file (relative path, size, mtime, content hash, status, error) in `files`; its vector
(float16 BLOB) in `vectors` under the same id. Every write transaction bumps a generation counter
and stamps the rows it wrote, and deletions leave a tombstone, so the FAISS cache can be brought
up to date from any older generation without a rebuild. A killed writer loses at most its open
transaction; what is committed is always consistent (WAL mode).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from cliplab.errors import IndexMismatchError
from cliplab.index.migrate import SCHEMA_VERSION
from cliplab.index.migrate import create as create_schema
from cliplab.index.migrate import upgrade as upgrade_schema
from cliplab.index.sql import where_clause
from cliplab.index.writer import Writer
from cliplab.models.core.base import l2_normalize

CATALOG_NAME = "catalog.db"


@dataclass
class FileState:
    id: int
    size: int
    mtime_ns: int
    status: str
    hash: str | None


@dataclass
class Delta:
    """What changed after a generation: vectors to (re)add and ids to drop."""

    gen: int
    ids: np.ndarray
    vectors: np.ndarray
    removed: np.ndarray
    count: int  # vectors in the catalog at `gen` (what an up-to-date index must hold)


def from_blobs(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim), np.float32)
    v = np.frombuffer(b"".join(blobs), dtype="<f2").reshape(len(blobs), -1).astype(np.float32)
    return l2_normalize(v)  # exact unit norm again after float16 rounding


class Catalog:
    """An open catalog.db. Reads run in snapshots; writes go through `write()`."""

    def __init__(self, index_dir: str | Path, create: bool = True):
        self.dir = Path(index_dir)
        self.path = self.dir / CATALOG_NAME
        if create:
            self.dir.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._cons: list[sqlite3.Connection] = []
        self._init()

    @property
    def con(self) -> sqlite3.Connection:
        """This thread's connection. One per thread, so threads (a server's requests) never share a
        transaction; WAL gives each its own consistent snapshot."""
        con = getattr(self._local, "con", None)
        if con is None:
            # autocommit mode: transactions are explicit (BEGIN IMMEDIATE for writers)
            con = sqlite3.connect(self.path, isolation_level=None, timeout=30.0, check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")  # durable across process kills; fast commits
            self._local.con = con
            self._cons.append(con)
        return con

    def _init(self) -> None:
        try:
            version = self.meta("schema_version")
        except sqlite3.OperationalError:  # a new, empty database
            version = None
        if version is None:
            self.con.execute("BEGIN IMMEDIATE")  # two processes may create it at once: one wins
            try:
                create_schema(self.con)
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            self.con.execute("COMMIT")
            with self.write(bump=False) as w:
                if self.meta("schema_version") is None:
                    from cliplab import __version__

                    w.set_meta(
                        schema_version=str(SCHEMA_VERSION),
                        created_by=f"cliplab {__version__}",
                        gen="0",
                        epoch=uuid.uuid4().hex[:12],
                        created_at=str(time.time()),
                    )
        elif int(version) > SCHEMA_VERSION:
            raise IndexMismatchError(
                f"{self.path} has schema version {version}; this cliplab reads "
                f"up to {SCHEMA_VERSION}: upgrade cliplab or rebuild with --reindex"
            )
        elif int(version) < SCHEMA_VERSION:
            self._upgrade()

    def _upgrade(self) -> None:
        """An index made by an earlier release, upgraded in place: one transaction (a killed upgrade
        leaves the old schema whole), no vector touched."""
        from cliplab import __version__

        with self.write(bump=False) as w:
            version = int(self.meta("schema_version"))  # again, inside the lock: another process may have done it
            if version < SCHEMA_VERSION:
                upgrade_schema(self.con, version)
                w.set_meta(schema_version=str(SCHEMA_VERSION), upgraded_by=f"cliplab {__version__}")

    def close(self) -> None:
        for con in self._cons:
            con.close()
        self._cons.clear()
        self._local = threading.local()

    # --- transactions ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def write(self, bump: bool = True) -> Iterator[Writer]:
        """One atomic write transaction; with `bump`, everything it writes gets a new generation."""
        self.con.execute("BEGIN IMMEDIATE")
        try:
            gen = int(self.meta("gen") or 0)
            if bump:
                gen += 1
                self.con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('gen', ?)", (str(gen),))
            w = Writer(self.con, gen)
            yield w
            if bump:
                w.set_meta(updated_at=str(w.now))
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A consistent read view (WAL: never blocks, never sees half a batch)."""
        self.con.execute("BEGIN")
        try:
            yield self.con
        finally:
            self.con.execute("COMMIT")

    # --- meta -----------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.con.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def all_meta(self) -> dict[str, str]:
        return dict(self.con.execute("SELECT key, value FROM meta"))

    @property
    def gen(self) -> int:
        return int(self.meta("gen") or 0)

    @property
    def dim(self) -> int | None:
        d = self.meta("dim")
        return int(d) if d else None

    # --- files ----------------------------------------------------------------------------------
    def file_states(self, under: str | None = None) -> dict[str, FileState]:
        where, args = where_clause(under, None)
        q = f"SELECT f.path, f.id, f.size, f.mtime_ns, f.status, f.hash FROM files f WHERE 1{where}"
        return {p: FileState(i, s, m, st, h) for p, i, s, m, st, h in self.con.execute(q, args)}

    def file_stats(self, under: str | None = None) -> dict[str, tuple[int, int]]:
        """relative path → (size, mtime_ns): what a re-index compares with the disk (plain tuples: 100k
        FileState objects cost 0.5 s of an unchanged re-index)."""
        where, args = where_clause(under, None)
        q = f"SELECT f.path, f.size, f.mtime_ns FROM files f WHERE 1{where}"
        return {p: (s, m) for p, s, m in self.con.execute(q, args)}

    def file_state(self, path: str) -> FileState | None:
        row = self.con.execute("SELECT id, size, mtime_ns, status, hash FROM files WHERE path=?", (path,)).fetchone()
        return FileState(*row) if row else None

    def counts(self, under: str | None = None) -> dict[str, int]:
        where, args = where_clause(under, None)
        q = f"SELECT status, COUNT(*) FROM files f WHERE 1{where} GROUP BY status"
        c = dict(self.con.execute(q, args))
        return {"indexed": c.get("ok", 0), "failed": c.get("failed", 0)}

    def failures(self, under: str | None = None, limit: int | None = None) -> list[tuple[str, str]]:
        where, args = where_clause(under, None)
        q = f"SELECT f.path, f.error FROM files f WHERE f.status='failed'{where} ORDER BY f.path"
        if limit is not None:
            q += f" LIMIT {int(limit)}"
        return [(p, e) for p, e in self.con.execute(q, args)]

    def paths(self, ids: Sequence[int]) -> dict[int, str]:
        """id → path for ids that still have a vector (a stale cache may return dropped ids)."""
        return self._select_in(
            "SELECT f.id, f.path FROM files f JOIN vectors v ON v.id=f.id WHERE f.id IN", [int(i) for i in ids]
        )

    def id_of(self, path: str) -> int | None:
        row = self.con.execute(
            "SELECT f.id FROM files f JOIN vectors v ON v.id=f.id WHERE f.path=?", (path,)
        ).fetchone()
        return int(row[0]) if row else None

    def ids_of(self, paths: Sequence[str]) -> dict[str, int]:
        """path → id for the paths that have a vector (`id_of` for many: another model's hits by path)."""
        return self._select_in(
            "SELECT f.path, f.id FROM files f JOIN vectors v ON v.id=f.id WHERE f.path IN", list(dict.fromkeys(paths))
        )

    def written_after(self, gen: int) -> np.ndarray:
        """Ids of the files whose vector was written after generation `gen` (new or re-embedded)."""
        q = "SELECT v.id FROM vectors v JOIN files f ON f.id=v.id WHERE v.gen > ?"
        return np.array([r[0] for r in self.con.execute(q, (int(gen),))], dtype=np.int64)

    def taken_dates(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, 'YYYY-MM-DD…' strings) of the photos that carry their own date (EXIF, a video's
        creation time): a file's mtime, the filters' last resort, says when it was copied, not taken."""
        q = "SELECT id, taken_at FROM photos WHERE taken_at IS NOT NULL AND taken_from IS NOT 'mtime'"
        rows = self.con.execute(q).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64), np.array([str(r[1]) for r in rows], dtype=object)

    # --- vectors --------------------------------------------------------------------------------
    def vectors(
        self, under: str | None = None, glob: str | None = None, ids: Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64, float32 vectors) of indexed files, optionally below a sub-folder / matching a glob."""
        dim = self.dim or 0
        if ids is not None:
            got: list[tuple[int, bytes]] = []
            ids = [int(i) for i in ids]
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                q = f"SELECT id, vec FROM vectors WHERE id IN ({','.join('?' * len(chunk))})"
                got += self.con.execute(q, chunk).fetchall()
            rows = got
        else:
            where, args = where_clause(under, glob)
            if where:
                q = f"SELECT v.id, v.vec FROM vectors v JOIN files f ON f.id=v.id WHERE 1{where} ORDER BY v.id"
            else:
                q = "SELECT id, vec FROM vectors ORDER BY id"
            rows = self.con.execute(q, args).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64), from_blobs([r[1] for r in rows], dim)

    def ids_matching(self, under: str | None, glob: str | None, filters=None, frames: bool = False) -> np.ndarray:
        """Ids of indexed images below `under`, matching `glob` and passing `filters` (index/filters.py);
        with `frames`, also the frame vector ids of the videos that pass (what a search may return)."""
        where, args = where_clause(under, glob)
        join = ""
        if filters is not None and filters.active:
            more, extra = filters.sql("f", "p")
            join = " JOIN photos p ON p.id=f.id" if filters.needs_photos else ""
            where, args = where + more, args + extra
        # status 'ok' is "has a vector" (put_ok writes both); joining `vectors` instead read its pages of
        # blobs: 0.7 s against 0.1 s for a camera filter over 100k photos
        q = f"SELECT f.id FROM files f{join} WHERE f.status='ok'{where}"
        if frames:
            q += f" UNION ALL SELECT fr.id FROM frames fr JOIN files f ON f.id=fr.file_id{join} WHERE 1{where}"
            args = args + args
        return np.array([r[0] for r in self.con.execute(q, args)], dtype=np.int64)

    def count_vectors(self) -> int:
        return int(self.con.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def blobs_by_hash(self, hashes: Iterable[str]) -> dict[str, bytes]:
        """Content hash → stored vector, for files indexed OK (renames and copies skip the model)."""
        return self._select_in(
            "SELECT f.hash, v.vec FROM files f JOIN vectors v ON v.id=f.id WHERE f.hash IN",
            [h for h in set(hashes) if h],
        )

    def _select_in(self, query: str, values: list) -> dict:
        """`query (?, ?, …)` over `values` in chunks (SQLite caps bound parameters) → dict of rows."""
        out: dict = {}
        for i in range(0, len(values), 500):
            chunk = values[i : i + 500]
            out.update(self.con.execute(f"{query} ({','.join('?' * len(chunk))})", chunk))
        return out

    def delta(self, since_gen: int) -> Delta:
        """Everything written after `since_gen`, read in one snapshot."""
        dim = self.dim or 0
        with self.snapshot() as con:
            gen = int(con.execute("SELECT value FROM meta WHERE key='gen'").fetchone()[0])
            # sorted here, not by ORDER BY: that made SQLite walk the whole table in id order (0.1-0.2 s
            # of reading blobs at 100k photos) instead of the gen index, for what is usually no rows
            rows = sorted(con.execute("SELECT id, vec FROM vectors WHERE gen > ?", (since_gen,)).fetchall())
            removed = [r[0] for r in con.execute("SELECT id FROM removed WHERE gen > ?", (since_gen,))]
            count = int(con.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
        return Delta(
            gen,
            np.array([r[0] for r in rows], dtype=np.int64),
            from_blobs([r[1] for r in rows], dim),
            np.array(removed, dtype=np.int64),
            count,
        )

    def snapshot_vectors(self) -> tuple[int, np.ndarray, np.ndarray]:
        """(gen, ids, vectors) of the whole index, consistent with each other."""
        with self.snapshot() as con:
            gen = int(con.execute("SELECT value FROM meta WHERE key='gen'").fetchone()[0])
            ids, vecs = self.vectors()
        return gen, ids, vecs

    def prune_removed(self, up_to_gen: int) -> None:
        """Tombstones at or below a saved cache's generation are no longer needed by it."""
        with self.write(bump=False):
            self.con.execute("DELETE FROM removed WHERE gen <= ?", (up_to_gen,))

    def checkpoint(self) -> None:
        """Fold the WAL back into the database file (keeps the size on disk honest after a run)."""
        self.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.dir.iterdir() if p.is_file())


def catalog_exists(index_dir: str | Path) -> bool:
    return (Path(index_dir) / CATALOG_NAME).is_file()
