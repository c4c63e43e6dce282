"""High-level functions behind the CLI: embed, classify, similarity. One call each, no printing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from cliplab.data.images import list_images
from cliplab.errors import CliplabError
from cliplab.models import Encoder
from cliplab.pipeline import EmbedResult, embed_images, embed_texts
from cliplab.runtime import load_encoder
from cliplab.zeroshot import class_embeddings, encoder_probs, load_templates, parse_labels, top_k


def _encoder(model: str | Encoder) -> Encoder:
    return model if isinstance(model, Encoder) else load_encoder(model)


def embed(
    inputs: Sequence[str],
    model: str | Encoder = "lite",
    batch_size: int | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> EmbedResult:
    """Embed image files / folders / list files / URLs. Bad files are recorded in the result."""
    enc = _encoder(model)
    paths = list_images(inputs)
    if not paths:
        raise CliplabError(f"no images found in {', '.join(map(str, inputs))}")
    return embed_images(enc, paths, batch_size=batch_size, workers=workers, progress=progress)


def read_texts(spec: str) -> list[str]:
    """Texts from a file (one per line, or a CSV's text/caption column) or an inline comma list."""
    from cliplab.data.files import read_items

    texts = read_items(spec, "texts")  # one-line errors for a missing or non-UTF-8 file
    if not texts:
        raise CliplabError(f"{spec}: no texts (one per line)")
    return texts


@dataclass
class Classification:
    result: EmbedResult
    labels: list[str]
    probs: np.ndarray  # (n_ok, n_labels)
    templates: list[str]
    model: dict

    def top(self, k: int = 5) -> list[dict]:
        """Per input, in input order, the same keys for every entry: path, status, error (None when
        ok) and predictions, the top-k [{label, prob}] (empty for an image that failed)."""
        best = top_k(self.probs, self.labels, k) if len(self.probs) else []
        out = []
        for path, status, err, row in zip(self.result.paths, self.result.status, self.result.errors, self.result.rows):
            ok = status == "ok"
            preds = [{"label": lab, "prob": p} for lab, p in best[row]] if ok else []
            out.append({"path": path, "status": status, "error": None if ok else err, "predictions": preds})
        return out


def classify(
    inputs: Sequence[str],
    labels: str | Sequence[str],
    model: str | Encoder = "lite",
    templates: str | None = None,
    progress: bool = False,
    batch_size: int | None = None,
) -> Classification:
    """Zero-shot: probabilities of each label for each image (softmax of logit_scale × cosine, or the
    model's own rule: SigLIP's sigmoid; `describe()["probability"]` in the result names it)."""
    enc = _encoder(model)
    labs = parse_labels(labels)
    if len(labs) < 2:  # a softmax over one label is 100 % whatever the image
        raise CliplabError(f"zero-shot needs at least two labels to choose between (got {labs!r})")
    tmpl = load_templates(templates)
    res = embed(inputs, enc, batch_size=batch_size, progress=progress)
    cls = class_embeddings(enc, labs, tmpl)
    probs = encoder_probs(enc, res.vectors, cls)[0] if res.n_ok else np.zeros((0, len(labs)))
    return Classification(res, labs, probs, tmpl, enc.describe())


def similarity(
    images: Sequence[str], texts: Sequence[str], model: str | Encoder = "lite", progress: bool = False
) -> tuple[EmbedResult, np.ndarray, np.ndarray]:
    """Image × text cosine matrix (rows: successfully embedded images, in input order)."""
    enc = _encoder(model)
    res = embed(images, enc, progress=progress)
    tv = embed_texts(enc, texts, progress=progress)
    return res, tv, res.vectors @ tv.T


def image_text(image) -> str:
    """The text inside an image (OCR: screenshots, receipts, signs, scans), one line per line of text,
    '' when there is none. A path, an http(s) URL or the file's bytes; needs the `cliplab[ocr]` extra."""
    from cliplab.data.images import load_image
    from cliplab.data.ocr import MAX_SIDE, read_text

    return read_text(load_image(image, draft=MAX_SIDE * 3 // 4))
