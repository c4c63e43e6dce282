"""Batched, parallel embedding: reader (decode + preprocess in threads) → encoder → collected vectors.

Decoding the next batches overlaps with the model running on the current one (PIL and numpy
release the GIL). Decode threads preprocess each image straight into its row of a preallocated
batch array (reused from batch to batch), so no image is copied again to make a batch. A file that
cannot be used is recorded with its reason and skipped, never raised; so is one whose decoding
takes longer than CLIPLAB_DECODE_TIMEOUT (cliplab.data.pool says what that can and cannot bound).
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from cliplab.data.images import load_image
from cliplab.data.pool import DecodePool, DecodeTimeout
from cliplab.errors import ImageError
from cliplab.models.core.base import Encoder
from cliplab.progress import progress_bar
from cliplab.settings import settings


@dataclass
class ImageBatch:
    """One encoded batch: vectors[i] belongs to paths[i]; failures are (path, reason)."""

    indices: list[int]
    paths: list[str]
    vectors: np.ndarray
    failures: list[tuple[int, str, str]] = field(default_factory=list)  # (input index, path, reason)


@dataclass
class EmbedResult:
    vectors: np.ndarray  # (n_ok, D) float32, L2-normalised
    paths: list[str]  # every input, in input order
    status: list[str]  # "ok" | "failed" per input
    errors: list[str]  # reason ("" when ok) per input
    rows: list[int]  # row in `vectors`, -1 when failed
    model: dict

    @property
    def n_ok(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def failures(self) -> list[tuple[str, str]]:
        return [(p, e) for p, s, e in zip(self.paths, self.status, self.errors) if s != "ok"]


def configure_threads(n: int | None = None) -> None:
    """Use every core for the model's math; decoding threads are I/O-bound most of the time."""
    torch = sys.modules.get("torch")  # only a torch model needs this; never import torch for it
    if torch is None:
        return
    n = n or settings().threads or os.cpu_count() or 1
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def input_size(encoder: Encoder) -> int | None:
    """The image size the model resizes to (so big JPEGs can be decoded at a reduced scale)."""
    try:
        return int(encoder.model.image.runtime_config()["preprocess"]["shortest_edge"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


class _BatchSlots:
    """One batch's input array, filled row by row by the decode threads through
    `Encoder.preprocess_into`, so the main thread never stacks images. The run's first image sizes
    it (`layout`, shared by all batches of a run); later batches reuse encoded batches' arrays."""

    def __init__(self, rows: int, layout: dict, array: np.ndarray | None = None):
        self.rows, self.layout, self.array = rows, layout, array
        self._lock = threading.Lock()

    def _allocate(self, shape: tuple, dtype) -> np.ndarray:
        with self._lock:
            if self.array is None:
                self.array = np.empty((self.rows, *shape), dtype)
            return self.array

    def fill(self, encoder: Encoder, row: int, image) -> None:
        if self.array is None and "shape" in self.layout:
            self._allocate(self.layout["shape"], self.layout["dtype"])
        if self.array is not None:
            encoder.preprocess_into(image, self.array[row])
            return
        first = np.asarray(encoder.preprocess(image))  # the run's first images
        self.layout.setdefault("dtype", first.dtype)
        self.layout.setdefault("shape", first.shape)
        self._allocate(first.shape, first.dtype)[row] = first


def _load_into(encoder: Encoder, path: str, slots: _BatchSlots, row: int, max_pixels, draft) -> str | None:
    """Decode `path` into row `row` of its batch; the reason it cannot be used, or None."""
    try:
        slots.fill(encoder, row, load_image(path, max_pixels=max_pixels, draft=draft))
        return None
    except ImageError as e:
        return str(e)
    except Exception as e:  # noqa: BLE001 a decoder bug in one file must not end the run
        return f"unreadable ({type(e).__name__}: {e})"


def _outcome(pool: DecodePool, job) -> str | None:
    try:
        return pool.result(job)
    except DecodeTimeout as e:
        return f"decode took too long ({e}; CLIPLAB_DECODE_TIMEOUT)"


def iter_image_batches(
    encoder: Encoder,
    paths: Sequence[str],
    batch_size: int | None = None,
    workers: int | None = None,
    max_pixels: int | None = None,
    progress: bool = False,
    description: str = "embedding",
) -> Iterator[ImageBatch]:
    """Yield encoded batches of `batch_size` inputs each, in input order (a batch's failures are
    left out of its vectors). Vectors are `encode_image_batch` outputs (raw)."""
    bs = batch_size or encoder.image_batch_size
    workers = workers or min(4, max(2, (os.cpu_count() or 2)))
    configure_threads()
    draft = input_size(encoder)
    ahead = 3  # batches decoding while one is encoded: memory stays flat on a million files
    starts = iter(range(0, len(paths), bs))
    spare: list[np.ndarray] = []  # arrays of batches already encoded, reused for the next ones
    layout: dict = {}  # the run's input shape and dtype, once its first image is preprocessed
    with (
        DecodePool(workers, settings().decode_timeout) as pool,
        progress_bar(len(paths), description, enabled=progress) as advance,
    ):
        pending: deque = deque()

        def submit_next() -> None:
            start = next(starts, None)
            if start is None:
                return
            slots = _BatchSlots(bs, layout, spare.pop() if spare else None)
            stop = min(start + bs, len(paths))
            futures = [
                pool.submit(_load_into, encoder, paths[i], slots, i - start, max_pixels, draft)
                for i in range(start, stop)
            ]
            pending.append((start, slots, futures))

        for _ in range(ahead):
            submit_next()
        while pending:
            start, slots, futures = pending.popleft()
            timed_out = pool.timed_out
            errors = [_outcome(pool, f) for f in futures]
            stuck = pool.timed_out > timed_out
            submit_next()
            ok = [j for j, e in enumerate(errors) if e is None]
            failures = [(start + j, paths[start + j], e) for j, e in enumerate(errors) if e is not None]
            if ok:  # a batch with failures is compacted (a copy); a full one is passed as it is
                batch = slots.array[: len(errors)] if len(ok) == len(errors) else slots.array[ok]
                vectors = encoder.encode_image_batch(batch)
            else:
                vectors = np.zeros((0, encoder.dim), np.float32)
            advance(len(errors))
            yield ImageBatch([start + j for j in ok], [paths[start + j] for j in ok], vectors, failures)
            # not reused when an encoder hands its input back, or a stuck decoder may still write into it
            if slots.array is not None and not stuck and not np.may_share_memory(vectors, slots.array):
                spare.append(slots.array)


def embed_images(
    encoder: Encoder,
    paths: Sequence[str],
    batch_size: int | None = None,
    workers: int | None = None,
    max_pixels: int | None = None,
    progress: bool = False,
) -> EmbedResult:
    """Embed every image in `paths`; failed ones are recorded, not raised."""
    paths = [str(p) for p in paths]
    status, errors, rows = ["failed"] * len(paths), [""] * len(paths), [-1] * len(paths)
    parts: list[np.ndarray] = []
    n = 0
    for b in iter_image_batches(encoder, paths, batch_size, workers, max_pixels, progress):
        for i in b.indices:
            status[i], rows[i] = "ok", n
            n += 1
        for i, _, reason in b.failures:
            errors[i] = reason
        if len(b.indices):
            parts.append(b.vectors)
    raw = np.concatenate(parts) if parts else np.zeros((0, encoder.dim), np.float32)
    vectors = encoder.finish_images(raw) if len(raw) else np.zeros((0, encoder.dim), np.float32)
    return EmbedResult(vectors, paths, status, errors, rows, encoder.describe())


def embed_texts(encoder: Encoder, texts: Sequence[str], batch_size: int = 256, progress: bool = False) -> np.ndarray:
    """Embed strings in batches (one call per batch keeps the progress bar honest)."""
    texts = [str(t) for t in texts]
    configure_threads()
    if getattr(encoder, "needs_fit", False):  # fitted baselines must see all texts at once
        return encoder.encode_texts(texts)
    parts = []
    with progress_bar(len(texts), "encoding texts", enabled=progress) as advance:
        for i in range(0, len(texts), batch_size):
            parts.append(encoder.encode_texts(texts[i : i + batch_size]))
            advance(len(parts[-1]))
    return np.concatenate(parts) if parts else np.zeros((0, encoder.dim), np.float32)
