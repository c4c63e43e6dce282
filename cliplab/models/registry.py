"""Model spec → Encoder.

Specs: `lite` (offline default), `conse`, `preclip`, `auto`, a local cliplab checkpoint directory,
a local Hugging Face CLIP directory, or a hub id (`openai/clip-vit-base-patch32`).
"""

from __future__ import annotations

import json
from pathlib import Path

from cliplab.errors import ModelNotFoundError
from cliplab.models.base import Encoder

DEFAULT_CLIP = "openai/clip-vit-base-patch32"
BUILTIN = ("lite", "conse", "preclip", "auto")


def _is_cliplab_checkpoint(p: Path) -> bool:
    return (p / "cliplab.json").is_file()


def _is_hf_clip(p: Path) -> bool:
    cfg = p / "config.json"
    if not cfg.is_file():
        return False
    try:
        return "clip" in str(json.loads(cfg.read_text()).get("model_type", "")).lower()
    except (OSError, ValueError):
        return False


def load_encoder(spec: str = "lite") -> Encoder:
    """A model spec → its torch Encoder (towers in torch). `cliplab.load_encoder` /
    `cliplab.runtime.load_encoder` add the runtime choice (ONNX fp32/int8, device) on top."""
    spec = (spec or "lite").strip()
    if spec == "auto":
        from cliplab.models.clip_hf import is_clip_cached

        spec = DEFAULT_CLIP if is_clip_cached(DEFAULT_CLIP) else "lite"
    if spec == "lite":
        return _load_lite()
    if spec == "conse" or spec.startswith("conse:"):
        from cliplab.models.conse import ConSEEncoder

        variant = spec.split(":", 1)[1] if ":" in spec else "lite0"
        return ConSEEncoder(variant=variant, name=spec)
    if spec == "preclip" or spec.startswith("preclip:"):
        from cliplab.models.preclip import PreClipEncoder

        dim = int(spec.split(":", 1)[1]) if ":" in spec else 64
        return PreClipEncoder(dim=dim, name=spec)
    p = Path(spec).expanduser()
    if p.is_dir():
        if _is_cliplab_checkpoint(p):
            from cliplab.models.checkpoint import load_checkpoint

            return load_checkpoint(p)
        if _is_hf_clip(p):
            from cliplab.models.clip_hf import load_clip

            return load_clip(str(p))
        raise ModelNotFoundError(
            f"{spec}: a folder, but neither a cliplab checkpoint (cliplab.json) "
            "nor a Hugging Face CLIP checkpoint (config.json with model_type clip)"
        )
    if p.exists() or spec.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"model path {spec!r} is not a checkpoint directory")
    if "/" in spec:
        from cliplab.models.clip_hf import load_clip

        return load_clip(spec)
    raise ModelNotFoundError(
        f"unknown model {spec!r}: use lite, conse, preclip, auto, a checkpoint folder, "
        "or a Hugging Face CLIP id such as openai/clip-vit-base-patch32"
    )


def lite_checkpoint_dir() -> Path:
    """Where the trained `lite` heads ship inside the package (written by `make lite-model`)."""
    return Path(__file__).resolve().parent / "weights" / "lite"


def _load_lite() -> Encoder:
    ckpt = lite_checkpoint_dir()
    if _is_cliplab_checkpoint(ckpt):
        from cliplab.models.checkpoint import load_checkpoint

        enc = load_checkpoint(ckpt)
        enc.name = "lite"
        return enc
    # Until trained heads ship, `lite` is ConSE over the same towers.
    from cliplab.models.conse import ConSEEncoder

    return ConSEEncoder(name="lite")
