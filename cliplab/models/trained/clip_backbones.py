"""Backbones from a Hugging Face CLIPModel (`clip:<folder or hub id>`): both sides of one source
share a single model (`SharedCLIP`), rebuilt from a checkpoint's clip/ assets when trained."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from cliplab.models.trained.backbones import _Backbone, _freeze_all_but, _last, _Named


class _CLIPSide(_Backbone):
    """One side of a Hugging Face CLIPModel; both sides of one source share a single model."""

    kind = "clip"
    weights_key = "clip"

    def __init__(self, shared: SharedCLIP, train_last: int):
        self.shared, self.train_last = shared, int(train_last)
        self.spec = f"clip:{shared.source}"
        self.module = shared.encoder.clip
        self.dim = int(self.module.config.projection_dim)
        shared.trainable.extend(self._parts())
        _freeze_all_but(self.module, shared.trainable)
        shared.sides.append(self)

    @property
    def store_weights(self) -> bool:
        return any(s.train_last != 0 for s in self.shared.sides)

    def record(self) -> dict:
        return {**super().record(), "source": self.shared.source}

    def save_assets(self, out: Path) -> None:
        if self.store_weights:
            self.shared.save_assets(out / "clip")


class CLIPImageBackbone(_CLIPSide):
    batch_size = 32

    def __init__(self, shared, train_last: int = 0):
        super().__init__(shared, train_last)
        self.feature_dims = {"pooled": self.dim}
        self.preprocess = shared.encoder._preprocess
        self.id = f"{self.spec}|{shared.stamp}|{self.preprocess!r}"

    def _parts(self) -> list:
        m = self.module
        if self.train_last < 0:
            return [m.vision_model, m.visual_projection]
        layers = _last(m.vision_model.encoder.layers, self.train_last)
        return layers + ([m.vision_model.post_layernorm, m.visual_projection] if layers else [])

    def forward(self, x: torch.Tensor) -> dict:
        out = self.module.vision_model(pixel_values=x)
        return {"pooled": self.module.visual_projection(out.pooler_output)}

    def fingerprint(self) -> str:
        return self.shared.encoder.model.image.fingerprint()

    def graph(self) -> torch.nn.Module:
        return _Named(self.shared.encoder.model.image.torch_module(), "pooled")

    def feature_map(self, batch, layer):
        return self.shared.encoder.model.image.feature_map(batch, layer)

    def feature_channels(self, layer) -> int:
        return self.shared.encoder.model.image.feature_channels(layer)

    def run(self, batch: np.ndarray) -> dict:
        with torch.inference_mode():
            return self.forward(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))


class CLIPTextBackbone(_CLIPSide):
    def __init__(self, shared, train_last: int = 0):
        super().__init__(shared, train_last)
        self.feature_dims = {"text": self.dim}
        self.id = f"{self.spec}|{shared.stamp}"

    def _parts(self) -> list:
        m = self.module
        if self.train_last < 0:
            return [m.text_model, m.text_projection]
        layers = _last(m.text_model.encoder.layers, self.train_last)
        return layers + ([m.text_model.final_layer_norm, m.text_projection] if layers else [])

    def forward(self, texts: Sequence[str]) -> dict:
        enc = self.shared.encoder
        tok = enc.tokenizer(
            [str(t) for t in texts], padding=True, truncation=True, max_length=enc.max_length, return_tensors="pt"
        )
        out = self.module.text_model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"])
        return {"text": F.normalize(self.module.text_projection(out.pooler_output), dim=-1)}

    def run(self, texts: Sequence[str]) -> dict:
        with torch.inference_mode():
            return self.forward(texts)

    def fingerprint(self) -> str:
        return self.shared.encoder.model.text.fingerprint()

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return self.shared.encoder.model.text.tokenize(texts)

    def runtime_config(self) -> dict:
        return self.shared.encoder.model.text.runtime_config()

    def graph(self) -> torch.nn.Module:
        return _Named(self.shared.encoder.model.text.torch_module(), "text")


class SharedCLIP:
    """A CLIPModel from its source, or (stored=True) rebuilt from a checkpoint's clip/ assets."""

    def __init__(self, source: str, assets: Path | None = None):
        from cliplab.models.backends.clip_hf import HFCLIPEncoder, load_clip

        self.source, self.sides, self.trainable = source, [], []
        if assets is not None:  # architecture + tokenizer here; the weights come from model.safetensors
            from transformers import CLIPConfig, CLIPModel, CLIPTokenizerFast

            from cliplab.models.core.quiet import quiet as _quiet

            with _quiet():
                model = CLIPModel(CLIPConfig.from_pretrained(assets))
                tok = CLIPTokenizerFast.from_pretrained(assets)
            self.encoder = HFCLIPEncoder(model, tok, name=source, source_dir=assets)
            self.stamp = "checkpoint"
        else:
            p = Path(source).expanduser()
            self.encoder = load_clip(str(p.resolve()) if p.is_dir() else source)
            files = [f for f in (p / "model.safetensors", p / "pytorch_model.bin", p / "config.json") if f.is_file()]
            # Rebuilding a folder in place must not reuse features cached for its old weights.
            self.stamp = ",".join(f"{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)
        self.encoder.clip.eval()

    def save_assets(self, out: Path) -> None:
        if (out / "config.json").is_file():
            return
        out.mkdir(parents=True, exist_ok=True)
        self.encoder.clip.config.save_pretrained(out)
        self.encoder.tokenizer.save_pretrained(out)
        src = Path(self.source).expanduser() / "preprocessor_config.json"
        if src.is_file():
            shutil.copyfile(src, out / "preprocessor_config.json")
