"""Intermediate-layer image features: a chosen layer's (C, H, W) map, pooled into one vector.

- CNN towers (lite, conse, preclip, trained EfficientNet checkpoints): `layer` is an index into the
  EfficientNet's `_blocks` (negative counts from the end), "stem" (after the first conv) or "head"
  (the final 1×1 conv map that the tower average-pools into its 1280-d features).
- CLIP ViT (HFCLIPEncoder, trained CLIP checkpoints): `layer` is a transformer block (its output
  hidden state), "stem" (patch embeddings) or "head" (the last block); the CLS token is dropped and
  the patch tokens are laid out on their (C, H, W) grid.
Maps are pooled by `cliplab.analysis.pooling` (avg/gap, mac, gem, rmac; L2-normalised) and,
optionally, PCA-reduced with a PCA fitted on all the images of the run (then L2 again).

`FeatureExtractor` is an Encoder, so the embedding pipeline (threads, skip-and-report bad files,
progress) runs it unchanged; once fitted, its PCA is reused for later calls (queries vs database).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from cliplab.analysis import pooling as _pool
from cliplab.errors import CliplabError
from cliplab.models.base import Encoder, l2_normalize
from cliplab.pipeline import EmbedResult, embed_images

POOLINGS = ("avg", "gem", "mac", "rmac")
_ALIASES = {"avg": "gap", "global": "gap", "gap": "gap", "mean": "gap", "mac": "mac", "max": "mac",
            "gem": "gem", "rmac": "rmac", "r-mac": "rmac"}


def parse_layer(layer) -> int | str:
    """'head' | 'stem' | an int (or its string) → the layer key used below."""
    if isinstance(layer, (int, np.integer)):
        return int(layer)
    s = str(layer).strip().lower()
    if s in ("head", "last", "final"):
        return "head"
    if s in ("stem", "embeddings"):
        return "stem"
    try:
        return int(s)
    except ValueError:
        raise CliplabError(f"layer must be a block index (e.g. 3 or -2), 'stem' or 'head', not {layer!r}") from None


def _pooling_name(name: str) -> str:
    key = _ALIASES.get(str(name).lower())
    if key is None:
        raise CliplabError(f"unknown pooling {name!r}: use {', '.join(POOLINGS)}")
    return key


def find_backbone(encoder) -> tuple[str, object]:
    """('cnn', EfficientNet) or ('vit', CLIPModel / CLIPVisionModel) behind an encoder."""
    holders = [encoder] + [getattr(encoder, a, None) for a in ("images", "image_tower", "tower")]
    for h in holders:
        if h is None:
            continue
        base = getattr(h, "_base", None)
        for m in (h, getattr(h, "net", None), getattr(h, "module", None), getattr(h, "model", None),
                  getattr(base, "net", None)):
            if m is None:
                continue
            if hasattr(m, "_blocks") and hasattr(m, "_conv_stem"):
                return "cnn", m
            if hasattr(m, "vision_model") or type(m).__name__ == "CLIPVisionModel":
                return "vit", m
    raise CliplabError(f"model {getattr(encoder, 'name', encoder)!r} has no EfficientNet or CLIP ViT image "
                       "tower to take intermediate features from")


def _block_index(layer, n_blocks: int, what: str) -> int:
    i = layer + n_blocks if layer < 0 else layer
    if not 0 <= i < n_blocks:
        raise CliplabError(f"layer {layer} out of range: this {what} has {n_blocks} blocks "
                           f"(0..{n_blocks - 1}, or -{n_blocks}..-1), plus 'stem' and 'head'")
    return i


def cnn_feature_map(net, x: torch.Tensor, layer) -> torch.Tensor:
    """EfficientNet input (N, 3, H, W) → the chosen stage's (N, C, h, w) map (same ops as extract_features)."""
    layer = parse_layer(layer)
    h = net._swish(net._bn0(net._conv_stem(x)))
    if layer == "stem":
        return h
    n = len(net._blocks)
    last = n - 1 if layer == "head" else _block_index(layer, n, "EfficientNet")
    rate0 = net._global_params.drop_connect_rate
    for idx in range(last + 1):
        rate = rate0 * float(idx) / n if rate0 else rate0
        h = net._blocks[idx](h, drop_connect_rate=rate)
    if layer == "head":
        h = net._swish(net._bn1(net._conv_head(h)))
    return h


def vit_feature_map(model, x: torch.Tensor, layer) -> torch.Tensor:
    """CLIP pixel values → the chosen block's patch tokens as an (N, C, g, g) grid (CLS dropped)."""
    layer = parse_layer(layer)
    vision = getattr(model, "vision_model", model)
    n = int(vision.config.num_hidden_layers)
    idx = 0 if layer == "stem" else n if layer == "head" else _block_index(layer, n, "ViT") + 1
    out = vision(pixel_values=x, output_hidden_states=True)
    tokens = out.hidden_states[idx][:, 1:, :]  # hidden_states[0] = embeddings, [i + 1] = block i
    g = int(round(tokens.shape[1] ** 0.5))
    if g * g != tokens.shape[1]:
        raise CliplabError(f"{tokens.shape[1]} patch tokens do not form a square grid")
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], g, g)


