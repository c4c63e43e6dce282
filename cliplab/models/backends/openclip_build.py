"""Random-weight open_clip models of real architectures, saved in open_clip's hub layout (offline):
what the tests (small widths) and benchmarks/zoo_bench.py (real shapes) load like a downloaded checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from cliplab.errors import ModelNotFoundError
from cliplab.models.backends.openclip import import_open_clip
from cliplab.models.core.quiet import quiet
from cliplab.models.specs import OPEN_CLIP_CONFIG, OPEN_CLIP_WEIGHTS


def build_random_open_clip(
    out_dir: str | Path, arch: str, small: bool = True, seed: int = 0, image_size: int | None = None, **cfg
) -> Path:
    """Save a randomly initialised open_clip model of `arch` in hub layout (offline; tests, benchmarks).

    `small` keeps the architecture but cuts the text transformer to 2 layers of width 64 (and a ViT
    image tower likewise); `cfg` overrides model_cfg keys (e.g. text_cfg for an HF text tower)."""
    oc = import_open_clip()
    model_cfg = oc.get_model_config(arch)
    if model_cfg is None:
        raise ModelNotFoundError(f"open_clip has no architecture {arch!r}")
    model_cfg = json.loads(json.dumps(model_cfg))
    v, t = model_cfg["vision_cfg"], model_cfg["text_cfg"]
    if small:
        if "hf_model_name" not in t:
            t.update(width=64, heads=2, layers=2)
        if "timm_model_name" not in v:
            v.update(width=64, layers=2, head_width=32)
        model_cfg["embed_dim"] = 32
    if image_size:
        v["image_size"] = image_size
    model_cfg.update(cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with quiet(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        cls = oc.CustomTextCLIP if ("hf_model_name" in t or model_cfg.get("custom_text")) else oc.CLIP
        args = {k: w for k, w in model_cfg.items() if k != "custom_text"}
        if "hf_model_name" in args["text_cfg"]:  # random weights: the HF text model from its config only
            args["text_cfg"] = {**args["text_cfg"], "hf_model_pretrained": False}
        model = cls(**args).eval()
    from open_clip.model import get_model_preprocess_cfg
    from safetensors.torch import save_file

    pre = get_model_preprocess_cfg(model) or {}
    pre = {"size": v.get("image_size", 224), **{k: list(x) if isinstance(x, tuple) else x for k, x in pre.items()}}
    (out_dir / OPEN_CLIP_CONFIG).write_text(
        json.dumps({"model_cfg": model_cfg, "preprocess_cfg": pre, "arch": arch}, indent=1)
    )
    save_file({k: x.contiguous() for k, x in model.state_dict().items()}, str(out_dir / OPEN_CLIP_WEIGHTS[0]))
    return out_dir
