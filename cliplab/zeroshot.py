"""Zero-shot classification: prompt templates → class embeddings → probabilities of scaled cosines.

The probability rule belongs to the model: a softmax over the labels (CLIP), or an independent
sigmoid(scale·cos + bias) per label (SigLIP). An encoder declares it in `describe()` (`probability`,
`logit_bias`; absent: softmax), so torch and ONNX encoders of one model agree; `encoder_probs` reads it.

Class embeddings follow CLIP: embed every template filled with the class name, average the unit
vectors, re-normalise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from cliplab.errors import CliplabError
from cliplab.models.core.base import Encoder, l2_normalize
from cliplab.models.core.imagenet import clip80_templates

DEFAULT_TEMPLATE = "a photo of a {}."


def load_templates(spec: str | None = None) -> list[str]:
    """`None`/`single` → CLIP's one template; `clip80` → the 80 ImageNet templates; `none` → the bare
    label; a file → one template per line (each must contain `{}`); otherwise a literal template."""
    if spec in (None, "", "single", "default"):
        return [DEFAULT_TEMPLATE]
    if spec == "clip80":
        return clip80_templates()
    if spec == "none":
        return ["{}"]
    p = Path(spec).expanduser()
    if p.is_file():
        templates = [t.strip() for t in p.read_text(encoding="utf-8").splitlines() if t.strip()]
    elif "{}" in spec:
        templates = [spec]
    else:
        raise CliplabError(f"templates {spec!r}: not single, clip80, none, a file, or a template containing {{}}")
    bad = [t for t in templates if "{}" not in t]
    if not templates or bad:
        raise CliplabError(f"templates {spec!r}: every template needs a {{}} placeholder (bad: {bad[:3]})")
    return templates


def parse_labels(labels: str | Sequence[str]) -> list[str]:
    """'cat,dog' or a file with one label per line or a list → de-duplicated labels, order kept."""
    if isinstance(labels, str):
        p = Path(labels).expanduser()
        items = p.read_text(encoding="utf-8").splitlines() if p.is_file() else labels.split(",")
    else:
        items = list(labels)
    out = list(dict.fromkeys(s.strip() for s in items if s and s.strip()))
    if len(out) < 1:
        raise CliplabError("no labels given (use --labels 'cat,dog' or a file with one label per line)")
    return out


def class_embeddings(
    encoder: Encoder, classnames: Sequence[str], templates: Sequence[str], cache: bool = True
) -> np.ndarray:
    """(C, D) unit vectors: mean over templates of each class's prompt embeddings.

    Cached on disk by (model identity incl. runtime/precision, labels, templates): 1,000 labels ×
    80 templates is 80k texts to encode, a second run reads one .npy instead. The .npy's mtime is
    its "last used" for `cliplab cache` (touched on a hit, at most hourly); a .json beside it names
    the model."""
    key = class_cache_key(encoder, classnames, templates) if cache else None
    path = _class_cache_dir() / f"{key}.npy" if key else None
    if path is not None:
        try:
            hit = np.load(path, allow_pickle=False)
            if hit.shape == (len(classnames), encoder.dim) and hit.dtype == np.float32 and np.isfinite(hit).all():
                from cliplab.runtime.cache import mark_used

                mark_used(path)
                return hit
        except (OSError, ValueError, EOFError):
            pass  # missing or corrupt: recompute and overwrite
    prompts = [t.replace("{}", c) for c in classnames for t in templates]  # never str.format: a template is text
    emb = encoder.encode_texts(prompts).reshape(len(classnames), len(templates), -1)
    out = l2_normalize(l2_normalize(emb).mean(axis=1))
    if path is not None:
        _save_atomic(path, out)
        _save_about(path.with_suffix(".json"), encoder, len(classnames), len(templates))
    return out


def class_cache_key(encoder: Encoder, classnames: Sequence[str], templates: Sequence[str]) -> str | None:
    """None when the encoder's description does not pin its weights (a model being trained, a
    baseline fitted on the data): its class embeddings are never cached."""
    import json

    from cliplab.data.digest import bytes_digest

    if getattr(encoder, "needs_fit", False):
        return None
    d = encoder.describe()
    # preclip counts once it is past needs_fit: its shipped PCA fit is named in its description
    builtin = str(d.get("model", "")).split(":")[0] in ("lite", "conse", "preclip")
    if not (builtin or "weights" in d or d.get("runtime") == "onnx"):
        return None
    blob = json.dumps(
        {"model": d, "labels": list(classnames), "templates": list(templates), "v": 1}, sort_keys=True, default=str
    )
    return bytes_digest(blob)


def _class_cache_dir() -> Path:
    from cliplab.settings import settings

    return settings().cache_home / "classes"


def _save_atomic(path: Path, arr: np.ndarray) -> None:
    from cliplab.data.writers import save_npy

    try:
        save_npy(path, arr)
    except OSError:  # a read-only cache only costs speed
        pass


def _save_about(path: Path, encoder: Encoder, n_labels: int, n_templates: int) -> None:
    """What a cached class-embedding file holds, for `cliplab cache` (best effort, like the .npy)."""
    from cliplab.data.atomic import atomic_write_json

    try:
        atomic_write_json(path, {"model": encoder.name, "labels": n_labels, "templates": n_templates})
    except OSError:
        pass


def zero_shot_logits(image_vectors: np.ndarray, class_emb: np.ndarray, logit_scale: float) -> np.ndarray:
    return float(logit_scale) * (image_vectors @ class_emb.T)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def zero_shot_probs(
    image_vectors: np.ndarray, class_emb: np.ndarray, logit_scale: float, rule: str = "softmax", logit_bias: float = 0.0
) -> np.ndarray:
    logits = zero_shot_logits(image_vectors, class_emb, logit_scale)
    if rule == "sigmoid":
        return 1.0 / (1.0 + np.exp(-(logits + float(logit_bias))))
    return softmax(logits)


def probability_rule(encoder: Encoder) -> tuple[str, float]:
    """(rule, logit_bias) the encoder's model was trained with: ("softmax", 0.0) unless it says otherwise."""
    d = encoder.describe()
    return str(d.get("probability", "softmax")), float(d.get("logit_bias", 0.0))


def encoder_probs(encoder: Encoder, image_vectors: np.ndarray, class_emb: np.ndarray) -> tuple[np.ndarray, str]:
    """Zero-shot probabilities by the encoder's own rule, and the rule's name (for the output)."""
    rule, bias = probability_rule(encoder)
    return zero_shot_probs(image_vectors, class_emb, encoder.logit_scale, rule, bias), rule


def top_k(probs: np.ndarray, labels: Sequence[str], k: int = 5) -> list[list[tuple[str, float]]]:
    """Per row, the k most probable (label, probability), best first; ties broken by label order."""
    k = max(1, min(k, probs.shape[1]))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[(labels[j], float(probs[i, j])) for j in row] for i, row in enumerate(order)]
