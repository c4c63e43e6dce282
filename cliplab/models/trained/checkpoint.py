"""The cliplab checkpoint: a folder that `load_encoder(folder)` turns back into an Encoder.

    cliplab.json        format, tower specs, head configs, dim, logit_scale (+ training record)
    model.safetensors   head weights, the learned temperature, and tower weights only where the
                        towers were trained or randomly initialised (pretrained frozen towers come
                        from their installed packages, so a heads-only checkpoint stays small)
    clip/               config + tokenizer of a trained CLIP tower (its weights are in model.safetensors)
    metrics.jsonl, metrics.png, train_state.pt   written by training; loading ignores them

Loading needs only this module, the backbones and the heads, never the training code. A trained
model runs as two towers: backbone + head on each side (`TrainedImageTower`, `TrainedTextTower`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from cliplab.data.atomic import atomic_write_bytes, atomic_write_json
from cliplab.data.digest import short_digest
from cliplab.errors import ModelNotFoundError
from cliplab.models.core.tower import EXAMPLE_TEXTS, Model, Tower, TowerEncoder, image_runtime_config, random_pixels
from cliplab.models.trained.backbones import EfficientNetBackbone, MiniLMBackbone, parse_tower_spec
from cliplab.models.trained.clip_backbones import CLIPImageBackbone, CLIPTextBackbone, SharedCLIP
from cliplab.models.trained.heads import DualHeads, ImageSide, TextSide

FORMAT = "cliplab.checkpoint"
VERSION = 1
CONFIG_FILE = "cliplab.json"
WEIGHTS_FILE = "model.safetensors"


class _HeadGraph(torch.nn.Module):
    """Backbone features → head → unit vector, as one module (what ONNX export traces)."""

    def __init__(self, backbone: torch.nn.Module, side: torch.nn.Module):
        super().__init__()
        self.backbone, self.side = backbone, side

    def forward(self, *inputs):
        return F.normalize(self.side(self.backbone(*inputs)), dim=-1)


class TrainedImageTower(Tower):
    """An image backbone + the trained image head."""

    modality = "image"

    def __init__(self, backbone, side, weights):  # weights: () -> digest of the trained weights
        self.backbone, self.side, self.weights = backbone, side, weights
        self.dim, self.batch_size = side.out_dim, backbone.batch_size
        self.name = f"{backbone.spec}+head"

    def fingerprint(self) -> str:
        return short_digest(f"trained-image|{self.backbone.fingerprint()}|{self.weights()}")

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self.backbone.preprocess(image)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return F.normalize(self.side(self.backbone.run(batch)), dim=-1).float().numpy()

    def torch_module(self):
        return _HeadGraph(self.backbone.graph(), self.side).eval()

    def example_inputs(self, n: int = 2) -> dict[str, np.ndarray]:
        return random_pixels(n, self.backbone.preprocess.crop)

    def runtime_config(self) -> dict:
        return image_runtime_config(self.backbone.preprocess)

    def feature_map(self, batch: np.ndarray, layer):
        return self.backbone.feature_map(batch, layer)

    def feature_channels(self, layer) -> int:
        return self.backbone.feature_channels(layer)


class TrainedTextTower(Tower):
    """A text backbone + the trained text head."""

    modality = "text"
    output_name = "text_embedding"
    batch_size = 256

    def __init__(self, backbone, side, weights):
        self.backbone, self.side, self.weights = backbone, side, weights
        self.dim = side.out_dim
        self.name = f"{backbone.spec}+head"

    def fingerprint(self) -> str:
        return short_digest(f"trained-text|{self.backbone.fingerprint()}|{self.weights()}")

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return self.backbone.tokenize(texts)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        with torch.inference_mode():
            return F.normalize(self.side(self.backbone.run(list(texts))), dim=-1).float().numpy()

    def torch_module(self):
        return _HeadGraph(self.backbone.graph(), self.side).eval()

    def example_inputs(self, n: int = 2) -> dict[str, np.ndarray]:
        return self.tokenize([EXAMPLE_TEXTS[i % len(EXAMPLE_TEXTS)] for i in range(n)])

    def runtime_config(self) -> dict:
        return self.backbone.runtime_config()


class TrainedEncoder(TowerEncoder):
    """Backbones + trained heads, as two towers. Also the object training optimises (`heads`,
    `image_tower.module`, ...: `image_tower` / `text_tower` are the backbones)."""

    def __init__(self, image_tower, text_tower, heads: DualHeads, config: dict, name: str = "trained"):
        self.image_tower = image_tower
        self.text_tower = text_tower
        self.heads = heads.eval()
        self.config = config
        self.weights_file: Path | None = None  # set when loaded from a checkpoint folder
        self._weights_digest: str | None = None
        super().__init__(
            Model(
                TrainedImageTower(image_tower, heads.image, self.weights_digest),
                TrainedTextTower(text_tower, heads.text, self.weights_digest),
                name=name,
                dim=heads.dim,
            )
        )
        self.refresh_scale()

    def refresh_scale(self) -> None:
        self.logit_scale = self.model.logit_scale = float(self.heads.scale().detach())

    def weights_digest(self) -> str:
        """The saved weights file's digest, or (while training) a digest of the weights in memory."""
        if self.weights_file is not None:
            if self._weights_digest is None:
                self._weights_digest = short_digest(Path(self.weights_file).read_bytes())
            return self._weights_digest
        h = hashlib.blake2b(digest_size=6)
        for k, v in sorted(self.state_dict().items()):
            h.update(k.encode())
            h.update(v.float().numpy().tobytes())
        return h.hexdigest()

    def describe(self) -> dict:
        out = {
            **super().describe(),
            "image_tower": self.image_tower.spec,
            "text_tower": self.text_tower.spec,
            "image_head": self.config["image_side"]["head"]["kind"],
            "text_head": self.config["text_side"]["head"]["kind"],
            "preprocess": short_digest(self.image_tower.id),
        }
        if self.weights_file is not None:  # a loaded checkpoint: retrained weights → another identity
            out["weights"] = self.weights_digest()
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
    return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}


