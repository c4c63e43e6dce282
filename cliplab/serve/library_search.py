"""`/api/search` with what the library's search offers: query expressions (`q`) or a JSON list of
terms, filters (dates, type, camera, size, orientation, GPS), `mode` and `sort` — parsed by the same
functions as the CLI (`cliplab.search.expression`, `cliplab.index.filters`).

On a folder's index every `q` goes through the library's search, so the API's default mode is the
library's (hybrid: keyword and semantic rankings fused). An index built from embeddings has no
photo metadata: there expressions and term lists are semantic by default, keyword and hybrid search
its captions (`cliplab/index/captions.py`), and filters and date sort are refused.
"""

from __future__ import annotations

import math
from typing import Any

from cliplab.serve.errors import ApiError

FILTER_PARAMS = ("after", "before", "type", "camera", "min_width", "min_height", "orientation", "has_gps")
SELECTION_PARAMS = ("cluster", "region", "map")  # a cluster or region of a map (`map`: its model) → ids
SEARCH_PARAMS = ("q", *FILTER_PARAMS, *SELECTION_PARAMS, "mode", "sort", "lang")
TERM_KEYS = ("text", "image_id", "image")
SEARCH_BODY = {
    "type": "object",
    "properties": {
        "terms": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "image_id": {"type": "integer"},
                    "image": {"type": "string"},
                    "name": {"type": "string"},
                    "weight": {"type": "number"},
                },
            },
        },
        **{k: {"type": "string"} for k in ("collection", *SEARCH_PARAMS, "under", "glob")},
        **{k: {"type": "integer"} for k in ("n", "offset")},
        "threshold": {"type": "number"},
    },
}

MAX_TEXT_CHARS = 1000


def _int(value: Any, name: str) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**9:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 10:
        return int(value)
    raise ApiError(f"{name} must be a whole number of pixels, not {value!r}")


def _flag(value: Any, name: str) -> bool:
    if value in (None, "", "0", "false", "no", False):
        return False
    if value in ("1", "true", "yes", True):
        return True
    raise ApiError(f"{name} is true or false, not {value!r}")


def text_param(value: Any, name: str) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ApiError(f"{name} must be a string, not {value!r}")
    return value


def number(value: Any, name: str) -> float:
    """A JSON number as a finite float (booleans, strings, 10**400 and NaN are refused)."""
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            raise ValueError
        return float(value)
    except (ValueError, OverflowError):
        raise ApiError(f"{name} must be a finite number, not {value!r}"[:200]) from None


def wanted(src, params: dict) -> bool:
    """Whether the library's search answers: on a folder's index every `q` (hybrid by default);
    elsewhere only an expression, filters, a mode or a sort (the plain route stays semantic)."""
    if src.kind == "folder" and params.get("q") not in (None, ""):
        return True
    return any(
        params.get(k) not in (None, "") for k in (*FILTER_PARAMS, *SELECTION_PARAMS, "mode", "sort", "lang")
    ) or _is_expression(params.get("q"))


def _is_expression(q: Any) -> bool:
    return isinstance(q, str) and ('"' in q or " + " in q or " - " in q or "like:" in q or q.strip()[:1] in "+-")


def filters_of(params: dict):
    from cliplab.index.filters import make_filters

    return make_filters(
        after=text_param(params.get("after"), "after"),
        before=text_param(params.get("before"), "before"),
        types=text_param(params.get("type"), "type"),
        camera=text_param(params.get("camera"), "camera"),
        min_width=_int(params.get("min_width"), "min_width"),
        min_height=_int(params.get("min_height"), "min_height"),
        orientation=text_param(params.get("orientation"), "orientation"),
        has_gps=_flag(params.get("has_gps"), "has_gps"),
    )


def with_selection(state, src, params: dict, filters):
    """`filters` narrowed to a cluster or region of a map (`cluster=`, `region=`, `map=MODEL`)."""
    from dataclasses import replace

    cluster, region, model = (params.get(k) for k in SELECTION_PARAMS)
    if cluster in (None, "") and region in (None, ""):
        if model not in (None, ""):
            raise ApiError("map= names the map of a selection: give cluster= or region= with it")
        return filters
    from cliplab.serve.maps import selection_ids

    ids, what = selection_ids(state, src, text_param(model, "map"), cluster, region)
    return replace(filters, ids=tuple(int(i) for i in ids), text={**filters.text, "selection": what})


