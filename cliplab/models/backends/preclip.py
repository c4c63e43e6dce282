"""The "Pre-CLIP" seed baseline, implemented faithfully: an ImageNet CNN embedding and a sentence
encoder embedding, each reduced by its *own* PCA to a common dimension fitted on the data being
analysed. Nothing aligns the two spaces, so cross-modal similarity is close to chance; that is the
point of the baseline.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
from sklearn.decomposition import PCA

from cliplab.data.digest import short_digest
from cliplab.models.backends.pretrained import PooledImageTower, SentenceTower, efficientnet, minilm
from cliplab.models.core.base import l2_normalize
from cliplab.models.core.tower import Model, TowerEncoder


def fit_pca(features: np.ndarray, dim: int, seed: int = 0) -> PCA:
    k = max(1, min(dim, features.shape[0], features.shape[1]))
    return PCA(n_components=k, svd_solver="full", random_state=seed).fit(features)


def project(pca: PCA, features: np.ndarray, dim: int) -> np.ndarray:
    """PCA transform, zero-padded to `dim` when fewer components could be fitted."""
    z = pca.transform(features).astype(np.float32)
    if z.shape[1] < dim:
        z = np.pad(z, ((0, 0), (0, dim - z.shape[1])))
    return l2_normalize(z)


class PreClipEncoder(TowerEncoder):
    """Towers: EfficientNet pooled features and MiniLM; the two PCAs are fitted here, on the data."""

    needs_fit = True

    def __init__(self, variant: str = "lite0", dim: int = 64, name: str = "preclip"):
        self.images = efficientnet(variant)
        self.texts = minilm()
        # an unaligned baseline: no calibration of the logit scale is meaningful
        super().__init__(
            Model(PooledImageTower(self.images), SentenceTower(self.texts), name=name, dim=dim, logit_scale=10.0)
        )
        self.image_pca: PCA | None = None
        self.text_pca: PCA | None = None

    def fit(self, image_features: np.ndarray | None = None, texts: Sequence[str] | None = None) -> PreClipEncoder:
        """Fit either PCA explicitly (else each is fitted on the first data it encodes)."""
        if image_features is not None:
            self.image_pca = fit_pca(image_features, self.dim)
        if texts is not None:
            self.text_pca = fit_pca(self.texts.encode(texts), self.dim)
        return self

    def unfitted(self) -> PreClipEncoder:
        """A shallow copy sharing the towers, with both PCAs cleared (each dataset fits its own)."""
        fresh = copy.copy(self)
        fresh.image_pca = fresh.text_pca = None
        return fresh

    # encode_image_batch gives raw 1280-d features; the PCA needs every image, so it runs here

    def finish_images(self, features: np.ndarray) -> np.ndarray:
        if len(features) == 0:
            return np.zeros((0, self.dim), np.float32)
        if self.image_pca is None:
            self.image_pca = fit_pca(features, self.dim)
        return project(self.image_pca, features, self.dim)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        raw = self.texts.encode(texts)
        if len(raw) == 0:
            return np.zeros((0, self.dim), np.float32)
        if self.text_pca is None:
            self.text_pca = fit_pca(raw, self.dim)
        return project(self.text_pca, raw, self.dim)

    def describe(self) -> dict:
        return {
            **super().describe(),
            "image_tower": f"efficientnet-{self.images.variant}",
            "preprocess": short_digest(repr(self.images.preprocess)),
            "text_tower": "all-MiniLM-L6-v2",
            "pca_fitted_on": "the data being encoded",
        }
