"""What `cliplab cache` lists and cleans: everything cliplab caches under $CLIPLAB_CACHE.

kinds (and the files that make up one entry, removed together; nothing else is ever touched):
- onnx:     onnx/<24-hex key>/ (exported graphs) + onnx/<key>.lock
- features: features/<20-hex>.sqlite (+ -wal, -shm, .json, .lock): frozen-tower training features
- classes:  classes/<32-hex>.npy (+ .json): zero-shot class embeddings

"Last used" is an mtime: the onnx entry's `last-used` stamp, the feature store's lock file, the
class .npy, each touched when loaded but at most once an hour (cache.mark_used); with no stamp, the
newest file's mtime. atime is not used: most mounts (relatime, noatime) do not keep it.

Cleaning takes each entry's lock without waiting: an entry another process holds (an ONNX export in
progress, a training run reading its features) is skipped and reported. Class embeddings have no
lock: they are written by rename and read in one go, so removing one only costs a recompute.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cliplab.errors import CliplabError
from cliplab.runtime.cache import MANIFEST, USED_STAMP, cache_root, lock_file

KINDS = ("onnx", "features", "classes")
_ONNX_KEY = re.compile(r"[0-9a-f]{24}")
_FEATURES = re.compile(r"([0-9a-f]{20})\.sqlite")
_CLASSES = re.compile(r"([0-9a-f]{32})\.npy")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass
class CacheEntry:
    kind: str
    model: str
    path: Path  # the entry's folder (onnx) or main file
    files: list[Path]  # every file that belongs to it
    lock: Path | None  # taken (exclusive, non-blocking) before removal
    last_used: float  # epoch seconds
    note: str = ""
    size_bytes: int = field(init=False)

    def __post_init__(self):
        self.size_bytes = sum(_size(f) for f in self.files)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "model": self.model,
            "size_bytes": self.size_bytes,
            "last_used": datetime.fromtimestamp(self.last_used).isoformat(timespec="seconds"),
            "path": str(self.path),
            "note": self.note,
        }


@dataclass
class CleanResult:
    removed: list[CacheEntry]
    held: list[CacheEntry]  # skipped: another process holds the lock
    dry_run: bool

    @property
    def freed_bytes(self) -> int:
        return sum(e.size_bytes for e in self.removed)


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def _about(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        return obj if isinstance(obj, dict) else {}
    except (OSError, ValueError):
        return {}


def _n(count, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def parse_duration(text: str) -> float:
    """'30d', '12h', '90m', '45s', '2w' → seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", str(text).lower())
    if not m:
        raise CliplabError(f"--older-than {text!r}: give a number and a unit (s, m, h, d, w), e.g. 30d or 12h")
    return float(m.group(1)) * _UNITS[m.group(2)]


def check_kinds(kinds) -> tuple[str, ...]:
    bad = [k for k in kinds or () if k not in KINDS]
    if bad:
        raise CliplabError(f"--kind {bad[0]!r}: choose {', '.join(KINDS)}")
    return tuple(dict.fromkeys(kinds)) if kinds else KINDS


def _last_used(kind: str, path: Path) -> float:
    """The entry's stamp mtime, else its newest file's (an entry never loaded since it was made)."""
    if kind == "onnx":
        return _mtime(path / USED_STAMP) or max([_mtime(f) for f in path.rglob("*")] + [_mtime(path)])
    if kind == "features":
        return _mtime(path.with_suffix(".lock")) or max(_mtime(p) for p in (path, Path(f"{path}-wal")))
    return _mtime(path)


def _existing(*paths: Path) -> list[Path]:
    return [p for p in paths if p.exists()]


def _onnx(root: Path) -> list[CacheEntry]:
    out = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        if not _ONNX_KEY.fullmatch(d.name) or d.is_symlink() or not d.is_dir():
            continue
        files = [f for f in d.rglob("*") if not f.is_dir()]
        lock = root / f"{d.name}.lock"
        m = _about(d / MANIFEST)
        int8 = any("int8" in (t.get("graphs") or {}) for t in (m.get("towers") or {}).values())
        note = ("fp32 + int8" if int8 else "fp32") if m.get("spec") else "unfinished"
        model = str(m.get("spec") or "?")
        out.append(CacheEntry("onnx", model, d, files + _existing(lock), lock, _last_used("onnx", d), note))
    return out


def _features(root: Path) -> list[CacheEntry]:
    out = []
    for f in sorted(root.iterdir()) if root.is_dir() else []:
        if not _FEATURES.fullmatch(f.name) or not f.is_file():
            continue
        lock, about = f.with_suffix(".lock"), f.with_suffix(".json")
        files = [f, *_existing(Path(f"{f}-wal"), Path(f"{f}-shm"), about, lock)]
        model = str(_about(about).get("model") or "?")
        out.append(CacheEntry("features", model, f, files, lock, _last_used("features", f)))
    return out


def _classes(root: Path) -> list[CacheEntry]:
    out = []
    for f in sorted(root.iterdir()) if root.is_dir() else []:
        if not _CLASSES.fullmatch(f.name) or not f.is_file():
            continue
        about = _about(f.with_suffix(".json"))
        note = (
            f"{_n(about['labels'], 'label')} × {_n(about['templates'], 'template')}"
            if {"labels", "templates"} <= set(about)
            else ""
        )
        files = [f, *_existing(f.with_suffix(".json"))]
        out.append(
            CacheEntry("classes", str(about.get("model") or "?"), f, files, None, _last_used("classes", f), note)
        )
    return out


def list_cache(kinds=None, root: Path | None = None) -> list[CacheEntry]:
    """Every cache entry of the given kinds, each kind's most recently used first."""
    root = Path(root) if root else cache_root()
    found = {
        "onnx": _onnx(root / "onnx"),
        "features": _features(root / "features"),
        "classes": _classes(root / "classes"),
    }
    return [e for k in check_kinds(kinds) for e in sorted(found[k], key=lambda e: -e.last_used)]


def _remove(entry: CacheEntry) -> None:
    if entry.kind == "onnx":
        shutil.rmtree(entry.path, ignore_errors=True)
    for f in entry.files:
        if f != entry.lock:
            f.unlink(missing_ok=True)
    if entry.lock is not None:
        entry.lock.unlink(missing_ok=True)  # last, while still held (see cache.lock_file)


def _take(lock: Path | None, dry_run: bool) -> tuple[bool, int | None]:
    """(free?, fd to close). A dry run never creates a lock file: a missing one is held by no one."""
    if lock is None or (dry_run and not lock.exists()):
        return True, None
    fd = lock_file(lock, wait=False)
    return fd is not None, fd


def clean_cache(
    older_than: float | None = None,
    kinds=None,
    dry_run: bool = False,
    root: Path | None = None,
    now: float | None = None,
) -> CleanResult:
    """Remove entries not used for `older_than` seconds (None: all) of the given kinds. An entry whose
    lock another process holds is left alone and listed in `held`; `dry_run` removes nothing."""
    now = time.time() if now is None else now
    cutoff = None if older_than is None else now - older_than
    removed, held = [], []
    for entry in list_cache(kinds, root):
        if cutoff is not None and entry.last_used > cutoff:
            continue
        free, fd = _take(entry.lock, dry_run)
        if not free:
            held.append(entry)
            continue
        try:
            # used between the listing and the lock? (a load bumps the stamp) then it stays
            if cutoff is not None and _last_used(entry.kind, entry.path) > cutoff:
                continue
            if not dry_run:
                _remove(entry)
            removed.append(entry)
        finally:
            if fd is not None:
                os.close(fd)
    return CleanResult(removed, held, dry_run)
