"""The on-disk cache of exported models: `$CLIPLAB_CACHE/onnx/<key>/` (default ~/.cache/cliplab).

An entry holds image.onnx, text.onnx, their int8 versions once made, the tokenizer.json, example
inputs (npz, for checks) and manifest.json, written LAST: a folder without a valid manifest is
unfinished and is rebuilt. Every file is written atomically (temp + rename) and every graph's
sha256 is recorded; a graph whose bytes differ when a session is created is rebuilt, never used.
Two processes preparing the same entry are serialised by an fcntl lock next to it.

"Last used" (for `cliplab cache`) is the mtime of a `last-used` stamp in the entry, touched when the
entry is loaded but at most once an hour (USED_EVERY), so a load costs one stat, not a write.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Iterator

from cliplab.data.atomic import atomic_write_bytes
from cliplab.data.digest import file_digest

FORMAT = "cliplab.onnx"
VERSION = 1
MANIFEST = "manifest.json"
USED_STAMP = "last-used"
USED_EVERY = 3600.0  # seconds between two touches of a last-used stamp


def cache_root() -> Path:
    """The cliplab cache folder ($CLIPLAB_CACHE, else $XDG_CACHE_HOME/cliplab, else ~/.cache/cliplab)."""
    from cliplab.settings import settings

    return settings().cache_home


def onnx_root() -> Path:
    return cache_root() / "onnx"


def lock_file(path: Path, exclusive: bool = True, wait: bool = True) -> int | None:
    """flock `path` (created if missing): the fd to close to release it, or None when `wait` is
    False and another process holds it. A cleaner deletes a lock file while holding it, so once
    locked we check the path still names the file we locked; if not, lock the new one."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if wait else fcntl.LOCK_NB)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # deleted or replaced while we waited: retry on the current file


def mark_used(stamp: Path) -> None:
    """Touch `stamp` unless that was done within USED_EVERY; never fails (a read-only cache)."""
    try:
        if time.time() - os.stat(stamp).st_mtime < USED_EVERY:
            return
    except FileNotFoundError:
        pass
    except OSError:
        return
    try:
        Path(stamp).touch()
    except OSError:
        pass


def _sha256(path: Path) -> str:
    return file_digest(path, algorithm="sha256")


class Entry:
    """One model's folder in the cache. `manifest` is None until the entry is complete and valid."""

    def __init__(self, key: str, root: Path | None = None):
        self.key = key
        self.dir = (root or onnx_root()) / key
        self.manifest: dict | None = None

    # --- reading ----------------------------------------------------------------------------
    def load(self) -> dict | None:
        """The manifest if the entry looks complete (every listed file present, right size), else None."""
        try:
            m = json.loads((self.dir / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.manifest = None
            return None
        ok = (
            isinstance(m, dict)
            and m.get("format") == FORMAT
            and m.get("version") == VERSION
            and m.get("key") == self.key
            and all(self._file_ok(f) for f in self.files(m))
        )
        self.manifest = m if ok else None
        if ok:
            mark_used(self.dir / USED_STAMP)
        return self.manifest

    @staticmethod
    def files(m: dict) -> list[dict]:
        out = []
        for tower in (m.get("towers") or {}).values():
            out += [g for g in (tower.get("graphs") or {}).values() if "file" in g]
        return out

    def _file_ok(self, rec: dict) -> bool:
        try:
            return (self.dir / rec["file"]).stat().st_size == rec["size"]
        except (OSError, KeyError, TypeError):
            return False

    def path(self, name: str) -> Path:
        return self.dir / name

    def verified_path(self, rec: dict) -> Path | None:
        """The graph's path if its bytes hash to what the manifest recorded, else None (corrupt/stale).

        Hashing a 90 MB graph costs ~0.1 s per start, so a verified file gets a stamp (size, mtime,
        inode, hash) next to it; while the file's stat still matches the stamp it is not re-hashed."""
        path = self.dir / rec["file"]
        stamp = self.dir / f"{rec['file']}.verified"
        try:
            st = path.stat()
            want = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{rec.get('sha256')}"
            if stamp.is_file() and stamp.read_text() == want:
                return path
            if _sha256(path) != rec.get("sha256"):
                return None
        except OSError:
            return None
        try:
            atomic_write_bytes(stamp, want.encode())
        except OSError:  # a read-only cache: verify every time
            pass
        return path

    # --- writing (hold `lock()`) -------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive across processes (blocks while another process prepares this entry)."""
        fd = lock_file(self.lock_path())
        try:
            yield
        finally:
            os.close(fd)

    def lock_path(self) -> Path:
        return self.dir.parent / f"{self.key}.lock"

    def clear(self) -> None:
        """Drop a corrupt/stale/unfinished entry (caller holds the lock)."""
        shutil.rmtree(self.dir, ignore_errors=True)
        self.manifest = None

    def graph_record(self, name: str) -> dict:
        p = self.dir / name
        return {"file": name, "size": p.stat().st_size, "sha256": _sha256(p)}

    def write_manifest(self, m: dict) -> dict:
        m = {**m, "format": FORMAT, "version": VERSION, "key": self.key, "written": time.time()}
        atomic_write_bytes(self.dir / MANIFEST, (json.dumps(m, indent=2, default=str) + "\n").encode())
        self.manifest = m
        return m


def prune_superseded(current: Entry, spec: str) -> list[Path]:
    """Delete other entries made from the same spec (older weights or code: their keys can never be
    asked for again by this install), so the cache does not grow with every upgrade or retrain.
    An entry another process holds the lock of is left alone."""
    removed = []
    for d in current.dir.parent.iterdir():
        if not d.is_dir() or d.name == current.key:
            continue
        try:
            if json.loads((d / MANIFEST).read_text(encoding="utf-8")).get("spec") != spec:
                continue
        except (OSError, ValueError):
            continue
        lock = d.parent / f"{d.name}.lock"
        fd = lock_file(lock, wait=False)
        if fd is None:
            continue
        try:
            shutil.rmtree(d, ignore_errors=True)
            lock.unlink(missing_ok=True)  # unlinked while held: a waiter re-locks the new file (lock_file)
            removed.append(d)
        finally:
            os.close(fd)
    return removed
