"""Towers: the unit every runtime, the server, the Ray actors and feature extraction talk to.

A tower is one side of a model: images → vectors or texts → vectors. It knows how to
- `preprocess` one PIL image into a model input (image towers; numpy only, thread-safe),
- `tokenize` strings into integer arrays (text towers; numpy out),
- `encode` a batch (preprocessed images or strings) into (N, D) float32 vectors with torch,
- name itself by a `fingerprint` (weights + preprocessing + architecture), the same in every
  process and every runtime, so a cache or an index can trust it,
- give the torch module and example inputs that the runtime's ONNX export traces, so it can run the
  same computation elsewhere (ONNX Runtime fp32/int8, another device).

A model is an image tower + a text tower + metadata (`Model`); `TowerEncoder` presents a model
through the `Encoder` interface the rest of the library uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
from PIL import Image

from cliplab.errors import CliplabError
from cliplab.models.core.base import Encoder, l2_normalize


class Tower:
    """Base class of all towers. Subclasses set `modality`, `name`, `dim` and implement the rest."""

    modality: str = ""  # "image" | "text"
    name: str = ""  # human-readable, e.g. "efficientnet-lite0+linear"
    dim: int = 0  # size of `encode`'s output
    batch_size: int = 32  # a good default batch on a CPU
    output_name: str = "embedding"  # ONNX output name (text graphs need a name no layer uses)

    # --- identity -------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """Hex digest of everything that changes the output: weights, preprocessing, architecture."""
        raise NotImplementedError

    # --- inputs ---------------------------------------------------------------------------------
    def preprocess(self, image: Image.Image) -> np.ndarray:
        """Image towers: one PIL image → (C, H, W) float32. Thread-safe, no torch."""
        raise TypeError(f"{type(self).__name__} is not an image tower")

    def preprocess_into(self, image: Image.Image, out: np.ndarray) -> None:
        """`preprocess` written into `out` (a row of a preallocated batch). Towers whose transform
        can write in place override this to skip the copy."""
        out[...] = self.preprocess(image)

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Text towers: strings → named int64 arrays (input_ids, attention_mask, ...), padded."""
        raise TypeError(f"{type(self).__name__} is not a text tower")

    # --- compute (torch) ------------------------------------------------------------------------
    def encode(self, batch: Any) -> np.ndarray:
        """Image towers: stacked `preprocess` outputs; text towers: strings. → (N, dim) float32."""
        raise NotImplementedError

    def torch_module(self):
        """The torch.nn.Module whose forward(*example_inputs()) returns (N, dim): what ONNX traces."""
        raise NotImplementedError

    def example_inputs(self, n: int = 2) -> dict[str, np.ndarray]:
        """Named inputs of `torch_module` for tracing (a batch of n)."""
        raise NotImplementedError

    def export_module(self):
        """What ONNX export traces: `torch_module`, or the same math in a form ONNX Runtime runs
        faster. The exported graph is always checked against `torch_module`."""
        return self.torch_module()

    def onnx_fusion(self) -> dict | None:
        """Arguments for ONNX Runtime's transformer optimizer (model_type, num_heads, hidden_size)
        when this tower's graph is one it can fuse; None: leave the graph as exported."""
        return None

    def runtime_config(self) -> dict:
        """What a non-torch runtime needs besides the graph (preprocess settings, tokenizer file)."""
        return {}

    def to(self, device: str) -> Tower:
        """Run `encode` on a torch device. Towers that cannot say so (the caller keeps them on the CPU,
        or reports a one-line error when the GPU was asked for by name)."""
        if device != "cpu":
            raise CliplabError(f"{self.name} runs on the CPU only with the torch runtime")
        return self

    # --- intermediate features (image towers with a CNN or ViT inside) -----------------------
    def feature_map(self, batch: np.ndarray, layer):
        """Stacked `preprocess` outputs → the chosen layer's (N, C, h, w) torch map."""
        raise CliplabError(f"{self.name}: no EfficientNet or CLIP ViT inside to take intermediate features from")

    def feature_channels(self, layer) -> int:
        raise CliplabError(f"{self.name}: no EfficientNet or CLIP ViT inside to take intermediate features from")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


@dataclass
class Model:
    """An image tower + a text tower in one space, with what zero-shot needs."""

    image: Tower
    text: Tower
    name: str
    dim: int
    logit_scale: float = 100.0
    meta: dict = field(default_factory=dict)


def image_runtime_config(preprocess) -> dict:
    """An image tower's runtime config: its `ResizeCropNormalize` settings (numpy-only preprocessing)."""
    return {"preprocess": asdict(preprocess)}


def random_pixels(n: int, size: int) -> dict[str, np.ndarray]:
    """Example inputs for tracing an image graph: a batch of n in-range pixel tensors."""
    rng = np.random.default_rng(0)
    return {"pixel_values": rng.uniform(-1.5, 1.5, size=(n, 3, size, size)).astype(np.float32)}


EXAMPLE_TEXTS = ("a photo of a dog.", "two people walking along a sandy beach at sunset", "red car", "x")


class TowerEncoder(Encoder):
    """A `Model` (two towers) behind the `Encoder` interface the pipeline, index and eval use."""

    text_batch = 256

    def __init__(self, model: Model):
        self.model = model
        self.name = model.name
        self.dim = model.dim
        self.logit_scale = model.logit_scale
        self.image_batch_size = model.image.batch_size

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self.model.image.preprocess(image)

    def preprocess_into(self, image: Image.Image, out: np.ndarray) -> None:
        self.model.image.preprocess_into(image, out)

    def to(self, device: str) -> TowerEncoder:
        """Both towers onto a torch device (CliplabError when one of them cannot go there)."""
        self.model.image.to(device)
        self.model.text.to(device)
        return self

    def encode_image_batch(self, batch: np.ndarray) -> np.ndarray:
        return self.model.image.encode(batch)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        step = self.text_batch
        return l2_normalize(
            np.concatenate([self.model.text.encode(texts[i : i + step]) for i in range(0, len(texts), step)])
        )

    def fingerprint(self) -> str:
        from cliplab.data.digest import short_digest

        return short_digest(f"{self.model.image.fingerprint()}|{self.model.text.fingerprint()}|{self.dim}")
