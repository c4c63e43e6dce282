"""Model spec → torch Encoder. What a spec means is `specs.py`'s; this only builds it.

`cliplab.load_encoder` / `cliplab.runtime.load` add the runtime choice (ONNX fp32/int8, device).
"""

from __future__ import annotations

from cliplab.models import specs
from cliplab.models.core.base import Encoder


def load_encoder(spec: str | None = "lite") -> Encoder:
    """A model spec → its Encoder with towers in torch (ModelSpecError for a bad spec)."""
    s = specs.parse(spec)
    if s.kind == "lite":
        return _load_lite()
    if s.kind == "conse":
        from cliplab.models.backends.conse import ConSEEncoder

        return ConSEEncoder(variant=s.variant, name=s.text)
    if s.kind == "preclip":
        from cliplab.models.backends.preclip import PreClipEncoder

        return PreClipEncoder(dim=s.dim, name=s.text)
    if s.kind == "checkpoint":
        from cliplab.models.trained.checkpoint import load_checkpoint

        return load_checkpoint(s.path)
    if s.kind == "open_clip":
        from cliplab.models.backends.openclip import load_open_clip

        return load_open_clip(s)
    if s.family == "siglip":
        from cliplab.models.backends.siglip import load_siglip

        return load_siglip(s.text)
    from cliplab.models.backends.clip_hf import load_clip

    return load_clip(s.text)  # hf-folder or hub id


def _load_lite() -> Encoder:
    from cliplab.models.trained.checkpoint import load_checkpoint

    enc = load_checkpoint(specs.lite_dir())
    enc.name = "lite"
    return enc
