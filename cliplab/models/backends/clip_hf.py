"""Hugging Face CLIP backend: a `transformers.CLIPModel` as two towers (vision, text).

Images are preprocessed with our numpy `ResizeCropNormalize` (bit-identical to CLIPImageProcessor's
PIL backend, and usable in worker threads without torch); texts go through the checkpoint's own
tokenizer. `build_random_clip` makes a randomly initialised checkpoint from a real config +
tokenizer so tests and benchmarks run without downloading weights.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from cliplab.data.digest import short_digest
from cliplab.errors import ModelNotFoundError
from cliplab.models.backends.pretrained import file_digest
from cliplab.models.core.preprocess import CLIP_MEAN, CLIP_STD, ResizeCropNormalize
from cliplab.models.core.quiet import quiet as _quiet
from cliplab.models.core.tower import EXAMPLE_TEXTS, Model, Tower, TowerEncoder, image_runtime_config, random_pixels
from cliplab.models.features.feature_maps import vit_channels, vit_feature_map
from cliplab.models.specs import hub_snapshot
from cliplab.settings import settings

TEXT_BATCH = 256
TOKENIZER_FILES = (
    "vocab.json",
    "merges.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "preprocessor_config.json",
)
_WIDTHS = {768: "B", 1024: "L", 1280: "H", 1664: "G", 512: "S"}  # vision width → ViT size letter


def _one_line(e: BaseException, limit: int = 200) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def _features(out) -> torch.Tensor:
    # transformers 5 returns BaseModelOutputWithPooling whose pooler_output is the *projected*
    # embedding ([0] would be last_hidden_state); transformers 4 returns the tensor itself.
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def _preprocess_from(path: Path, image_size: int) -> ResizeCropNormalize:
    """ResizeCropNormalize from a checkpoint's preprocessor_config.json, else CLIP defaults."""
    cfg = {}
    f = path / "preprocessor_config.json"
    if f.is_file():
        try:
            cfg = json.loads(f.read_text())
        except (OSError, ValueError):
            cfg = {}
    crop = cfg.get("crop_size", image_size)
    crop = crop if isinstance(crop, int) else crop.get("height", image_size)
    size = cfg.get("size", crop)
    if isinstance(size, dict):  # {"shortest_edge": n}; a {"height", "width"} size falls back to the crop
        size = size.get("shortest_edge", crop)
    return ResizeCropNormalize(
        shortest_edge=int(size),
        crop=int(crop),
        mean=tuple(cfg.get("image_mean", CLIP_MEAN)),
        std=tuple(cfg.get("image_std", CLIP_STD)),
        resample=int(cfg.get("resample", Image.BICUBIC)),
        rescale_factor=float(cfg.get("rescale_factor", 1 / 255)),
    )


class _ImageFeatures(torch.nn.Module):
    def __init__(self, clip):
        super().__init__()
        self.clip = clip

    def forward(self, pixel_values):
        return _features(self.clip.get_image_features(pixel_values=pixel_values))


class _TextFeatures(torch.nn.Module):
    def __init__(self, clip):
        super().__init__()
        self.clip = clip

    def forward(self, input_ids, attention_mask):
        out = self.clip.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
        return torch.nn.functional.normalize(_features(out), dim=-1)


class ClipImageTower(Tower):
    """CLIP's vision transformer + visual projection (unnormalised, like get_image_features)."""

    modality = "image"
    batch_size = 32

    def __init__(self, clip, preprocess: ResizeCropNormalize, weights):  # weights: () -> digest
        self.clip, self._preprocess, self.weights = clip, preprocess, weights
        self.dim = int(clip.config.projection_dim)
        self.name = "clip-vision"

    def fingerprint(self) -> str:
        return short_digest(f"clip-image|{self.weights()}|{self._preprocess!r}")

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self._preprocess(image)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.clip.device)
        with torch.inference_mode():
            return _features(self.clip.get_image_features(pixel_values=x)).float().cpu().numpy()

    def to(self, device: str) -> ClipImageTower:
        self.clip.to(device)  # shared with the text tower: one model, one device
        return self

    def torch_module(self):
        return _ImageFeatures(self.clip).eval()

    def export_module(self):
        from cliplab.models.backends.clip_export import VisionExport

        return VisionExport(self.clip).eval()

    def onnx_fusion(self) -> dict | None:
        from cliplab.models.backends.clip_export import vision_fusion

        return vision_fusion(self.clip)

    def example_inputs(self, n: int = 2) -> dict[str, np.ndarray]:
        return random_pixels(n, self._preprocess.crop)

    def runtime_config(self) -> dict:
        return image_runtime_config(self._preprocess)

    def feature_map(self, batch: np.ndarray, layer):
        return vit_feature_map(self.clip, batch, layer)

    def feature_channels(self, layer) -> int:
        return vit_channels(self.clip, layer)


