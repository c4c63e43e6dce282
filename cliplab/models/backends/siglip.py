"""SigLIP backend: a `transformers.SiglipModel` (SigLIP, and the fixed-resolution SigLIP 2 checkpoints,
which ship as SiglipModel with a Gemma tokenizer) as two towers.

What differs from CLIP, and lives here only:
- zero-shot probabilities are sigmoid(logit_scale · cos + logit_bias) per label, not a softmax over
  labels: the encoder says so in `describe()` (`probability`, `logit_bias`), which zeroshot.py reads;
- texts are padded to the model's full length (64) as SigLIP was trained: its text tower pools the
  last position. The graph pads internally, so the ONNX runtime may pad to the longest text;
- images are resized to the square input without a crop ("squash"), as SiglipImageProcessor does.
The NaFlex `Siglip2Model` (variable-resolution patches) is not supported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from cliplab.data.digest import short_digest
from cliplab.errors import ModelNotFoundError
from cliplab.models.backends.clip_hf import _features, _one_line, _weights_digest
from cliplab.models.core.preprocess import ResizeCropNormalize
from cliplab.models.core.quiet import quiet
from cliplab.models.core.tower import EXAMPLE_TEXTS, Model, Tower, TowerEncoder, image_runtime_config, random_pixels
from cliplab.models.specs import hf_model_type, hub_snapshot


def preprocess_from(folder: Path | None, image_size: int) -> ResizeCropNormalize:
    """SiglipImageProcessor's settings (preprocessor_config.json) as a numpy transform."""
    cfg = {}
    if folder is not None and (folder / "preprocessor_config.json").is_file():
        try:
            cfg = json.loads((folder / "preprocessor_config.json").read_text())
        except (OSError, ValueError):
            cfg = {}
    size = cfg.get("size", {}).get("height", image_size) if isinstance(cfg.get("size"), dict) else image_size
    return ResizeCropNormalize(
        shortest_edge=int(size),
        crop=int(size),
        mean=tuple(float(v) for v in cfg.get("image_mean", (0.5, 0.5, 0.5))),
        std=tuple(float(v) for v in cfg.get("image_std", (0.5, 0.5, 0.5))),
        resample=int(cfg.get("resample", Image.BICUBIC)),
        rescale_factor=float(cfg.get("rescale_factor", 1 / 255)),
        resize="squash",
    )


class _ImageFeatures(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return _features(self.model.get_image_features(pixel_values=pixel_values))


class _TextFeatures(torch.nn.Module):
    """input_ids padded to the longest text → padded to the full length here → unit vectors."""

    def __init__(self, model, length: int, pad_id: int):
        super().__init__()
        self.model, self.length, self.pad_id = model, length, pad_id

    def forward(self, input_ids):
        ids = torch.cat([input_ids, input_ids.new_full((input_ids.shape[0], self.length), self.pad_id)], 1)
        out = _features(self.model.get_text_features(input_ids=ids[:, : self.length]))
        return torch.nn.functional.normalize(out, dim=-1)


class SiglipImageTower(Tower):
    modality = "image"
    batch_size = 32

    def __init__(self, model, preprocess: ResizeCropNormalize, weights):
        self.model, self._preprocess, self.weights = model, preprocess, weights
        self.dim = int(model.config.vision_config.hidden_size)
        self.name = "siglip-vision"

    def fingerprint(self) -> str:
        return short_digest(f"siglip-image|{self.weights()}|{image_runtime_config(self._preprocess)}")

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self._preprocess(image)

    def preprocess_into(self, image: Image.Image, out: np.ndarray) -> None:
        self._preprocess(image, out=out)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.model.device)
        with torch.inference_mode():
            return _features(self.model.get_image_features(pixel_values=x)).float().cpu().numpy()

    def to(self, device: str) -> SiglipImageTower:
        self.model.to(device)
        return self

    def torch_module(self):
        return _ImageFeatures(self.model).eval()

    def example_inputs(self, n: int = 2) -> dict[str, np.ndarray]:
        return random_pixels(n, self._preprocess.crop)

    def runtime_config(self) -> dict:
        return image_runtime_config(self._preprocess)


