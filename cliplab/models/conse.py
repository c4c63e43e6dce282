"""ConSE (Norouzi et al., 2014): an image is the probability-weighted mean of the text embeddings
of its top-T ImageNet classes, which puts an ImageNet CNN into a sentence encoder's space with no
training at all. Texts go straight through the sentence encoder.
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
from PIL import Image

from cliplab.models.base import Encoder, l2_normalize, short_digest
from cliplab.models.imagenet import imagenet_classnames
from cliplab.models.towers import image_tower, text_tower

CLASS_TEMPLATE = "a photo of a {}."
# Softmax temperature for zero-shot probabilities, fitted by benchmarks/calibrate_logit_scale.py
# (NLL of image→caption matching on the Flickr8k *train* split; see docs/benchmarks.md).
CONSE_LOGIT_SCALE = 14.1


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def conse_combine(probs: np.ndarray, class_embeddings: np.ndarray, top_t: int) -> np.ndarray:
    """(N, C) class probabilities × (C, D) class embeddings → (N, D) unit vectors, top-T only."""
    t = max(1, min(int(top_t), probs.shape[1]))
    top = np.argpartition(-probs, t - 1, axis=1)[:, :t]
    w = np.take_along_axis(probs, top, axis=1)
    w = w / w.sum(axis=1, keepdims=True)
    return l2_normalize(np.einsum("nt,ntd->nd", w, class_embeddings[top]))


@functools.lru_cache(maxsize=1)
def imagenet_class_embeddings() -> np.ndarray:
    """(1000, 384) MiniLM embeddings of the ImageNet class prompts (computed once per process)."""
    return text_tower().encode([CLASS_TEMPLATE.format(c) for c in imagenet_classnames()])


class ConSEEncoder(Encoder):
    def __init__(self, variant: str = "lite0", top_t: int = 10, name: str = "conse"):
        self.name = name
        self.top_t = top_t
        self.images = image_tower(variant)
        self.texts = text_tower()
        self.dim = self.texts.dim
        self.logit_scale = CONSE_LOGIT_SCALE
        self.image_batch_size = 16  # smaller batches stay in cache: faster on CPU for this CNN
        self.class_embeddings = imagenet_class_embeddings()

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self.images.preprocess(image)

    def encode_image_batch(self, batch: np.ndarray) -> np.ndarray:
        _, logits = self.images.run(batch)
        return conse_combine(softmax(logits), self.class_embeddings, self.top_t)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.texts.encode(texts)

    def describe(self) -> dict:
        return {**super().describe(), "image_tower": f"efficientnet-{self.images.variant}",
                "preprocess": short_digest(repr(self.images.preprocess)),
                "text_tower": "all-MiniLM-L6-v2", "top_t": self.top_t}
