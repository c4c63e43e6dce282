"""The "Pre-CLIP" seed baseline, implemented faithfully: an ImageNet CNN embedding and a sentence
encoder embedding, each reduced by its *own* PCA to a common dimension. Nothing aligns the two
spaces, so cross-modal similarity is close to chance; that is the point of the baseline.

Two ways to fit the PCAs:
- the shipped reference fit (`load_encoder("preclip")`): both PCAs fitted once, by
  `tools/preclip_reference.py`, on the ImageNet sample photos and the package's ImageNet vocabulary.
  A fixed space, so a folder can be indexed incrementally and searched beside other models; the
  description names the fit's sha256, so an index notices another fit.
- fitted on the data being analysed (`.unfitted()`, which eval, analyze and every other dataset
  analysis call): the seed's own rule; each PCA is fitted on the first data it encodes.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from sklearn.decomposition import PCA

from cliplab.data.digest import file_digest, short_digest
from cliplab.models import specs
from cliplab.models.backends.pretrained import PooledImageTower, SentenceTower, efficientnet, minilm
from cliplab.models.core.base import l2_normalize
from cliplab.models.core.tower import Model, TowerEncoder

DATA_FIT = "the data being encoded"


def fit_pca(features: np.ndarray, dim: int, seed: int = 0) -> PCA:
    k = max(1, min(dim, features.shape[0], features.shape[1]))
    return PCA(n_components=k, svd_solver="full", random_state=seed).fit(features)


def project(pca, features: np.ndarray, dim: int) -> np.ndarray:
    """PCA transform, zero-padded to `dim` when fewer components could be fitted."""
    z = pca.transform(features).astype(np.float32)
    if z.shape[1] < dim:
        z = np.pad(z, ((0, 0), (0, dim - z.shape[1])))
    return l2_normalize(z)


@dataclass(frozen=True)
class Projection:
    """A PCA as shipped: x ↦ (x − mean_) · components_ᵀ, what sklearn's `PCA.transform` computes
    (no whitening). Row by row, so a vector does not depend on the batch it came in."""

    mean_: np.ndarray  # (D,) float32
    components_: np.ndarray  # (k, D) float32, orthonormal rows

    @property
    def n_components_(self) -> int:
        return int(self.components_.shape[0])

    def transform(self, features: np.ndarray) -> np.ndarray:
        return (np.asarray(features, np.float32) - self.mean_) @ self.components_.T

    @classmethod
    def of(cls, pca: PCA) -> Projection:
        return cls(pca.mean_.astype(np.float32), pca.components_.astype(np.float32))


@dataclass(frozen=True)
class Reference:
    image: Projection
    text: Projection
    sha256: str  # of the .npz file

    @property
    def label(self) -> str:
        return f"shipped reference fit (sha256 {self.sha256[:12]})"


@functools.lru_cache(maxsize=4)
def load_reference(path: str) -> Reference:
    """The reference fit in `path` (an .npz written by `tools/preclip_reference.py`)."""
    with np.load(path) as z:
        image = Projection(z["image_mean"], z["image_components"])
        text = Projection(z["text_mean"], z["text_components"])
    return Reference(image, text, file_digest(path, algorithm="sha256"))


class PreClipEncoder(TowerEncoder):
    """Towers: EfficientNet pooled features and MiniLM, then one PCA per modality: the shipped
    reference fit when there is one for these dimensions, else fitted here, on the data."""

    def __init__(self, variant: str = "lite0", dim: int = 64, name: str = "preclip"):
        self.images = efficientnet(variant)
        self.texts = minilm()
        # an unaligned baseline: no calibration of the logit scale is meaningful
        super().__init__(
            Model(PooledImageTower(self.images), SentenceTower(self.texts), name=name, dim=dim, logit_scale=10.0)
        )
        self.image_pca: PCA | Projection | None = None
        self.text_pca: PCA | Projection | None = None
        self.reference: Reference | None = None
        path = specs.preclip_reference(dim) if variant == specs.PRECLIP_VARIANT else None
        if path is not None:
            self.reference = load_reference(str(path))
            self.image_pca, self.text_pca = self.reference.image, self.reference.text

    @property
    def needs_fit(self) -> bool:
        """True unless both PCAs are the shipped reference fit: a fit on the data at hand is not
        pinned by the description, so no index or cache may keep its vectors."""
        return self.reference is None

    def fit(self, image_features: np.ndarray | None = None, texts: Sequence[str] | None = None) -> PreClipEncoder:
        """Fit either PCA explicitly (else each is fitted on the first data it encodes)."""
        if image_features is not None:
            self.image_pca = fit_pca(image_features, self.dim)
            self.reference = None
        if texts is not None:
            self.text_pca = fit_pca(self.texts.encode(texts), self.dim)
            self.reference = None
        return self

    def unfitted(self) -> PreClipEncoder:
        """A shallow copy sharing the towers, with both PCAs cleared (each dataset fits its own)."""
        fresh = copy.copy(self)
        fresh.image_pca = fresh.text_pca = fresh.reference = None
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
            "pca_fitted_on": self.reference.label if self.reference is not None else DATA_FIT,
        }
