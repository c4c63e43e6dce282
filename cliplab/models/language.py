"""The language of text queries, for models whose text tower needs one (NLLB-CLIP: FLORES-200 codes).

`in_language(encoder, lang)` is the encoder that reads texts as `lang`; a model that takes no
language code refuses one with a clear error (rather than ignoring it: a code given to the wrong
model is a mistake worth saying). `with_vectors` encodes a query's text terms in that language, so
the search runs unchanged on the index's own encoder.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from cliplab.errors import CliplabError
from cliplab.models.core.base import Encoder


def in_language(encoder: Encoder, lang: str | None) -> Encoder:
    if not lang:
        return encoder
    lang = lang.strip()
    method = getattr(encoder, "in_language", None)
    if method is None:
        raise CliplabError(f"model {encoder.name} takes no query language: --lang is for NLLB-CLIP models")
    return method(lang)


def with_vectors(encoder: Encoder, terms: Sequence, lang: str | None) -> list:
    """`terms` with each text term's vector encoded as `lang` (unchanged without a language)."""
    if not lang:
        return list(terms)
    enc = in_language(encoder, lang)
    texts = [i for i, t in enumerate(terms) if t.kind == "text" and t.vector is None]
    vecs = enc.encode_texts([terms[i].value for i in texts]) if texts else []
    out = list(terms)
    for i, v in zip(texts, vecs):
        out[i] = replace(out[i], vector=v)
    return out


def unknown_code(lang: str, codes: Sequence[str]) -> CliplabError:
    """The error for a language code the model's tokenizer lacks, naming near ones."""
    near = sorted(c for c in codes if c.split("_")[0] == lang.split("_")[0]) or ["eng_Latn", "deu_Latn", "zho_Hans"]
    return CliplabError(f"unknown language code {lang!r}: use a FLORES-200 code such as {', '.join(near[:3])}")