# --- building -------------------------------------------------------------------------------
def build_encoder(
    config: dict,
    source_dir: Path | None = None,
    name: str = "trained",
    seed: int = 0,
    init_class_emb: bool = True,
    towers: tuple | None = None,
) -> TrainedEncoder:
    """Towers + freshly initialised heads from a checkpoint config (training starts here too)."""
    image_tower, text_tower = towers or build_towers(config["image_tower"], config["text_tower"], source_dir, seed)
    img, txt = config["image_side"], config["text_side"]
    conse_dim = text_tower.dim if hasattr(text_tower, "class_prompt_embeddings") else 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        image = ImageSide(
            img["inputs"],
            image_tower.feature_dims,
            img["head"],
            img.get("conse_top_t", 10),
            conse_dim,
            img.get("conse_skip", False),
            img.get("normalize_inputs", True),
        )
        text = TextSide(txt["head"], image_tower.feature_dims.get("logits", 1000))
        heads = DualHeads(image, text, float(config.get("init_logit_scale", 1 / 0.07)))
    if init_class_emb:  # ConSE class prompts in the text tower's space
        for side in (s for s in (image, text) if hasattr(s, "class_emb")):
            side.class_emb.copy_(torch.from_numpy(text_tower.class_prompt_embeddings()))
    return TrainedEncoder(image_tower, text_tower, heads, config, name=name)


def build_towers(image_cfg: dict, text_cfg: dict, source_dir: Path | None = None, seed: int = 0):
    """Tower configs ({"spec", "train_last", "stored"}) → (image tower, text tower)."""
    shared: dict[str, SharedCLIP] = {}

    def clip(source: str, stored: bool) -> SharedCLIP:
        if source not in shared:
            assets = source_dir / "clip" if stored and source_dir is not None else None
            if assets is not None and not (assets / "config.json").is_file():
                raise ModelNotFoundError(f"{source_dir}: trained CLIP tower assets (clip/config.json) are missing")
            shared[source] = SharedCLIP(source, assets)
        return shared[source]

    towers = []
    for side, cfg in (("image", image_cfg), ("text", text_cfg)):
        kind, name, random_init = parse_tower_spec(cfg["spec"], side)
        random_init = random_init or bool(cfg.get("random_init"))
        last = int(cfg.get("train_last", 0))
        stored = bool(cfg.get("stored", False))
        if kind == "efficientnet":
            towers.append(EfficientNetBackbone(name, random_init, last, seed))
        elif kind == "minilm":
            towers.append(MiniLMBackbone(random_init, last, seed))
        else:
            cls = CLIPImageBackbone if side == "image" else CLIPTextBackbone
            towers.append(cls(clip(cfg.get("source", name), stored), last))
    return towers[0], towers[1]


# --- writing --------------------------------------------------------------------------------
def save_checkpoint(encoder: TrainedEncoder, out_dir: str | Path, extra: dict | None = None) -> Path:
    """Write weights first and the config last: a folder with `cliplab.json` is always complete."""
    from safetensors.torch import save as st_save

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for tower in (encoder.image_tower, encoder.text_tower):
        tower.save_assets(out)
    encoder.refresh_scale()
    atomic_write_bytes(out / WEIGHTS_FILE, st_save(encoder.state_dict(), metadata={"format": FORMAT}))
    cfg = {
        "format": FORMAT,
        "version": VERSION,
        **encoder.config,
        "dim": encoder.dim,
        "logit_scale": encoder.logit_scale,
        "weights": WEIGHTS_FILE,
        "image_tower": encoder.image_tower.record(),
        "text_tower": encoder.text_tower.record(),
        **(extra or {}),
    }
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
        raise ModelNotFoundError(
            f"{f}: checkpoint version {cfg['version']} is newer than this cliplab "
            f"understands ({VERSION}); upgrade cliplab"
        )
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
