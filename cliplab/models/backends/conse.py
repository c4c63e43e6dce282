"""ConSE (Norouzi et al., 2014): an image is the probability-weighted mean of the text embeddings
of its top-T ImageNet classes, which puts an ImageNet CNN into a sentence encoder's space with no
training at all. Texts go straight through the sentence encoder.

As towers: image = EfficientNet logits → softmax → top-T mean of class-prompt vectors;
text = MiniLM (`pretrained.SentenceTower`).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch.nn import functional as F

from cliplab.data.digest import short_digest
from cliplab.models.backends.pretrained import (
    EfficientNetImageTower,
    EfficientNetLite,
    SentenceTower,
    efficientnet,
    minilm,
)
from cliplab.models.core.base import l2_normalize
from cliplab.models.core.imagenet import imagenet_classnames
from cliplab.models.core.tower import Model, TowerEncoder

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


def conse_vectors(logits: torch.Tensor, class_emb: torch.Tensor, top_t: int) -> torch.Tensor:
    """Torch twin of `cliplab.models.backends.conse.conse_combine` (softmax over logits, top-T mean)."""
    probs = torch.softmax(logits.float(), dim=1)
    t = max(1, min(int(top_t), probs.shape[1]))
    w, idx = probs.topk(t, dim=1)
    w = w / w.sum(dim=1, keepdim=True)
    return F.normalize(torch.einsum("nt,ntd->nd", w, class_emb[idx]), dim=-1)


@functools.lru_cache(maxsize=1)
def imagenet_class_embeddings() -> np.ndarray:
    """(1000, 384) MiniLM embeddings of the ImageNet class prompts (computed once per process)."""
    return minilm().encode([CLASS_TEMPLATE.format(c) for c in imagenet_classnames()])


class _ConSEGraph(torch.nn.Module):
    def __init__(self, features_and_logits, class_emb: np.ndarray, top_t: int):
        super().__init__()
        self.inner, self.top_t, self.combine = features_and_logits, int(top_t), conse_vectors
        self.register_buffer("class_emb", torch.from_numpy(np.ascontiguousarray(class_emb, np.float32)))

    def forward(self, pixel_values):
        return self.combine(self.inner(pixel_values)[1], self.class_emb, self.top_t)


class ConSEImageTower(EfficientNetImageTower):
    def __init__(self, net: EfficientNetLite, class_embeddings: np.ndarray, top_t: int = 10):
        super().__init__(net)
        self.class_embeddings, self.top_t = class_embeddings, int(top_t)
        self.dim = int(class_embeddings.shape[1])
        self.name = f"efficientnet-{net.variant}+conse{self.top_t}"

    def fingerprint(self) -> str:
        return short_digest(
            f"conse|{self.net.fingerprint()}|{self.net.preprocess!r}|{self.top_t}|"
            + short_digest(self.class_embeddings.tobytes())
        )

    def encode(self, batch: np.ndarray) -> np.ndarray:
        _, logits = self.net.run(batch)
        return conse_combine(softmax(logits), self.class_embeddings, self.top_t)

    def torch_module(self):
        return _ConSEGraph(self.net.module, self.class_embeddings, self.top_t).eval()


class ConSEEncoder(TowerEncoder):
    def __init__(self, variant: str = "lite0", top_t: int = 10, name: str = "conse"):
        self.top_t = top_t
        self.images = efficientnet(variant)
        self.class_embeddings = imagenet_class_embeddings()
        super().__init__(
            Model(
                ConSEImageTower(self.images, self.class_embeddings, top_t),
                SentenceTower(minilm()),
                name=name,
                dim=minilm().dim,
                logit_scale=CONSE_LOGIT_SCALE,
            )
        )

    def describe(self) -> dict:
        return {
            **super().describe(),
            "image_tower": f"efficientnet-{self.images.variant}",
            "preprocess": short_digest(repr(self.images.preprocess)),
            "text_tower": "all-MiniLM-L6-v2",
            "top_t": self.top_t,
        }