def terms_of_json(items: Any, encode_image) -> list:
    """A POST body's `terms`: [{"text" | "image_id" | "image" (base64): …, "weight": 2}] → `Term`s.
    `encode_image(base64, name)` → the upload's unit vector (the server's checks and budget)."""
    from cliplab.search.expression import MAX_TERMS, Term, check

    if not isinstance(items, list) or not items:
        raise ApiError('terms must be a non-empty list like [{"text": "a beach"}, {"image_id": 12, "weight": -1}]')
    if len(items) > MAX_TERMS:
        raise ApiError(f"{len(items)} terms in one query: at most {MAX_TERMS}")
    terms = []
    for n, item in enumerate(items, 1):
        given = [k for k in TERM_KEYS if isinstance(item, dict) and item.get(k) not in (None, "")]
        if len(given) != 1:
            raise ApiError(f"term {n}: give exactly one of text, image_id or image (base64), and optionally weight")
        weight = number(item.get("weight", 1), f"term {n}: weight")
        if weight == 0:
            raise ApiError(f"term {n}: its weight must be a non-zero number")
        value = item[given[0]]
        if given[0] == "text":
            if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT_CHARS:
                raise ApiError(f"term {n}: text must be a non-empty string of at most {MAX_TEXT_CHARS} characters")
            terms.append(Term("text", value, float(weight)))
        elif given[0] == "image_id":
            from cliplab.serve.query import parse_id

            if parse_id(value) is None:
                raise ApiError(f"term {n}: image_id must be an indexed image's id (a whole number), not {value!r}")
            terms.append(Term("like", str(parse_id(value)), float(weight)))
        else:
            name = item.get("name") if isinstance(item.get("name"), str) else f"image {n}"
            terms.append(Term("image", name[:200], float(weight), encode_image(value, name[:200])))
    check(terms)  # QueryError (a 400): the same sentences as for an expression
    return terms


def json_terms(p: dict, terms: Any) -> list:
    """A JSON POST: its fields checked (`p`, in place), and the raw term list: `q`'s terms first
    (an expression), then `terms` (e.g. an uploaded image); `terms_of_json` checks them all."""
    from cliplab.search.expression import parse

    for key in ("under", "glob"):
        if p[key] is not None and not isinstance(p[key], str):
            raise ApiError(f"{key} must be a string")
    if p["threshold"] is not None and not isinstance(p["threshold"], str):
        p["threshold"] = number(p["threshold"], "threshold")
    if terms is not None and not isinstance(terms, list):
        raise ApiError('terms must be a list like [{"text": "a beach"}, {"image_id": 12, "weight": -1}]')
    if p["q"] in (None, ""):
        return terms
    if not isinstance(p["q"], str):
        raise ApiError("q must be a string (an expression)")
    kinds = {"text": "text", "like": "image_id"}
    return [{kinds[t.kind]: t.value, "weight": t.weight} for t in parse(p["q"])] + (terms or [])


def _with_text_vectors(state, src, terms: list, lang=None) -> list:
    """Texts encoded by the server's shared, batched encoder (the library would encode them alone);
    with `lang` (NLLB-CLIP's FLORES-200 code) by the model reading that language (cached apart)."""
    from dataclasses import replace

    shared = state.encoder_for(src)
    if lang := text_param(lang, "lang"):
        from cliplab.models.language import in_language

        reader, key = in_language(shared.encoder, lang), f"{shared.spec}|{lang.strip()}"

        def vector(text: str):
            row = shared.cache.get((key, text))
            if row is None:
                row = reader.encode_texts([text])[0]
                shared.cache.put((key, text), row)
            return row

        return [replace(t, vector=vector(t.value)) if t.kind == "text" and t.vector is None else t for t in terms]
    return [
        replace(t, vector=shared.encode_text(t.value)) if t.kind == "text" and t.vector is None else t for t in terms
    ]


def sort_rule(by: str, mode: str) -> str | None:
    """The cut-off rule in words (cliplab/search/sort.py), for the answer and the page."""
    from cliplab.search.sort import CUTOFF_LAMBDA

    if by == "relevance":
        return None
    rule = f"score ≥ top − {CUTOFF_LAMBDA:g} × (top − typical), typical = the query's median score"
    return rule + ("; every keyword match" if mode != "semantic" else "")


