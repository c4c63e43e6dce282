"""Encoders for the server: loaded once per model spec, shared by every collection using it.

Loading is the only locked step (a model takes seconds to load; two collections asking at once
must not load it twice). Encoding goes through micro-batchers (batching.py): one for texts, one
for images, per model. Image decoding and preprocessing (PIL/numpy, thread-safe) stay in the
request threads, so only the model call is batched.

Text queries repeat (a page's paging, the same words from many people, a query re-run with
other filters), so their vectors are kept in one LRU per pool, keyed by (model spec, text): a
repeated text never reaches the model, and two models never share an entry. Collections get
the encoder through `ServedEncoder`, so the library's search (`cliplab.search`) takes the same
cache and batcher as the plain `/api/search?q=` path.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from cliplab.models.core.base import Encoder, l2_normalize
from cliplab.serve.batching import MicroBatcher
from cliplab.settings import settings


class TextCache:
    """Least-recently-used text vectors, keyed by (model spec, text); thread-safe."""

    def __init__(self, size: int):
        self.size = max(0, int(size))
        self._rows: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, str]) -> np.ndarray | None:
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                self.misses += 1
                return None
            self._rows.move_to_end(key)
            self.hits += 1
        return row.copy()  # callers may scale their query vector in place

    def put(self, key: tuple[str, str], row: np.ndarray) -> None:
        if not self.size:
            return
        with self._lock:
            self._rows[key] = np.array(row, np.float32)
            self._rows.move_to_end(key)
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)

    def __len__(self) -> int:
        return len(self._rows)


class SharedEncoder:
    """One loaded encoder, its batchers, and its share of the pool's text cache (entries under `spec`)."""

    def __init__(
        self,
        encoder: Encoder,
        max_batch: int = 32,
        max_wait_s: float = 0.004,
        spec: str | None = None,
        cache: TextCache | None = None,
    ):
        self.encoder = encoder
        self.spec = spec or encoder.name
        self.cache = cache if cache is not None else TextCache(0)
        self.texts = MicroBatcher(encoder.encode_texts, max_batch, max_wait_s, f"texts-{encoder.name}")
        self.images = MicroBatcher(self._encode_arrays, max_batch, max_wait_s, f"images-{encoder.name}")
        self.served = ServedEncoder(self)

    @property
    def dim(self) -> int:
        return int(self.encoder.dim)

    def _encode_arrays(self, arrays) -> np.ndarray:
        return l2_normalize(self.encoder.finish_images(self.encoder.encode_image_batch(np.stack(arrays))))

    def encode_text(self, text: str) -> np.ndarray:
        return self.encode_texts([text])[0]

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of `texts`: cached ones from the cache, the others through the text batcher
        (so they share a model call with other requests' texts) and then into the cache."""
        out: list[np.ndarray | None] = [self.cache.get((self.spec, str(t))) for t in texts]
        pending: dict[str, object] = {}
        for t, row in zip(texts, out):
            if row is None and str(t) not in pending:
                pending[str(t)] = self.texts.submit(str(t))
        for t, fut in pending.items():
            row = fut.result(120.0)
            self.cache.put((self.spec, t), row)
            pending[t] = row
        rows = [row if row is not None else pending[str(t)] for t, row in zip(texts, out)]
        return np.stack(rows).astype(np.float32, copy=False) if rows else np.zeros((0, self.dim), np.float32)

    def encode_image(self, image: Image.Image) -> np.ndarray:
        return self.images(self.encoder.preprocess(image))

    def close(self) -> None:
        self.texts.close()
        self.images.close()


class ServedEncoder:
    """The encoder as a served collection sees it: the loaded encoder in every respect, except that
    `encode_texts` goes through the pool's text cache and batcher (what `Collection(loader=...)` and
    `ShardsIndex(loader=...)` get, so the library's query code needs no server knowledge)."""

    def __init__(self, shared: SharedEncoder):
        self._shared = shared

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._shared.encode_texts(texts)

    def __getattr__(self, name: str):
        return getattr(self._shared.encoder, name)

    def __repr__(self) -> str:
        return f"ServedEncoder({self._shared.encoder!r})"


class EncoderPool:
    """spec → SharedEncoder, each loaded on first use by `loader` (default `cliplab.runtime.load_encoder`);
    one text cache of `text_cache` entries for all of them (default: $CLIPLAB_TEXT_CACHE, 4096 — 12 MB
    of lite's 768-d vectors)."""

    def __init__(
        self,
        loader: Callable[[str], Encoder] | None = None,
        max_batch: int = 32,
        max_wait_s: float = 0.004,
        text_cache: int | None = None,
    ):
        self.loader = loader or _default_loader
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self.cache = TextCache(settings().text_cache if text_cache is None else text_cache)
        self._shared: dict[str, SharedEncoder] = {}
        self._lock = threading.Lock()

    def load(self, spec: str) -> ServedEncoder:
        """The encoder for collections (`Collection(loader=...)`): its texts cached and batched."""
        return self.get(spec).served

    def get(self, spec: str) -> SharedEncoder:
        shared = self._shared.get(spec)
        if shared is None:
            with self._lock:
                shared = self._shared.get(spec)
                if shared is None:
                    shared = SharedEncoder(self.loader(spec), self.max_batch, self.max_wait_s, spec, self.cache)
                    self._shared[spec] = shared
        return shared

    def runtime(self, spec: str) -> dict:
        """{"runtime": "onnx fp32"…} for the encoder loaded for `spec` ({} before it is loaded)."""
        from cliplab.runtime import runtime_label

        shared = self._shared.get(spec)
        return {} if shared is None else {"runtime": runtime_label(shared.encoder)}

    def add(self, spec: str, encoder: Encoder) -> None:
        """Register an already loaded encoder under `spec` (tests, or an encoder handed in)."""
        with self._lock:
            if spec not in self._shared:
                self._shared[spec] = SharedEncoder(encoder, self.max_batch, self.max_wait_s, spec, self.cache)

    def close(self) -> None:
        for shared in self._shared.values():
            shared.close()


def _default_loader(spec: str) -> Encoder:
    from cliplab.runtime import load_encoder

    return load_encoder(spec)