class FeatureExtractor(Encoder):
    """Pooled intermediate-layer features of another encoder's image tower, as an image-only Encoder."""

    needs_fit = False

    def __init__(self, encoder: Encoder, layer="head", pooling: str = "gem", pca=None,
                 whiten: bool = False, gem_p: float = 3.0):
        self.base = encoder
        self.kind, self.backbone = find_backbone(encoder)
        self.layer = parse_layer(layer)
        self.pooling = _pooling_name(pooling)
        self.gem_p = float(gem_p)
        self.whiten = bool(whiten)
        self.pca_dim = pca if isinstance(pca, (int, np.integer)) or pca is None else None
        self.pca = None if self.pca_dim is not None or pca is None else pca  # an already fitted PCA
        if self.pca_dim is not None and int(self.pca_dim) < 1:
            raise CliplabError(f"--pca must be >= 1, got {pca}")
        self.name = f"{encoder.name}@{self.layer}:{self.pooling}"
        self.image_batch_size = encoder.image_batch_size
        self.channels = self._probe_channels()
        self.dim = self.channels if self.pca is None and self.pca_dim is None else \
            int(self.pca.n_components_ if self.pca is not None else min(self.pca_dim, self.channels))

    def _probe_channels(self) -> int:
        if self.kind == "cnn":
            net = self.backbone
            if self.layer == "stem":
                return int(net._bn0.num_features)
            if self.layer == "head":
                return int(net._bn1.num_features)
            blk = net._blocks[_block_index(self.layer, len(net._blocks), "EfficientNet")]
            return int(blk._bn2.num_features)
        vision = getattr(self.backbone, "vision_model", self.backbone)
        n = int(vision.config.num_hidden_layers)
        if isinstance(self.layer, int):
            _block_index(self.layer, n, "ViT")
        return int(vision.config.hidden_size)

    def preprocess(self, image):
        return self.base.preprocess(image)

    def feature_map(self, batch: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        with torch.inference_mode():
            if self.kind == "cnn":
                return cnn_feature_map(self.backbone, x, self.layer).float()
            return vit_feature_map(self.backbone, x, self.layer).float()

    def encode_image_batch(self, batch: np.ndarray) -> np.ndarray:
        fmap = self.feature_map(batch)
        kw = {"p": self.gem_p} if self.pooling == "gem" else {}
        return _pool.pool(fmap, self.pooling, **kw).numpy().astype(np.float32)

    def finish_images(self, features: np.ndarray) -> np.ndarray:
        if len(features) == 0:
            return np.zeros((0, self.dim), np.float32)
        if self.pca is None and self.pca_dim is not None:
            self.pca = _pool.fit_pca_whitening(features, int(self.pca_dim), whiten=self.whiten)
            self.dim = int(self.pca.n_components_)
        if self.pca is not None:
            return _pool.pca_whiten(features, self.pca)
        return l2_normalize(features)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise CliplabError("intermediate-layer features are image-only")

    def describe(self) -> dict:
        return {"model": self.name, "dim": self.dim, "base_model": self.base.describe(),
                "backbone": "efficientnet" if self.kind == "cnn" else "clip-vit", "layer": self.layer,
                "pooling": self.pooling, **({"gem_p": self.gem_p} if self.pooling == "gem" else {}),
                "channels": self.channels, "pca": None if self.pca is None else int(self.pca.n_components_),
                "whiten": self.whiten if self.pca is not None else None}


def extract_features(encoder: Encoder, paths: Sequence[str], layer="head", pooling: str = "gem",
                     pca=None, whiten: bool = False, gem_p: float = 3.0, batch_size: int | None = None,
                     progress: bool = False) -> tuple[np.ndarray, EmbedResult]:
    """Pooled (optionally PCA-reduced) layer features of `paths`.

    Returns (features (n_ok, dim) float32, the EmbedResult whose `vectors` they are: per-input status,
    errors and rows, as from `embed_images`). `pca` is a target dimension (fitted on these images)
    or an already fitted sklearn PCA (e.g. the database's, for queries).
    """
    fx = encoder if isinstance(encoder, FeatureExtractor) else \
        FeatureExtractor(encoder, layer, pooling, pca=pca, whiten=whiten, gem_p=gem_p)
    res = embed_images(fx, list(paths), batch_size=batch_size, progress=progress)
    res.model = fx.describe()
    return res.vectors, res


def write_features(out, result: EmbedResult) -> dict:
    """features.npy (rows = readable images, in input order) + features_metadata.csv (every input;
    `row` points into the array, -1 when failed) + features_manifest.json, like `embed` output."""
    from pathlib import Path

    from cliplab import export

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    export.save_npy(out / "features.npy", result.vectors.astype(np.float32))
    export.save_csv(out / "features_metadata.csv", export.image_metadata(result))
    files = ["features.npy", "features_metadata.csv"]
    return export.write_manifest(out, "features", result.model, result.n_ok,  # same manifest as embed's
                            {"failed": len(result.failures), "files": files})