def run(state, src, params: dict, want: int, threshold, under, glob, terms: list | None = None) -> tuple[list, dict]:
    """(matches best first, what was run: terms, filters, mode, sort and its cut-off)."""
    from cliplab.search.expression import describe, parse

    if terms is None:
        q = params.get("q")
        if not isinstance(q, str) or not q.strip():
            raise ApiError("q must be a non-empty query (words or an expression)")
        terms = parse(q)  # no image paths on a server: text and like:ID terms
    terms = _with_text_vectors(state, src, terms, params.get("lang"))
    filters = with_selection(state, src, params, filters_of(params))
    mode, sort = text_param(params.get("mode"), "mode"), text_param(params.get("sort"), "sort") or "relevance"
    if src.kind != "folder" and mode not in (None, "semantic"):  # keyword, hybrid (or a typo: the library says)
        return _captions(src, terms, want, threshold, under, glob, filters, mode, sort)
    if src.kind != "folder":
        return _semantic_only(src, terms, want, threshold, under, glob, filters, mode, sort)
    info: dict = {}
    matches = src.run(terms, want, threshold, under, glob, filters, mode, sort, info)
    ran_mode = info.pop("mode", mode)
    return matches, {
        "terms": [t.as_dict() for t in terms],
        "expression": describe(terms),
        "filters": filters.text,
        "mode": ran_mode,
        "sort": {"by": sort, "rule": sort_rule(sort, ran_mode), **info},
    }


def _captions(src, terms, want, threshold, under, glob, filters, mode, sort) -> tuple[list, dict]:
    """An index built from embeddings, keyword or hybrid: its captions by their words (`cliplab.search.run`)."""
    from dataclasses import replace

    from cliplab.search import run
    from cliplab.search.expression import describe
    from cliplab.serve.sources import Match

    if filters.active or sort != "relevance" or under or glob:
        raise ApiError(
            "filters, date sort, under and glob need a folder's index "
            "(this collection is built from embeddings: it has no photo metadata nor folders)"
        )
    stored = src.vectors([int(t.value) for t in terms if t.kind == "like"])
    missing = [t.value for t in terms if t.kind == "like" and int(t.value) not in stored]
    if missing:
        raise ApiError(f"like:{missing[0]}: no indexed image has this id")
    given = [replace(t, vector=stored[int(t.value)]) if t.kind == "like" else t for t in terms]
    hits = run(src.index, given, want, threshold, mode=mode)  # the index keeps its own caches thread-safe
    ran = {"terms": [t.as_dict() for t in terms], "expression": describe(terms), "filters": {}, "mode": mode}
    return [Match(h.id, h.score, h.path) for h in hits], {**ran, "sort": {"by": "relevance", "rule": None}}


def _semantic_only(src, terms, want, threshold, under, glob, filters, mode, sort) -> tuple[list, dict]:
    """An index built from embeddings: the weighted sum of the terms' vectors, cosine ranking."""
    import numpy as np

    from cliplab.search.expression import combine, describe
    from cliplab.serve.query import search

    if filters.active or sort != "relevance":
        raise ApiError(
            "filters and date sort need a folder's index "
            "(this collection is built from embeddings: it has no photo metadata)"
        )
    likes = [int(t.value) for t in terms if t.kind == "like"]
    stored = src.vectors(likes)
    vectors = []
    for t in terms:
        if t.kind == "like" and int(t.value) not in stored:
            raise ApiError(f"like:{t.value}: no indexed image has this id")
        vectors.append(stored[int(t.value)] if t.kind == "like" else t.vector)
    vec = combine(np.stack(vectors), [t.weight for t in terms])
    matches = search(src, vec, want, 0, threshold, under, glob, likes)
    ran = {"terms": [t.as_dict() for t in terms], "expression": describe(terms), "filters": {}, "mode": "semantic"}
    return matches, {**ran, "sort": {"by": "relevance", "rule": None}}


def empty_message(ran: dict, threshold, under, glob) -> str:
    """Why nothing came back, in one line (the page shows it)."""
    narrowed = [f"{k} {v}" for k, v in (ran.get("filters") or {}).items()]
    narrowed += [f"min score {threshold:g}"] if threshold is not None else []
    narrowed += [f"folder {under}"] if under else []
    narrowed += [f"files {glob}"] if glob else []
    if narrowed:
        return "No images match these filters (" + ", ".join(narrowed) + "): widen or clear one."
    if ran.get("mode") == "keyword":
        return "No image has these words in its name, folder, caption or EXIF text: try semantic or hybrid mode."
    return "No images match."
