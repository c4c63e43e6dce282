"""The cliplab checkpoint: a folder that `load_encoder(folder)` turns back into an Encoder.

    cliplab.json        format, tower specs, head configs, dim, logit_scale (+ training record)
    model.safetensors   head weights, the learned temperature, and tower weights only where the
                        towers were trained or randomly initialised (pretrained frozen towers come
                        from their installed packages, so a heads-only checkpoint stays small)
    clip/               config + tokenizer of a trained CLIP tower (its weights are in model.safetensors)
    metrics.jsonl, metrics.png, train_state.pt   written by training; loading ignores them

Loading needs only this module, the towers and the heads, never the training code.
"""
from __future__ import annotations

import copy
import functools
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from cliplab.errors import ModelNotFoundError
from cliplab.models.base import Encoder, short_digest
from cliplab.models.heads import DualHeads, ImageSide, TextSide

FORMAT = "cliplab.checkpoint"
VERSION = 1
CONFIG_FILE = "cliplab.json"
WEIGHTS_FILE = "model.safetensors"
_UMASK = os.umask(0o022)  # read once at import (setting it is process-wide, not thread-safe)
os.umask(_UMASK)


class TrainedEncoder(Encoder):
    """Towers + trained heads. Also the object training optimises (`heads`, `image_tower.module`, ...)."""

    def __init__(self, image_tower, text_tower, heads: DualHeads, config: dict, name: str = "trained"):
        self.image_tower = image_tower
        self.text_tower = text_tower
        self.heads = heads.eval()
        self.config = config
        self.name = name
        self.dim = heads.dim
        self.image_batch_size = image_tower.batch_size
        self.weights_file: Path | None = None  # set when loaded from a checkpoint folder
        self._weights_digest: str | None = None
        self.refresh_scale()

    def refresh_scale(self) -> None:
        self.logit_scale = float(self.heads.scale().detach())

    # --- Encoder interface ---------------------------------------------------------------------
    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self.image_tower.preprocess(image)

    def encode_image_batch(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            feats = self.image_tower.run(batch)
            return self.heads.encode_image(feats).float().numpy()

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        parts = []
        with torch.inference_mode():
            for i in range(0, len(texts), 256):
                feats = self.text_tower.run(texts[i:i + 256])
                parts.append(self.heads.encode_text(feats).float().numpy())
        return np.concatenate(parts)

    def describe(self) -> dict:
        out = {**super().describe(), "image_tower": self.image_tower.spec, "text_tower": self.text_tower.spec,
               "image_head": self.config["image_side"]["head"]["kind"],
               "text_head": self.config["text_side"]["head"]["kind"],
               "preprocess": short_digest(self.image_tower.id)}
        if self.weights_file is not None:  # a loaded checkpoint: retrained weights → another identity
            if self._weights_digest is None:
                self._weights_digest = short_digest(Path(self.weights_file).read_bytes())
            out["weights"] = self._weights_digest
        return out

    # --- what a checkpoint stores --------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Heads + the towers that are not reproducible from their packages."""
        sd = {f"heads.{k}": v for k, v in self.heads.state_dict().items()}
        for prefix, tower in self._stored_towers():
            sd.update({f"{prefix}.{k}": v for k, v in tower.module.state_dict().items()})
        return {k: v.detach().contiguous().clone() for k, v in sd.items()}

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        self.heads.load_state_dict(_strip(sd, "heads."))
        for prefix, tower in self._stored_towers():
            tower.module.load_state_dict(_strip(sd, prefix + "."))
            tower.changed()
        self.refresh_scale()

    def _stored_towers(self):
        seen = set()
        for side, tower in (("image", self.image_tower), ("text", self.text_tower)):
            if tower.store_weights and id(tower.module) not in seen:
                seen.add(id(tower.module))
                yield tower.weights_key or f"{side}_tower", tower


def _strip(sd: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


# --- towers as training and checkpoints see them ----------------------------------------------
# A tower spec is a string: efficientnet-lite0|1|2, minilm, clip:<folder or hub id>; ":random"
# (efficientnet/minilm) starts from random weights. `train_last`: 0 frozen, N last blocks, -1 all.
# Every tower: preprocess (images), run (inference, dict of tensors), forward (with autograd),
# `module` (the torch module whose weights a checkpoint stores when `store_weights`).

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
    raise ModelNotFoundError(f"unknown {side} tower {spec!r} (have: {have}, clip:<folder or hub id>; "
                             "add ':random' for random initial weights)")


def _freeze_all_but(module: torch.nn.Module, trainable: list) -> None:
    module.requires_grad_(False)
    for m in trainable:
        m.requires_grad_(True)


def _last(layers, n: int) -> list:
    return list(layers)[-n:] if n > 0 else []


class _Tower:
    kind = ""
    spec = ""
    module = None
    store_weights = False
    weights_key = None
    train_last = 0
    random_init = False

    def record(self) -> dict:
        return {"spec": self.spec, "train_last": self.train_last, "random_init": self.random_init,
                "stored": self.store_weights}

    def save_assets(self, out: Path) -> None:
        pass

    def changed(self) -> None:
        pass

    def parameters(self) -> list:
        return [p for p in self.module.parameters() if p.requires_grad] if self.module is not None else []


class EfficientNetTower(_Tower):
    """EfficientNet-Lite: {"pooled": (N, 1280), "logits": (N, 1000) ImageNet}."""
    kind = "efficientnet"
    batch_size = 16  # small batches stay in cache: faster on a CPU for this CNN
    feature_dims = {"pooled": 1280, "logits": 1000}

    def __init__(self, variant: str, random_init: bool = False, train_last: int = 0, seed: int = 0):
        from cliplab.models.towers import EFFICIENTNET_SIZES, efficientnet_preprocess

        self.variant, self.random_init, self.train_last = variant, bool(random_init), int(train_last)
        self.spec = f"efficientnet-{variant}" + (":random" if random_init else "")
        size = EFFICIENTNET_SIZES[variant]
        self.preprocess = efficientnet_preprocess(size)
        self.store_weights = self.random_init or self.train_last != 0
        self._base = None
        if self.random_init:
            from efficientnet_lite_pytorch import EfficientNet

            from cliplab.models.towers import _quiet

            with torch.random.fork_rng(devices=[]), _quiet():
                torch.manual_seed(seed)
                self.module = EfficientNet.from_name(f"efficientnet-{variant}").eval()
        else:
            from cliplab.models.towers import image_tower

            self._base = image_tower(variant)  # shared per process; never modified
            if self.store_weights:  # fine-tuned: a private copy
                self.module = copy.deepcopy(self._base.net).eval()
        if self.module is not None:
            net = self.module
            n = len(net._blocks) + 1 if self.train_last < 0 else self.train_last
            parts = [net] if self.train_last < 0 else _last(net._blocks, n) + ([net._conv_head, net._bn1] if n else [])
            _freeze_all_but(net, parts)
        self.id = f"{self.spec}|{self.preprocess!r}"

    def forward(self, x: torch.Tensor) -> dict:
        net = self.module if self.module is not None else self._base.net
        pooled = net.extract_features(x).mean(dim=(2, 3))
        return {"pooled": pooled, "logits": net._fc(pooled)}

    def run(self, batch: np.ndarray) -> dict:
        if self.module is None:  # the base tower's traced, BatchNorm-folded graph: fastest on CPU
            pooled, logits = self._base.run(batch)
            return {"pooled": torch.from_numpy(pooled), "logits": torch.from_numpy(logits)}
        with torch.inference_mode():
            return self.forward(torch.from_numpy(np.ascontiguousarray(batch)))


class MiniLMTower(_Tower):
    """all-MiniLM-L6-v2 sentence embeddings: {"text": (N, 384)}, unit length."""
    kind = "minilm"
    dim = 384
    feature_dims = {"text": 384}

    def __init__(self, random_init: bool = False, train_last: int = 0, seed: int = 0):
        from cliplab.models.towers import text_tower

        self.random_init, self.train_last = bool(random_init), int(train_last)
        self.spec = "minilm" + (":random" if random_init else "")
        self._base = text_tower()
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

    def run(self, texts: Sequence[str]) -> dict:
        if self.module is None:
            return {"text": torch.from_numpy(self._base.encode(list(texts)))}
        with torch.inference_mode():
            return self.forward(texts)

    def class_prompt_embeddings(self) -> np.ndarray:
        """ImageNet class prompts in this tower's space (what ConSE averages)."""
        from cliplab.models.conse import CLASS_TEMPLATE
        from cliplab.models.imagenet import imagenet_classnames

        if self.module is None:  # the frozen package model: same answer every time, so compute once
            return _frozen_class_prompts().copy()
        prompts = [CLASS_TEMPLATE.format(c) for c in imagenet_classnames()]
        return torch.cat([self.run(prompts[i:i + 256])["text"] for i in range(0, len(prompts), 256)]).numpy()


@functools.lru_cache(maxsize=1)
def _frozen_class_prompts() -> np.ndarray:
    from cliplab.models.conse import CLASS_TEMPLATE
    from cliplab.models.imagenet import imagenet_classnames
    from cliplab.models.towers import text_tower

    return text_tower().encode([CLASS_TEMPLATE.format(c) for c in imagenet_classnames()])


class _CLIPSide(_Tower):
    """One side of a Hugging Face CLIPModel; both sides of one source share a single model."""
    kind = "clip"
    weights_key = "clip"

    def __init__(self, shared: "_SharedCLIP", train_last: int):
        self.shared, self.train_last = shared, int(train_last)
        self.spec = f"clip:{shared.source}"
        self.module = shared.encoder.model
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


class CLIPImageTower(_CLIPSide):
    batch_size = 32

    def __init__(self, shared, train_last: int = 0):
        super().__init__(shared, train_last)
        self.feature_dims = {"pooled": self.dim}
        self.preprocess = shared.encoder.preprocess
        self.id = f"{self.spec}|{shared.stamp}|{getattr(shared.encoder, '_preprocess', '')!r}"

    def _parts(self) -> list:
        m = self.module
        if self.train_last < 0:
            return [m.vision_model, m.visual_projection]
        layers = _last(m.vision_model.encoder.layers, self.train_last)
        return layers + ([m.vision_model.post_layernorm, m.visual_projection] if layers else [])

    def forward(self, x: torch.Tensor) -> dict:
        out = self.module.vision_model(pixel_values=x)
        return {"pooled": self.module.visual_projection(out.pooler_output)}

    def run(self, batch: np.ndarray) -> dict:
        with torch.inference_mode():
            return self.forward(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))


class CLIPTextTower(_CLIPSide):
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
        tok = enc.tokenizer([str(t) for t in texts], padding=True, truncation=True,
                            max_length=enc.max_length, return_tensors="pt")
        out = self.module.text_model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"])
        return {"text": F.normalize(self.module.text_projection(out.pooler_output), dim=-1)}

    def run(self, texts: Sequence[str]) -> dict:
        with torch.inference_mode():
            return self.forward(texts)


class _SharedCLIP:
    """A CLIPModel from its source, or (stored=True) rebuilt from a checkpoint's clip/ assets."""

    def __init__(self, source: str, assets: Path | None = None):
        from cliplab.models.clip_hf import HFCLIPEncoder, load_clip

        self.source, self.sides, self.trainable = source, [], []
        if assets is not None:  # architecture + tokenizer here; the weights come from model.safetensors
            from transformers import CLIPConfig, CLIPModel, CLIPTokenizerFast

            from cliplab.models.towers import _quiet

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
        self.encoder.model.eval()

    def save_assets(self, out: Path) -> None:
        if (out / "config.json").is_file():
            return
        out.mkdir(parents=True, exist_ok=True)
        self.encoder.model.config.save_pretrained(out)
        self.encoder.tokenizer.save_pretrained(out)
        src = Path(self.source).expanduser() / "preprocessor_config.json"
        if src.is_file():
            shutil.copyfile(src, out / "preprocessor_config.json")


def build_towers(image_cfg: dict, text_cfg: dict, source_dir: Path | None = None, seed: int = 0):
    """Tower configs ({"spec", "train_last", "stored"}) → (image tower, text tower)."""
    shared: dict[str, _SharedCLIP] = {}

    def clip(source: str, stored: bool) -> _SharedCLIP:
        if source not in shared:
            assets = source_dir / "clip" if stored and source_dir is not None else None
            if assets is not None and not (assets / "config.json").is_file():
                raise ModelNotFoundError(f"{source_dir}: trained CLIP tower assets (clip/config.json) are missing")
            shared[source] = _SharedCLIP(source, assets)
        return shared[source]

    towers = []
    for side, cfg in (("image", image_cfg), ("text", text_cfg)):
        kind, name, random_init = parse_tower_spec(cfg["spec"], side)
        random_init = random_init or bool(cfg.get("random_init"))
        last = int(cfg.get("train_last", 0))
        stored = bool(cfg.get("stored", False))
        if kind == "efficientnet":
            towers.append(EfficientNetTower(name, random_init, last, seed))
        elif kind == "minilm":
            towers.append(MiniLMTower(random_init, last, seed))
        else:
            cls = CLIPImageTower if side == "image" else CLIPTextTower
            towers.append(cls(clip(cfg.get("source", name), stored), last))
    return towers[0], towers[1]


# --- building -------------------------------------------------------------------------------
def build_encoder(config: dict, source_dir: Path | None = None, name: str = "trained", seed: int = 0,
                  init_class_emb: bool = True, towers: tuple | None = None) -> TrainedEncoder:
    """Towers + freshly initialised heads from a checkpoint config (training starts here too)."""
    image_tower, text_tower = towers or build_towers(config["image_tower"], config["text_tower"], source_dir, seed)
    img, txt = config["image_side"], config["text_side"]
    conse_dim = text_tower.dim if hasattr(text_tower, "class_prompt_embeddings") else 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        image = ImageSide(img["inputs"], image_tower.feature_dims, img["head"], img.get("conse_top_t", 10),
                          conse_dim, img.get("conse_skip", False), img.get("normalize_inputs", True))
        text = TextSide(txt["head"])
        heads = DualHeads(image, text, float(config.get("init_logit_scale", 1 / 0.07)))
    if init_class_emb and hasattr(image, "class_emb"):  # ConSE class prompts in the text tower's space
        image.class_emb.copy_(torch.from_numpy(text_tower.class_prompt_embeddings()))
    return TrainedEncoder(image_tower, text_tower, heads, config, name=name)


# --- writing --------------------------------------------------------------------------------
def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename over the target (never half-written)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def save_checkpoint(encoder: TrainedEncoder, out_dir: str | Path, extra: dict | None = None) -> Path:
    """Write weights first and the config last: a folder with `cliplab.json` is always complete."""
    from safetensors.torch import save as st_save

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for tower in (encoder.image_tower, encoder.text_tower):
        tower.save_assets(out)
    encoder.refresh_scale()
    atomic_write_bytes(out / WEIGHTS_FILE, st_save(encoder.state_dict(), metadata={"format": FORMAT}))
    cfg = {"format": FORMAT, "version": VERSION, **encoder.config, "dim": encoder.dim,
           "logit_scale": encoder.logit_scale, "weights": WEIGHTS_FILE,
           "image_tower": encoder.image_tower.record(), "text_tower": encoder.text_tower.record(),
           **(extra or {})}
    atomic_write_json(out / CONFIG_FILE, cfg)
    return out


# --- reading --------------------------------------------------------------------------------
def read_config(path: str | Path) -> dict:
    p = Path(path)
    f = p / CONFIG_FILE
    try:
        cfg = json.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelNotFoundError(f"{p}: not a cliplab checkpoint (no {CONFIG_FILE})") from None
    except (OSError, ValueError) as e:
        raise ModelNotFoundError(f"{f}: unreadable checkpoint config ({e})") from None
    if cfg.get("format") != FORMAT:
        raise ModelNotFoundError(f"{f}: not a cliplab checkpoint config (format {cfg.get('format')!r})")
    if int(cfg.get("version", 0)) > VERSION:
        raise ModelNotFoundError(f"{f}: checkpoint version {cfg['version']} is newer than this cliplab "
                                 f"understands ({VERSION}); upgrade cliplab")
    return cfg


def load_checkpoint(path: str | Path) -> TrainedEncoder:
    """A checkpoint folder → TrainedEncoder (the best weights training kept)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path).expanduser()
    cfg = read_config(p)
    weights = p / cfg.get("weights", WEIGHTS_FILE)
    if not weights.is_file():
        raise ModelNotFoundError(f"{p}: checkpoint weights {weights.name} are missing")
    try:
        enc = build_encoder(cfg, source_dir=p, name=str(path), init_class_emb=False)
        sd = load_file(str(weights))
        enc.load_state_dict(sd)
        enc.weights_file = weights
    except (SafetensorError, RuntimeError, KeyError) as e:
        msg = " ".join(str(e).split())[:300]
        raise ModelNotFoundError(f"{p}: checkpoint weights do not fit its config ({msg})") from None
    return enc