class SiglipTextTower(Tower):
    modality = "text"
    output_name = "text_embedding"
    batch_size = 256

    def __init__(self, model, tokenizer, weights):
        self.model, self.hf_tok, self.weights = model, tokenizer, weights
        self._fast = tokenizer if getattr(tokenizer, "is_fast", False) else None  # a slow one is converted
        self.dim = int(model.config.text_config.hidden_size)
        self.max_length = int(model.config.text_config.max_position_embeddings)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        self.name = "siglip-text"

    def fingerprint(self) -> str:
        return short_digest(f"siglip-text|{self.weights()}|{self.max_length}")

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """As SigLIP's processor: padding="max_length", truncated to the model's length."""
        tok = self.hf_tok([str(t) for t in texts], padding="max_length", truncation=True, max_length=self.max_length)
        ids = np.asarray(tok["input_ids"], np.int64)
        return {"input_ids": ids, "attention_mask": np.ones_like(ids)}  # SigLIP's text tower takes no mask

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        ids = torch.from_numpy(self.tokenize(texts)["input_ids"]).to(self.model.device)
        with torch.inference_mode():
            return _features(self.model.get_text_features(input_ids=ids)).float().cpu().numpy()

    def to(self, device: str) -> SiglipTextTower:
        self.model.to(device)
        return self

    def torch_module(self):
        return _TextFeatures(self.model, self.max_length, self.pad_id).eval()

    def example_inputs(self, n: int = 2) -> dict[str, np.ndarray]:
        return {"input_ids": self.tokenize([EXAMPLE_TEXTS[i % len(EXAMPLE_TEXTS)] for i in range(n)])["input_ids"]}

    @property
    def tokenizer(self):
        """The fast (tokenizers) form of the tokenizer: what the ONNX runtime serialises and runs."""
        if self._fast is None:
            import tempfile

            import transformers

            fast = getattr(transformers, type(self.hf_tok).__name__ + "Fast", None)  # SiglipTokenizerFast
            if fast is not None:
                with tempfile.TemporaryDirectory() as d, quiet():
                    self.hf_tok.save_pretrained(d)
                    loaded = fast.from_pretrained(d)
                self._fast = loaded if getattr(loaded, "is_fast", False) else None  # v5 aliases the slow one
            if self._fast is None:  # SigLIP 1: only spiece.model; converted, and checked against the slow one
                from cliplab.models.backends.siglip_tokenizer import fast_siglip_tokenizer

                with quiet():
                    self._fast = fast_siglip_tokenizer(self.hf_tok)
        return self._fast

    def runtime_config(self) -> dict:
        return {"tokenizer_file": None, "max_length": self.max_length, "pad_id": self.pad_id, "inputs": ["input_ids"]}


class SiglipEncoder(TowerEncoder):
    probability = "sigmoid"

    def __init__(self, model, tokenizer, name: str, source_dir: Path | None = None):
        self.siglip = model.float().eval()
        self.source_dir = Path(source_dir) if source_dir else None
        self._weights: str | None = None
        cfg = model.config
        self.logit_bias = float(model.logit_bias.detach().reshape(-1)[0])
        pre = preprocess_from(self.source_dir, int(cfg.vision_config.image_size))
        super().__init__(
            Model(
                SiglipImageTower(self.siglip, pre, self.weights),
                SiglipTextTower(self.siglip, tokenizer, self.weights),
                name=name,
                dim=int(cfg.vision_config.hidden_size),
                logit_scale=float(model.logit_scale.detach().exp().reshape(-1)[0]),
            )
        )

    def weights(self) -> str:
        if self._weights is None:
            self._weights = _weights_digest(self.siglip, self.source_dir)
        return self._weights

    def describe(self) -> dict:
        v = self.siglip.config.vision_config
        return {
            **super().describe(),
            "backend": "transformers",
            "architecture": f"SigLIP-ViT(w{v.hidden_size},d{v.num_hidden_layers})/{v.patch_size}",
            "image_size": int(v.image_size),
            "weights": self.weights(),
            "probability": self.probability,
            "logit_bias": self.logit_bias,
        }


def _from_pretrained(src: str, **kw):
    from transformers import AutoTokenizer, SiglipModel

    with quiet():
        return SiglipModel.from_pretrained(src, **kw), AutoTokenizer.from_pretrained(src, **kw)


def load_siglip(spec: str) -> SiglipEncoder:
    """A SigLIP folder or a cached hub id → encoder (ModelNotFoundError in one line otherwise)."""
    path = Path(spec).expanduser()
    folder = path if path.is_dir() else hub_snapshot(spec)
    if folder is not None and hf_model_type(folder / "config.json") == "siglip2":
        raise ModelNotFoundError(
            f"{spec!r} is a NaFlex SigLIP 2 (Siglip2Model), which cliplab does not run; "
            "the fixed-resolution SigLIP 2 checkpoints (e.g. google/siglip2-base-patch16-224) work"
        )
    try:
        model, tok = _from_pretrained(str(path) if path.is_dir() else spec, local_files_only=True)
    except Exception as e:  # noqa: BLE001 missing files, corrupt weights, not cached
        hint = "" if path.is_dir() else f"; run `cliplab models pull {spec}` on a machine with network access"
        raise ModelNotFoundError(f"cannot load SigLIP model {spec!r}: {_one_line(e, 160)}{hint}") from None
    return SiglipEncoder(model, tok, name=spec, source_dir=folder)