class ClipTextTower(Tower):
    """CLIP's text transformer + text projection, through the checkpoint's own tokenizer."""

    modality = "text"
    output_name = "text_embedding"
    batch_size = TEXT_BATCH

    def __init__(self, clip, tokenizer, weights, tokenizer_file: Path | None):  # weights: () -> digest
        self.clip, self.tokenizer, self.weights, self.tokenizer_file = clip, tokenizer, weights, tokenizer_file
        self.dim = int(clip.config.projection_dim)
        self.max_length = int(getattr(clip.config.text_config, "max_position_embeddings", 77))
        self.name = "clip-text"

    def fingerprint(self) -> str:
        return short_digest(f"clip-text|{self.weights()}|{self.max_length}")

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        tok = self.tokenizer(
            [str(t) for t in texts], padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
        )
        return {k: np.asarray(tok[k], np.int64) for k in ("input_ids", "attention_mask")}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        tok = {k: torch.from_numpy(v).to(self.clip.device) for k, v in self.tokenize(texts).items()}
        with torch.inference_mode():
            out = self.clip.get_text_features(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"])
        return _features(out).float().cpu().numpy()

    def to(self, device: str) -> ClipTextTower:
        self.clip.to(device)
        return self

    def torch_module(self):
        return _TextFeatures(self.clip).eval()

    def example_inputs(self, n: int = 2) -> dict[str, np.ndarray]:
        return self.tokenize([EXAMPLE_TEXTS[i % len(EXAMPLE_TEXTS)] for i in range(n)])

    def runtime_config(self) -> dict:
        return {
            "tokenizer_file": str(self.tokenizer_file) if self.tokenizer_file else None,
            "max_length": self.max_length,
            "inputs": ["input_ids", "attention_mask"],
        }


def _weights_digest(clip, source_dir: Path | None) -> str:
    """Content digest of the checkpoint's weight files (a folder rebuilt in place is another model);
    a model built in memory hashes its tensors."""
    files = []
    if source_dir is not None:
        files = sorted(source_dir.glob("*.safetensors")) or sorted(source_dir.glob("pytorch_model*.bin"))
    if files:
        return short_digest(",".join(file_digest(f) for f in files))
    h = hashlib.blake2b(digest_size=6)
    for k, v in sorted(clip.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()


class HFCLIPEncoder(TowerEncoder):
    image_batch_size = 32

    def __init__(self, model, tokenizer, name: str, source_dir: Path | None = None):
        self.clip = model.float().eval()
        self.tokenizer = tokenizer
        cfg = model.config
        self.max_length = int(getattr(cfg.text_config, "max_position_embeddings", 77))
        self._preprocess = (
            _preprocess_from(source_dir, cfg.vision_config.image_size)
            if source_dir
            else ResizeCropNormalize(cfg.vision_config.image_size, cfg.vision_config.image_size)
        )
        self.source_dir = Path(source_dir) if source_dir else None
        self._weights: str | None = None
        tok_file = self.source_dir / "tokenizer.json" if self.source_dir else None
        super().__init__(
            Model(
                ClipImageTower(self.clip, self._preprocess, self.weights),
                ClipTextTower(
                    self.clip, tokenizer, self.weights, tok_file if tok_file and tok_file.is_file() else None
                ),
                name=name,
                dim=int(cfg.projection_dim),
                logit_scale=float(model.logit_scale.detach().exp()),
            )
        )

    def weights(self) -> str:
        """Digest of the weights, computed on first need (hashing a big model in memory is slow)."""
        if self._weights is None:
            self._weights = _weights_digest(self.clip, self.source_dir)
        return self._weights

    def describe(self) -> dict:
        v = self.clip.config.vision_config
        letter = _WIDTHS.get(v.hidden_size)
        arch = (
            f"ViT-{letter}/{v.patch_size}" if letter else f"ViT(w{v.hidden_size},d{v.num_hidden_layers})/{v.patch_size}"
        )
        return {
            **super().describe(),
            "backend": "transformers",
            "architecture": arch,
            "image_size": int(v.image_size),
            "weights": self.weights(),
        }


def _hub_cache() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _offline() -> bool:
    from huggingface_hub import constants

    return settings().hub_offline or bool(constants.HF_HUB_OFFLINE)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Fail fast without a network: huggingface_hub's own retries take ~30 s to give up."""
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if settings().proxy:
        return True  # a direct probe says nothing about a proxied connection
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _from_pretrained(src: str, **kw):
    from transformers import CLIPModel, CLIPTokenizerFast

    with _quiet():
        model = CLIPModel.from_pretrained(src, **kw)
        tokenizer = CLIPTokenizerFast.from_pretrained(src, **kw)
    return model, tokenizer


def load_clip(spec: str) -> HFCLIPEncoder:
    """A local CLIP checkpoint directory or a hub id → encoder. Errors are one-line ModelNotFoundError."""
    path = Path(spec).expanduser()
    if path.is_dir():
        cfg = path / "config.json"
        try:
            model_type = json.loads(cfg.read_text()).get("model_type", "")
        except (OSError, ValueError):
            model_type = None
        if model_type != "clip":
            what = "no config.json" if model_type is None else f"model_type {model_type!r}"
            raise ModelNotFoundError(
                f"{spec!r} is not a Hugging Face CLIP checkpoint ({what}; expected config.json with model_type 'clip')"
            )
        try:
            model, tok = _from_pretrained(str(path))
        except Exception as e:  # missing weights / tokenizer files, corrupt safetensors, ...
            raise ModelNotFoundError(f"cannot load CLIP checkpoint {spec!r}: {_one_line(e)}") from None
        return HFCLIPEncoder(model, tok, name=spec, source_dir=path)

    try:
        model, tok = _from_pretrained(spec, local_files_only=True)
    except Exception:
        if _offline():
            raise ModelNotFoundError(
                f"model {spec!r} is not available offline (not in the Hugging Face cache at {_hub_cache()}). "
                f"Get it with `cliplab models pull {spec}` (on a connected machine, then copy the cache), "
                "pass a local checkpoint directory (--model /path/to/clip) or use --model lite."
            ) from None
        try:
            if not _hub_reachable():
                raise OSError("no network connection to the Hugging Face hub")
            model, tok = _from_pretrained(spec)
        except Exception as e:
            raise ModelNotFoundError(
                f"model {spec!r} could not be loaded (not in the Hugging Face cache at {_hub_cache()}, "
                f"download failed: {_one_line(e, 120)}). "
                f"Get it with `cliplab models pull {spec}`, pass a local checkpoint directory "
                "(--model /path/to/clip) or use --model lite."
            ) from None
    return HFCLIPEncoder(model, tok, name=spec, source_dir=hub_snapshot(spec))


def build_random_clip(
    out_dir: str | Path, config_dir: str | Path | None = None, tiny: bool = True, seed: int = 0
) -> Path:
    """Save a randomly initialised CLIP (safetensors) with the real tokenizer + preprocessing.

    `tiny` shrinks both towers (fast tests); otherwise the exact shape of `config_dir`
    (ViT-B/32 for the shared config) for throughput benchmarks. Deterministic in `seed`.
    """
    from transformers import CLIPConfig, CLIPModel

    if config_dir is None:
        from cliplab.data.shared import shared_path

        config_dir = shared_path("models", "clip-vit-b32-config")
        if config_dir is None:
            raise ModelNotFoundError("CLIP config folder not found (expected ../shared/models/clip-vit-b32-config)")
    config_dir, out_dir = Path(config_dir), Path(out_dir)
    with _quiet():
        config = CLIPConfig.from_pretrained(config_dir)
        if tiny:
            config.projection_dim = 32
            for sub in (config.text_config, config.vision_config):
                sub.hidden_size, sub.intermediate_size = 32, 64
                sub.num_hidden_layers, sub.num_attention_heads = 2, 2
                sub.projection_dim = 32
        with torch.random.fork_rng(devices=[]):  # don't disturb the caller's RNG
            torch.manual_seed(seed)
            model = CLIPModel(config).eval()
        out_dir.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out_dir)
    for name in TOKENIZER_FILES:
        if (config_dir / name).is_file():
            shutil.copyfile(config_dir / name, out_dir / name)
    return out_dir
