"""Pooled intermediate-layer image features as an image-only Encoder (`LayerFeatures`).

A chosen layer's (C, H, W) map from the encoder's image tower (`Tower.feature_map`, see
`feature_maps`) is pooled by `pooling` (avg/gap, mac, gem, rmac; L2-normalised) and, optionally,
PCA-reduced with a PCA fitted on all the images of the run (then L2 again). Being an Encoder, the
embedding pipeline (threads, skip-and-report, progress) runs it unchanged; once fitted, its PCA is
reused for later calls (queries vs database). `analyze features` and `eval instance` both use it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from cliplab.errors import CliplabError
from cliplab.models.core.base import Encoder, l2_normalize
from cliplab.models.features.feature_maps import parse_layer
from cliplab.models.features.pooling import fit_pca_whitening, pca_whiten, pool

POOLINGS = ("avg", "gem", "mac", "rmac")
_ALIASES = {
    "avg": "gap",
    "global": "gap",
    "gap": "gap",
    "mean": "gap",
    "mac": "mac",
    "max": "mac",
    "gem": "gem",
    "rmac": "rmac",
    "r-mac": "rmac",
}


def pooling_name(name: str) -> str:
    key = _ALIASES.get(str(name).lower())
    if key is None:
        raise CliplabError(f"unknown pooling {name!r}: use {', '.join(POOLINGS)}")
    return key


class LayerFeatures(Encoder):
    """Pooled intermediate-layer features of an encoder's image tower, as an image-only Encoder."""

    needs_fit = False

    def __init__(
        self, encoder: Encoder, layer="head", pooling: str = "gem", pca=None, whiten: bool = False, gem_p: float = 3.0
    ):
        self.base = encoder
        model = getattr(encoder, "model", None)
        if model is None or not hasattr(model, "image"):
            raise CliplabError(
                f"model {getattr(encoder, 'name', encoder)!r} has no EfficientNet or CLIP ViT "
                "image tower to take intermediate features from"
            )
        self.tower = model.image
        self.layer = parse_layer(layer)
        self.pooling = pooling_name(pooling)
        self.gem_p = float(gem_p)
        self.whiten = bool(whiten)
        self.pca_dim = pca if isinstance(pca, (int, np.integer)) or pca is None else None
        self.pca = None if self.pca_dim is not None or pca is None else pca  # an already fitted PCA
        if self.pca_dim is not None and int(self.pca_dim) < 1:
            raise CliplabError(f"--pca must be >= 1, got {pca}")
        self.name = f"{encoder.name}@{self.layer}:{self.pooling}"
        self.image_batch_size = encoder.image_batch_size
        self.channels = self.tower.feature_channels(self.layer)
        self.dim = (
            self.channels
            if self.pca is None and self.pca_dim is None
            else int(self.pca.n_components_ if self.pca is not None else min(self.pca_dim, self.channels))
        )

    def preprocess(self, image):
        return self.base.preprocess(image)

    def feature_map(self, batch: np.ndarray):
        return self.tower.feature_map(batch, self.layer)

    def encode_image_batch(self, batch: np.ndarray) -> np.ndarray:
        fmap = self.feature_map(batch)
        kw = {"p": self.gem_p} if self.pooling == "gem" else {}
        return pool(fmap, self.pooling, **kw).numpy().astype(np.float32)

    def finish_images(self, features: np.ndarray) -> np.ndarray:
        if len(features) == 0:
            return np.zeros((0, self.dim), np.float32)
        if self.pca is None and self.pca_dim is not None:
            self.pca = fit_pca_whitening(features, int(self.pca_dim), whiten=self.whiten)
            self.dim = int(self.pca.n_components_)
        if self.pca is not None:
            return pca_whiten(features, self.pca)
        return l2_normalize(features)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise CliplabError("intermediate-layer features are image-only")

    def describe(self) -> dict:
        return {
            "model": self.name,
            "dim": self.dim,
            "base_model": self.base.describe(),
            "tower": self.tower.name,
            "layer": self.layer,
            "pooling": self.pooling,
            **({"gem_p": self.gem_p} if self.pooling == "gem" else {}),
            "channels": self.channels,
            "pca": None if self.pca is None else int(self.pca.n_components_),
            "whiten": self.whiten if self.pca is not None else None,
        }
