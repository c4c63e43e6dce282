"""Batched, parallel embedding: reader (decode + preprocess in threads) → encoder → collected vectors.

Decoding the next images overlaps with the model running on the current batch (PIL and numpy
release the GIL). A file that cannot be used is recorded with its reason and skipped, never raised.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from cliplab.data.images import load_image
from cliplab.errors import ImageError
from cliplab.models.base import Encoder
from cliplab.progress import progress_bar


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
    n = n or int(os.environ.get("CLIPLAB_THREADS", 0)) or os.cpu_count() or 1
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def input_size(encoder: Encoder) -> int | None:
    """The image size the model resizes to (so big JPEGs can be decoded at a reduced scale)."""
    try:
        return int(encoder.model.image.runtime_config()["preprocess"]["shortest_edge"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def _load_and_preprocess(encoder: Encoder, path: str, max_pixels: int | None, draft: int | None = None):
    try:
        return encoder.preprocess(load_image(path, max_pixels=max_pixels, draft=draft)), None
    except ImageError as e:
        return None, str(e)
    except Exception as e:  # noqa: BLE001 a decoder bug in one file must not end the run
        return None, f"unreadable ({type(e).__name__}: {e})"


def iter_image_batches(
    encoder: Encoder,
    paths: Sequence[str],
    batch_size: int | None = None,
    workers: int | None = None,
    max_pixels: int | None = None,
    progress: bool = False,
    description: str = "embedding",
) -> Iterator[ImageBatch]:
    """Yield encoded batches in input order. Vectors are `encode_image_batch` outputs (raw)."""
    bs = batch_size or encoder.image_batch_size
    workers = workers or min(4, max(2, (os.cpu_count() or 2)))
    configure_threads()
    draft = input_size(encoder)
    window = bs * 3  # bounded prefetch: memory stays flat on a million files
    with (
        ThreadPoolExecutor(max_workers=workers) as pool,
        progress_bar(len(paths), description, enabled=progress) as advance,
    ):
        pending: deque = deque()
        nxt = 0

        def fill():
            nonlocal nxt
            while nxt < len(paths) and len(pending) < window:
                pending.append(
                    (nxt, paths[nxt], pool.submit(_load_and_preprocess, encoder, paths[nxt], max_pixels, draft))
                )
                nxt += 1

        fill()
        while pending:
            idx, ok_paths, arrays, failures = [], [], [], []
            while pending and len(arrays) < bs:
                i, p, fut = pending.popleft()
                arr, err = fut.result()
                if err is None:
                    idx.append(i)
                    ok_paths.append(p)
                    arrays.append(arr)
                else:
                    failures.append((i, p, err))
                fill()
            vectors = encoder.encode_image_batch(np.stack(arrays)) if arrays else np.zeros((0, encoder.dim), np.float32)
            advance(len(arrays) + len(failures))
            yield ImageBatch(idx, ok_paths, vectors, failures)


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
