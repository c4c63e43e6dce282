"""The one encoder interface every feature talks to.

An encoder turns PIL images and strings into L2-normalised float32 vectors in one shared space.
Image encoding is split in two steps so the pipeline can run `preprocess` (PIL → array) in worker
threads while the model runs `encode_image_batch` on the previous batch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np
from PIL import Image

from cliplab.errors import CliplabError


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(n, eps)).astype(np.float32)


class Encoder(ABC):
    name: str = "encoder"  # the spec it was loaded from; shown in every output
    dim: int = 0  # size of the shared embedding space
    logit_scale: float = 100.0  # multiplies cosine similarities before softmax (zero-shot)
    # zero-shot rule: "softmax" over labels, or "sigmoid"(scale·cos + logit_bias) per label (SigLIP);
    # an encoder that is not softmax also says so in describe(), which zeroshot.encoder_probs reads
    probability: str = "softmax"
    logit_bias: float = 0.0
    image_batch_size: int = 32  # a good default batch for this model on a CPU
    needs_fit: bool = False  # True for baselines fitted on the data being analysed (preclip)

    def to(self, device: str) -> Encoder:
        """Run on a torch device. This default is CPU-only: any other device is a CliplabError
        (the runtime then stays on the CPU under `auto`, or reports it when `cuda` was asked for)."""
        if device != "cpu":
            raise CliplabError(f"{self.name} runs on the CPU only with the torch runtime")
        return self

    # --- images -----------------------------------------------------------------------------
    @abstractmethod
    def preprocess(self, image: Image.Image) -> np.ndarray:
        """One RGB PIL image → model input array (C, H, W) float32. Thread-safe, no torch."""

    def preprocess_into(self, image: Image.Image, out: np.ndarray) -> None:
        """`preprocess` written into `out`, a row of the pipeline's preallocated batch."""
        out[...] = self.preprocess(image)

    @abstractmethod
    def encode_image_batch(self, batch: np.ndarray) -> np.ndarray:
        """Stacked `preprocess` outputs (N, C, H, W) → (N, D) vectors (not yet `finish_images`)."""

    def finish_images(self, features: np.ndarray) -> np.ndarray:
        """All batch outputs of one run → final L2-normalised vectors. Fitted baselines override."""
        return l2_normalize(features)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Convenience for in-memory images (the pipeline is the fast path for files)."""
        if len(images) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        bs = self.image_batch_size
        parts = [
            self.encode_image_batch(np.stack([self.preprocess(im) for im in images[i : i + bs]]))
            for i in range(0, len(images), bs)
        ]
        return self.finish_images(np.concatenate(parts))

    # --- texts ------------------------------------------------------------------------------
    @abstractmethod
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Strings → (N, D) L2-normalised float32."""

    def unfitted(self) -> Encoder:
        """An encoder that fits afresh on the next data (same object unless `needs_fit`)."""
        return self

    def describe(self) -> dict:
        return {"model": self.name, "dim": self.dim, "logit_scale": self.logit_scale}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"
