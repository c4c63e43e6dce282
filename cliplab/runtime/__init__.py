"""Runtimes that run a model's towers: torch, or ONNX Runtime (fp32/int8) from an on-disk cache.

    from cliplab.runtime import load, runtime_of
    enc = load("lite", runtime="auto", precision="int8", device="auto")
    runtime_of(enc)   # {"runtime": "onnx", "precision": {"image": "fp32 (...)", "text": "int8"}, "device": "cpu"}

Nothing heavy is imported here: `select`, `session` and `export` import their libraries when used.
"""

from __future__ import annotations

from cliplab.models.specs import RUNTIME_KEYS


def load(
    spec: str = "lite",
    runtime: str | None = "auto",
    precision: str | None = "fp32",
    device: str | None = "auto",
    notify=None,
    **kw,
):
    """A model spec → an `Encoder` on the runtime asked for (see `cliplab.runtime.select.load`)."""
    from cliplab.runtime import select

    return select.load(spec, runtime, precision, device, **({"notify": notify} if notify else {}), **kw)


def load_encoder(
    spec: str = "lite", runtime: str | None = "auto", precision: str | None = "fp32", device: str | None = "auto"
):
    """The public loader (`cliplab.load_encoder`): a spec → Encoder on `runtime` auto | torch | onnx
    (auto = ONNX when onnxruntime is installed), `precision` fp32 | int8, `device` auto | cpu | cuda."""
    return load(spec, runtime=runtime, precision=precision, device=device)


def runtime_of(encoder) -> dict:
    """Which runtime, precision and device an encoder runs on (for every command's output)."""
    d = encoder.describe()
    if "runtime" in d:
        return {k: d[k] for k in ("runtime", "precision", "device") if k in d}
    info = getattr(encoder, "runtime_info", None) or {"runtime": "torch", "precision": "fp32", "device": "cpu"}
    return dict(info)


def runtime_label(encoder) -> str:
    """'onnx fp32', 'onnx int8', 'onnx int8 (image kept fp32: CNN)', 'torch fp32' — for text output."""
    r = runtime_of(encoder)
    label = f"{r.get('runtime', 'torch')} {precision_phrase(r.get('precision', 'fp32'))}"
    if r.get("device") not in (None, "cpu"):
        label += f" on {r['device']}"
    if r.get("note"):
        label += f" — {r['note']}"
    return label


def precision_phrase(p) -> str:
    """A per-tower precision dict → one phrase ('int8', 'fp32 (int8 asked; image kept fp32: CNN; …)')."""
    if not isinstance(p, dict):
        return str(p)
    kept = {side: v.split("kept fp32: ", 1)[1].rstrip(")") for side, v in p.items() if "kept fp32" in v}
    any_int8 = any(v == "int8" for v in p.values())
    if not kept:
        return "int8" if any_int8 else "fp32"
    reasons = "; ".join(f"{side} kept fp32: {why}" for side, why in kept.items())
    return f"int8 ({reasons})" if any_int8 else f"fp32 (int8 asked; {reasons})"


def without_runtime(description: dict) -> dict:
    """A model description minus how it ran (what an ONNX cache entry records as its identity)."""
    return {k: v for k, v in description.items() if k not in RUNTIME_KEYS}
