"""Backbones: the pretrained (or randomly initialised) networks that training puts heads on.

A backbone spec is a string: efficientnet-lite0|1|2, minilm, clip:<folder or hub id>; ":random"
(efficientnet/minilm) starts from random weights. `train_last`: 0 frozen, N last blocks, -1 all.
Every backbone: preprocess (images), run (inference, dict of named feature tensors), forward (with
autograd), `module` (the torch module whose weights a checkpoint stores when `store_weights`),
`id` (names its features in the training feature cache), `fingerprint()` (names its weights).
The towers a trained model runs (`checkpoint.TrainedImageTower` / `TrainedTextTower`) are a
backbone plus a head.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from cliplab.data.digest import short_digest
from cliplab.errors import ModelNotFoundError
from cliplab.models.backends.pretrained import FeaturesAndLogits


def parse_tower_spec(spec: str, side: str) -> tuple[str, str, bool]:
    """'efficientnet-lite0:random' → ('efficientnet', 'lite0', True); 'clip:DIR' → ('clip', 'DIR', False)."""
    s = str(spec).strip()
    if s.startswith("clip:"):
        return "clip", s[5:], False
    base, _, flag = s.partition(":")
    if flag not in ("", "random"):
        raise ModelNotFoundError(f"tower spec {spec!r}: only ':random' may follow the name")
    base = base.lower()
    if side == "image" and base.replace("efficientnet-", "") in ("lite0", "lite1", "lite2"):
        return "efficientnet", base.replace("efficientnet-", ""), flag == "random"
    if side == "text" and base in ("minilm", "all-minilm-l6-v2"):
        return "minilm", "all-MiniLM-L6-v2", flag == "random"
    have = "efficientnet-lite0|lite1|lite2" if side == "image" else "minilm"
    raise ModelNotFoundError(
        f"unknown {side} tower {spec!r} (have: {have}, clip:<folder or hub id>; "
        "add ':random' for random initial weights)"
    )


def _freeze_all_but(module: torch.nn.Module, trainable: list) -> None:
    module.requires_grad_(False)
    for m in trainable:
        m.requires_grad_(True)


def _last(layers, n: int) -> list:
    return list(layers)[-n:] if n > 0 else []


class _Backbone:
    kind = ""
    spec = ""
    module = None
    store_weights = False
    weights_key = None
    train_last = 0
    random_init = False

    def record(self) -> dict:
        return {
            "spec": self.spec,
            "train_last": self.train_last,
            "random_init": self.random_init,
            "stored": self.store_weights,
        }

    def save_assets(self, out: Path) -> None:
        pass

    def changed(self) -> None:
        pass

    def parameters(self) -> list:
        return [p for p in self.module.parameters() if p.requires_grad] if self.module is not None else []

    def fingerprint(self) -> str:
        """The pretrained weights this backbone starts from (stored weights are named by the
        checkpoint's own weights digest)."""
        return short_digest(self.id)

    def graph(self) -> torch.nn.Module:
        """A module from input tensors to this backbone's feature dict: what ONNX export traces."""
        raise NotImplementedError


class EfficientNetBackbone(_Backbone):
    """EfficientNet-Lite: {"pooled": (N, 1280), "logits": (N, 1000) ImageNet}."""

    kind = "efficientnet"
    batch_size = 16  # small batches stay in cache: faster on a CPU for this CNN
    feature_dims = {"pooled": 1280, "logits": 1000}

    def __init__(self, variant: str, random_init: bool = False, train_last: int = 0, seed: int = 0):
        from cliplab.models.backends.pretrained import EFFICIENTNET_SIZES, efficientnet_preprocess

        self.variant, self.random_init, self.train_last = variant, bool(random_init), int(train_last)
        self.spec = f"efficientnet-{variant}" + (":random" if random_init else "")
        size = EFFICIENTNET_SIZES[variant]
        self.preprocess = efficientnet_preprocess(size)
        self.store_weights = self.random_init or self.train_last != 0
        self._base = None
        if self.random_init:
            from efficientnet_lite_pytorch import EfficientNet

            from cliplab.models.core.quiet import quiet as _quiet

            with torch.random.fork_rng(devices=[]), _quiet():
                torch.manual_seed(seed)
                self.module = EfficientNet.from_name(f"efficientnet-{variant}").eval()
        else:
            from cliplab.models.backends.pretrained import efficientnet

            self._base = efficientnet(variant)  # shared per process; never modified
            if self.store_weights:  # fine-tuned: a private copy
                self.module = copy.deepcopy(self._base.net).eval()
        if self.module is not None:
            net = self.module
            n = len(net._blocks) + 1 if self.train_last < 0 else self.train_last
            parts = [net] if self.train_last < 0 else _last(net._blocks, n) + ([net._conv_head, net._bn1] if n else [])
            _freeze_all_but(net, parts)
        self.id = f"{self.spec}|{self.preprocess!r}"

    def forward(self, x: torch.Tensor) -> dict:
        return _Named(FeaturesAndLogits(self.net()), "pooled", "logits")(x)

    def net(self):
        return self.module if self.module is not None else self._base.net

    def fingerprint(self) -> str:
        base = self._base.fingerprint() if self._base is not None else "random"
        return short_digest(f"{self.id}|{base}")

    def graph(self) -> torch.nn.Module:
        return _Named(FeaturesAndLogits(self.net()), "pooled", "logits")

    def feature_map(self, batch, layer):
        from cliplab.models.features.feature_maps import cnn_feature_map

        return cnn_feature_map(self.net(), batch, layer)

    def feature_channels(self, layer) -> int:
        from cliplab.models.features.feature_maps import cnn_channels

        return cnn_channels(self.net(), layer)

    def run(self, batch: np.ndarray) -> dict:
        if self.module is None:  # the base tower's traced, BatchNorm-folded graph: fastest on CPU
            pooled, logits = self._base.run(batch)
            return {"pooled": torch.from_numpy(pooled), "logits": torch.from_numpy(logits)}
        with torch.inference_mode():
            return self.forward(torch.from_numpy(np.ascontiguousarray(batch)))


class MiniLMBackbone(_Backbone):
    """all-MiniLM-L6-v2 sentence embeddings: {"text": (N, 384)}, unit length."""

    kind = "minilm"
    dim = 384
    feature_dims = {"text": 384}

    def __init__(self, random_init: bool = False, train_last: int = 0, seed: int = 0):
        from cliplab.models.backends.pretrained import minilm

        self.random_init, self.train_last = bool(random_init), int(train_last)
        self.spec = "minilm" + (":random" if random_init else "")
        self._base = minilm()
        self.store_weights = self.random_init or self.train_last != 0
        if self.store_weights:
            st = copy.deepcopy(self._base.model).eval()
            if self.random_init:
                from transformers import AutoModel

                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    st[0].auto_model = AutoModel.from_config(st[0].auto_model.config).eval()
            bert = st[0].auto_model
            parts = [st] if self.train_last < 0 else _last(bert.encoder.layer, self.train_last)
            _freeze_all_but(st, parts)
            self.module = st
        self.id = self.spec

    def forward(self, texts: Sequence[str]) -> dict:
        feats = self.module.preprocess(list(texts))
        return {"text": F.normalize(self.module(feats)["sentence_embedding"], dim=-1)}

    def fingerprint(self) -> str:
        return short_digest(f"{self.id}|{'random' if self.random_init else self._base.fingerprint()}")

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return self._base.tokenize(texts)  # a fine-tuned copy keeps the package's tokenizer

    def runtime_config(self) -> dict:
        return {
            "tokenizer_file": str(self._base.tokenizer_file),
            "max_length": self._base.max_length,
            "inputs": ["input_ids", "attention_mask", "token_type_ids"],
        }

    def graph(self) -> torch.nn.Module:
        from cliplab.models.backends.pretrained import SentenceEmbedding

        return _Named(SentenceEmbedding(self.module if self.module is not None else self._base.model), "text")

    def run(self, texts: Sequence[str]) -> dict:
        if self.module is None:
            return {"text": torch.from_numpy(self._base.encode(list(texts)))}
        with torch.inference_mode():
            return self.forward(texts)

    def class_prompt_embeddings(self) -> np.ndarray:
        """ImageNet class prompts in this tower's space (what ConSE averages)."""
        from cliplab.models.backends.conse import CLASS_TEMPLATE
        from cliplab.models.core.imagenet import imagenet_classnames

        if self.module is None:  # the frozen package model: same answer every time, so compute once
            return _frozen_class_prompts().copy()
        prompts = [CLASS_TEMPLATE.format(c) for c in imagenet_classnames()]
        return torch.cat([self.run(prompts[i : i + 256])["text"] for i in range(0, len(prompts), 256)]).numpy()


@functools.lru_cache(maxsize=1)
def _frozen_class_prompts() -> np.ndarray:
    from cliplab.models.backends.conse import CLASS_TEMPLATE
    from cliplab.models.backends.pretrained import minilm
    from cliplab.models.core.imagenet import imagenet_classnames

    return minilm().encode([CLASS_TEMPLATE.format(c) for c in imagenet_classnames()])


class _Named(torch.nn.Module):
    """A module's output(s) as a feature dict: one key for one output, or one key per output."""

    def __init__(self, inner: torch.nn.Module, *keys: str):
        super().__init__()
        self.inner, self.keys = inner, keys

    def forward(self, *inputs):
        out = self.inner(*inputs)
        return {self.keys[0]: out} if len(self.keys) == 1 else dict(zip(self.keys, out))
