"""`/api/search` with what the library's search offers a folder's index: query expressions (`q`),
filters (dates, type, camera, size, orientation, GPS), `mode` and `sort` — parsed by the same
functions as the CLI (`cliplab.search.expression`, `cliplab.index.filters`)."""

from __future__ import annotations

from typing import Any

from cliplab.serve.errors import ApiError

FILTER_PARAMS = ("after", "before", "type", "camera", "min_width", "min_height", "orientation", "has_gps")
API_DEFAULT_MODE = "semantic"  # the page shows cosines; hybrid is asked for by name (see README)


def _int(value: Any, name: str) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 10:
        return int(value)
    raise ApiError(f"{name} must be a whole number of pixels, not {value!r}")


def _flag(value: Any, name: str) -> bool:
    if value in (None, "", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ApiError(f"{name} is true or false, not {value!r}")


def wanted(params: dict) -> bool:
    """Whether a request uses anything beyond a plain text query."""
    return any(params.get(k) not in (None, "") for k in (*FILTER_PARAMS, "mode", "sort")) or _is_expression(
        params.get("q")
    )


def _is_expression(q: Any) -> bool:
    return isinstance(q, str) and ('"' in q or " + " in q or " - " in q or "like:" in q or q.strip()[:1] in "+-")


def filters_of(params: dict):
    from cliplab.index.filters import make_filters

    return make_filters(
        after=params.get("after") or None,
        before=params.get("before") or None,
        types=params.get("type") or None,
        camera=params.get("camera") or None,
        min_width=_int(params.get("min_width"), "min_width"),
        min_height=_int(params.get("min_height"), "min_height"),
        orientation=params.get("orientation") or None,
        has_gps=_flag(params.get("has_gps"), "has_gps"),
    )


def run(src, params: dict, want: int, threshold, under, glob) -> tuple[list, dict]:
    """(matches best first, what was run: terms, filters, mode, sort and its cut-off)."""
    from cliplab.search.expression import parse

    if src.kind != "folder":
        raise ApiError(
            "expressions, filters, mode and sort need a folder's index (this collection is built from embeddings)"
        )
    q = params.get("q")
    if not isinstance(q, str) or not q.strip():
        raise ApiError("q must be a non-empty query (words or an expression)")
    terms = parse(q)  # no image paths on a server: text and like:ID terms
    filters = filters_of(params)
    info: dict = {}
    mode = params.get("mode") or API_DEFAULT_MODE
    matches = src.run(terms, want, threshold, under, glob, filters, mode, params.get("sort") or "relevance", info)
    return matches, {
        "terms": [t.as_dict() for t in terms],
        "filters": filters.text,
        "mode": info.pop("mode", mode),
        "sort": {"by": params.get("sort") or "relevance", **info},
    }
