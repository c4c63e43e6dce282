"""Frozen-tower features, computed once and cached on disk, so a training epoch costs seconds.

One SQLite file per (tower, preprocessing, view); rows keyed by file path + size + mtime (a changed
file is recomputed) or by the text itself. Failed images are reported, never cached. Views are
deterministic image variants (flip, crop, low resolution) cached like the plain image, so
augmentation costs nothing per epoch.

Beside each `<digest>.sqlite`: `<digest>.json` (what it holds, for `cliplab cache`) and
`<digest>.lock`, held shared while the store is open so `cliplab cache clean` never deletes a store
in use; its mtime is the store's "last used" (runtime.cache.mark_used).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from cliplab.data.digest import bytes_digest
from cliplab.models.core.base import Encoder
from cliplab.pipeline import iter_image_batches
from cliplab.progress import progress_bar

SCHEMA = 1
# Part of the cache key: bump a view's number whenever its definition changes.
VIEW_REVISION = {"center": 1, "flip": 1, "crop": 1, "lowres": 2}


def default_cache_dir() -> Path:
    from cliplab.settings import settings

    return settings().feature_cache


def apply_view(image: Image.Image, view: str) -> Image.Image:
    if view == "flip":
        return ImageOps.mirror(image)
    if view == "crop":  # zoom on the central 80% (side), a cheap scale augmentation
        w, h = image.size
        dw, dh = int(w * 0.1), int(h * 0.1)
        return image.crop((dw, dh, w - dw, h - dh))
    if view == "lowres":  # a thumbnail that fits in 32×32 and back: robustness to tiny / blurry photos
        w, h = image.size
        s = 32 / max(w, h)
        if s >= 1:
            return image
        small = image.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC)
        return small.resize((w, h), Image.BICUBIC)
    if view == "gray":  # colour removed: old photos, scans, prints
        return ImageOps.grayscale(image).convert("RGB")
    if view == "sketch":  # a pencil drawing of the photo (colour dodge of the grey over its blurred negative)
        g = np.asarray(ImageOps.grayscale(image), np.float32)
        blur = np.asarray(ImageOps.invert(ImageOps.grayscale(image)).filter(ImageFilter.GaussianBlur(3)), np.float32)
        return Image.fromarray(np.minimum(255.0, g * 255.0 / (256.0 - blur)).astype(np.uint8)).convert("RGB")
    return image


def _digest(s: str) -> str:
    return bytes_digest(s, 20)  # 40 hex digits, as the sha1 names it replaced


def file_key(path: str) -> str:
    st = os.stat(path)
    return _digest(f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}")


class FeatureStore:
    """key → float32 vector, in one SQLite file (safe to share between runs; WAL for concurrency).
    `about` ({"model": …}) is written once to the .json beside it, for `cliplab cache`."""

    def __init__(self, path: Path, dim: int, about: dict | None = None):
        from cliplab.runtime.cache import lock_file, mark_used

        self.path, self.dim = Path(path), int(dim)
        lock = self.path.with_suffix(".lock")
        self._lock = lock_file(lock, exclusive=False)  # shared: many runs may read one store
        mark_used(lock)
        if about is not None and not self.path.with_suffix(".json").exists():
            _write_about(self.path.with_suffix(".json"), about)
        self.db = sqlite3.connect(str(self.path), timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS features (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")

    def get(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        out = {}
        for i in range(0, len(keys), 500):
            chunk = list(keys[i : i + 500])
            q = f"SELECT key, vec FROM features WHERE key IN ({','.join('?' * len(chunk))})"
            for k, blob in self.db.execute(q, chunk):
                v = np.frombuffer(blob, np.float32)
                if v.size == self.dim:
                    out[k] = v
        return out

    def put(self, items: dict[str, np.ndarray]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO features VALUES (?, ?)",
                [(k, np.asarray(v, np.float32).tobytes()) for k, v in items.items()],
            )

    def close(self) -> None:
        self.db.close()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def _write_about(path: Path, about: dict) -> None:
    from cliplab.data.atomic import atomic_write_json

    try:
        atomic_write_json(path, about)
    except OSError:  # only `cliplab cache` reads it
        pass


def _store(cache_dir: Path, namespace: str, dim: int, model: str = "?") -> FeatureStore:
    path = Path(cache_dir) / f"{_digest(f'v{SCHEMA}|{namespace}')[:20]}.sqlite"
    return FeatureStore(path, dim, {"model": model, "namespace": namespace})


class _ViewEncoder(Encoder):
    """Adapts a tower (+ a view) to the pipeline's Encoder protocol: parallel decode, bad files skipped."""

    def __init__(self, tower, view: str):
        self.tower, self.view = tower, view
        self.names = list(tower.feature_dims)
        self.dim = sum(tower.feature_dims.values())
        self.image_batch_size = tower.batch_size

    def preprocess(self, image):
        return self.tower.preprocess(apply_view(image, self.view))

    def encode_image_batch(self, batch):
        feats = self.tower.run(batch)
        return np.concatenate([feats[k].float().numpy() for k in self.names], axis=1)

    def encode_texts(self, texts):  # pragma: no cover - images only
        raise NotImplementedError


