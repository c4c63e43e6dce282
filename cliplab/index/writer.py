"""The write side of the catalog (catalog.py): the statements of one write transaction. A `Writer`
only exists inside `Catalog.write()`, which opens the transaction, bumps the generation and commits."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Iterable, Sequence

import numpy as np

from cliplab.index.migrate import FRAME_ID_BASE


def to_blob(v: np.ndarray) -> bytes:
    return np.asarray(v, dtype="<f2").tobytes()


class Writer:
    """The statements of one write transaction; `gen` is the generation it stamps."""

    def __init__(self, con: sqlite3.Connection, gen: int):
        self.con, self.gen, self.now = con, gen, time.time()

    def _upsert(self, path: str, size: int, mtime_ns: int, hash_: str | None, status: str, error: str | None) -> int:
        row = self.con.execute(
            "INSERT INTO files(path, size, mtime_ns, hash, status, error, indexed_at) VALUES (?,?,?,?,?,?,?) "
            "ON CONFLICT(path) DO UPDATE SET size=excluded.size, mtime_ns=excluded.mtime_ns, hash=excluded.hash, "
            "status=excluded.status, error=excluded.error, indexed_at=excluded.indexed_at RETURNING id",
            (path, size, mtime_ns, hash_, status, error, self.now),
        ).fetchone()
        self._forget_photo([row[0]])
        self._drop_frames([row[0]])  # a video's moments go with its old content
        return int(row[0])

    def put_ok(self, rows: Iterable[tuple[str, int, int, str | None]], vectors: np.ndarray) -> list[int]:
        """rows[i] = (path, size, mtime_ns, hash) gets vectors[i]; returns the file ids."""
        ids = []
        for (path, size, mtime_ns, hash_), vec in zip(rows, vectors):
            fid = self._upsert(path, size, mtime_ns, hash_, "ok", None)
            self.con.execute(
                "INSERT OR REPLACE INTO vectors(id, gen, vec) VALUES (?,?,?)",
                (fid, self.gen, to_blob(vec) if not isinstance(vec, bytes) else vec),
            )
            ids.append(fid)
        return ids

    def put_video(self, row: tuple[str, int, int, str | None], poster, times: Sequence[float], vectors) -> int:
        """A video: its file row holding its poster frame's vector, and one vector per sampled frame
        (`frames`, ids from FRAME_ID_BASE on, never reused). Returns the file id."""
        fid = self.put_ok([row], [poster])[0]
        seq = self.con.execute("SELECT seq FROM sqlite_sequence WHERE name='frames'").fetchone()
        next_id = FRAME_ID_BASE if seq is None or seq[0] < FRAME_ID_BASE else None  # then AUTOINCREMENT goes on
        for t, vec in zip(times, vectors):
            frame_id = self.con.execute(
                "INSERT INTO frames(id, file_id, t) VALUES (?,?,?) RETURNING id", (next_id, fid, float(t))
            ).fetchone()[0]
            next_id = None
            self.con.execute("INSERT INTO vectors(id, gen, vec) VALUES (?,?,?)", (frame_id, self.gen, to_blob(vec)))
        return fid

    def put_failed(self, rows: Iterable[tuple[str, int, int, str | None, str]]) -> None:
        """rows = (path, size, mtime_ns, hash, reason); a previous vector of the path is dropped."""
        for path, size, mtime_ns, hash_, reason in rows:
            fid = self._upsert(path, size, mtime_ns, hash_, "failed", reason)
            self._drop_vectors([fid])

    def touch(self, rows: Iterable[tuple[str, int, int]]) -> None:
        """Same content, new size/mtime (e.g. `touch`): update the stat, keep the vector."""
        rows = list(rows)
        self.con.executemany("UPDATE files SET size=?, mtime_ns=? WHERE path=?", [(s, m, p) for p, s, m in rows])
        q = f"SELECT id FROM files WHERE path IN ({','.join('?' * len(rows))})" if rows else None
        ids = [r[0] for r in self.con.execute(q, [r[0] for r in rows])] if q else []
        self._forget_photo(ids, keep_ocr=True)  # same content, same text: photos.fill puts it back in its words

    def delete(self, paths: Sequence[str]) -> None:
        ids = []
        for i in range(0, len(paths), 500):
            chunk = list(paths[i : i + 500])
            q = f"SELECT id FROM files WHERE path IN ({','.join('?' * len(chunk))})"
            ids += [r[0] for r in self.con.execute(q, chunk)]
        self._drop_vectors(ids)
        self._drop_frames(ids)
        self.con.executemany("DELETE FROM files WHERE id=?", [(i,) for i in ids])
        self._forget_photo(ids)

    def clear(self) -> None:
        self.con.execute("INSERT INTO removed(id, gen) SELECT id, ? FROM vectors", (self.gen,))
        self.con.execute("DELETE FROM vectors")
        self.con.execute("DELETE FROM files")
        self.con.execute("DELETE FROM frames")
        self.con.execute("DELETE FROM photos")
        self.con.execute("DELETE FROM keywords")
        self.con.execute("DELETE FROM ocr")

    def _forget_photo(self, ids: Sequence[int], keep_ocr: bool = False) -> None:
        """A file's metadata, words and text read from it (OCR) go with its row; `photos.fill` and
        `ocr.fill` read them again."""
        self.con.executemany("DELETE FROM photos WHERE id=?", [(i,) for i in ids])
        self.con.executemany("DELETE FROM keywords WHERE rowid=?", [(i,) for i in ids])
        if not keep_ocr:
            self.con.executemany("DELETE FROM ocr WHERE id=?", [(i,) for i in ids])

    def _drop_frames(self, file_ids: Sequence[int]) -> None:
        """The frame vectors of these videos, with tombstones (the FAISS cache drops them too)."""
        for fid in file_ids:
            frames = [r[0] for r in self.con.execute("SELECT id FROM frames WHERE file_id=?", (fid,))]
            if frames:
                self._drop_vectors(frames)
                self.con.execute("DELETE FROM frames WHERE file_id=?", (fid,))

    def _drop_vectors(self, ids: Sequence[int]) -> None:
        for fid in ids:
            if self.con.execute("DELETE FROM vectors WHERE id=?", (fid,)).rowcount:
                self.con.execute("INSERT INTO removed(id, gen) VALUES (?,?)", (fid, self.gen))

    def del_meta(self, *keys: str) -> None:
        self.con.executemany("DELETE FROM meta WHERE key=?", [(k,) for k in keys])

    def set_meta(self, **items) -> None:
        self.con.executemany(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?,?)",
            [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in items.items()],
        )
