"""Encoders for the server: loaded once per model spec, shared by every collection using it.

Loading is the only locked step (a model takes seconds to load; two collections asking at once
must not load it twice). Encoding goes through micro-batchers (batching.py): one for texts, one
for images, per model. Image decoding and preprocessing (PIL/numpy, thread-safe) stay in the
request threads, so only the model call is batched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
from PIL import Image

from cliplab.models.core.base import Encoder, l2_normalize
from cliplab.serve.batching import MicroBatcher


class SharedEncoder:
    """One loaded encoder and its batchers."""

    def __init__(self, encoder: Encoder, max_batch: int = 32, max_wait_s: float = 0.004):
        self.encoder = encoder
        self.texts = MicroBatcher(encoder.encode_texts, max_batch, max_wait_s, f"texts-{encoder.name}")
        self.images = MicroBatcher(self._encode_arrays, max_batch, max_wait_s, f"images-{encoder.name}")

    @property
    def dim(self) -> int:
        return int(self.encoder.dim)

    def _encode_arrays(self, arrays) -> np.ndarray:
        return l2_normalize(self.encoder.finish_images(self.encoder.encode_image_batch(np.stack(arrays))))

    def encode_text(self, text: str) -> np.ndarray:
        return self.texts(text)

    def encode_image(self, image: Image.Image) -> np.ndarray:
        return self.images(self.encoder.preprocess(image))

    def close(self) -> None:
        self.texts.close()
        self.images.close()


class EncoderPool:
    """spec → SharedEncoder, each loaded on first use by `loader` (default `cliplab.runtime.load_encoder`)."""

    def __init__(self, loader: Callable[[str], Encoder] | None = None, max_batch: int = 32, max_wait_s: float = 0.004):
        self.loader = loader or _default_loader
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self._shared: dict[str, SharedEncoder] = {}
        self._lock = threading.Lock()

    def load(self, spec: str) -> Encoder:
        """The plain encoder (what `Collection(loader=...)` wants)."""
        return self.get(spec).encoder

    def get(self, spec: str) -> SharedEncoder:
        shared = self._shared.get(spec)
        if shared is None:
            with self._lock:
                shared = self._shared.get(spec)
                if shared is None:
                    shared = SharedEncoder(self.loader(spec), self.max_batch, self.max_wait_s)
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
            self._shared.setdefault(spec, SharedEncoder(encoder, self.max_batch, self.max_wait_s))

    def close(self) -> None:
        for shared in self._shared.values():
            shared.close()


def _default_loader(spec: str) -> Encoder:
    from cliplab.runtime import load_encoder

    return load_encoder(spec)