def split_features(tower, flat: np.ndarray) -> dict[str, np.ndarray]:
    out, start = {}, 0
    for k, d in tower.feature_dims.items():
        out[k] = flat[:, start : start + d]
        start += d
    return out


def image_features(
    tower,
    paths: Sequence[str],
    view: str = "center",
    cache_dir: str | Path | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> tuple[dict[str, np.ndarray], dict[int, str]]:
    """Features of every image (NaN rows for failures) + {index: reason} for the failed ones."""
    enc = _ViewEncoder(tower, view)
    store = _store(
        Path(cache_dir or default_cache_dir()),
        f"image|{tower.id}|{view}@{VIEW_REVISION.get(view, 1)}",
        enc.dim,
        f"{tower.spec} (image, {view})",
    )
    flat = np.full((len(paths), enc.dim), np.nan, np.float32)
    failed: dict[int, str] = {}
    keys: list[str | None] = []
    for i, p in enumerate(paths):
        try:
            keys.append(file_key(p))
        except OSError:
            keys.append(None)
            failed[i] = "file not found"
    try:
        hits = store.get([k for k in keys if k])
        todo = [i for i, k in enumerate(keys) if k and k not in hits]
        for i, k in enumerate(keys):
            if k in hits:
                flat[i] = hits[k]
        label = f"features {tower.spec}" + ("" if view == "center" else f" ({view})")
        for batch in iter_image_batches(
            enc, [paths[i] for i in todo], workers=workers, progress=progress, description=label
        ):
            rows = [todo[j] for j in batch.indices]
            flat[rows] = batch.vectors
            store.put({keys[r]: batch.vectors[n] for n, r in enumerate(rows)})
            failed.update({todo[j]: reason for j, _, reason in batch.failures})
    finally:
        store.close()
    return split_features(tower, flat), failed


def text_features(
    tower, texts: Sequence[str], cache_dir: str | Path | None = None, progress: bool = True, batch_size: int = 256
) -> dict[str, np.ndarray]:
    dim = sum(tower.feature_dims.values())
    store = _store(Path(cache_dir or default_cache_dir()), f"text|{tower.id}", dim, f"{tower.spec} (text)")
    keys = [_digest(t) for t in texts]
    flat = np.zeros((len(texts), dim), np.float32)
    try:
        hits = store.get(keys)
        todo = [i for i, k in enumerate(keys) if k not in hits]
        for i, k in enumerate(keys):
            if k in hits:
                flat[i] = hits[k]
        with progress_bar(len(todo), f"features {tower.spec}", enabled=progress) as advance:
            for s in range(0, len(todo), batch_size):
                idx = todo[s : s + batch_size]
                feats = tower.run([texts[i] for i in idx])
                vec = np.concatenate([feats[k].float().numpy() for k in tower.feature_dims], axis=1)
                flat[idx] = vec
                store.put({keys[i]: vec[n] for n, i in enumerate(idx)})
                advance(len(idx))
    finally:
        store.close()
    return split_features(tower, flat)


def image_pixels(
    tower, paths: Sequence[str], view: str = "center", progress: bool = True, workers: int | None = None
) -> tuple[np.ndarray, dict[int, str]]:
    """Preprocessed pixels kept in memory, for towers that train (their features change every step)."""

    class _Pixels(_ViewEncoder):
        def encode_image_batch(self, batch):
            return batch

    enc = _Pixels(tower, view)
    out, failed = None, {}
    for batch in iter_image_batches(
        enc, list(paths), workers=workers, progress=progress, description=f"preprocessing ({view})"
    ):
        if out is None and len(batch.indices):
            out = np.zeros((len(paths),) + batch.vectors.shape[1:], np.float32)
        if len(batch.indices):
            out[batch.indices] = batch.vectors
        failed.update({i: reason for i, _, reason in batch.failures})
    return (out if out is not None else np.zeros((len(paths), 1), np.float32)), failed
