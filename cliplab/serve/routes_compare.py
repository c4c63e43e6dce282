"""Compare models on one collection: one query → one column per model (`/api/compare`), a photo's
rank under each model (`/api/compare/ranks`), and the retrieval evaluation on the folder's captions
(`/api/compare/eval`). A POSTed image is encoded by every model with its own image tower (in memory,
through the server's upload checks and pixel budget). The work is the library's (`cliplab.search.compare`, `cliplab.eval.collection`);
here requests are parsed and every answer speaks the served collection's ids: another model's index
has ids of its own, so its hits are matched by path (`ServerState.model_source`). Handlers are plain
`def` (or hand their work to the thread pool): model calls and SQLite reads block.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from cliplab.serve.deps import base_url, get_state
from cliplab.serve.library_search import FILTER_PARAMS, filters_of, text_param
from cliplab.serve.query import ApiError, NotFound, check_under, clamp_count, optional_float, parse_id
from cliplab.serve.routes_clip import image_url, json_body, read_json
from cliplab.serve.state import ServerState

router = APIRouter(prefix="/api", tags=["compare"])
# /api/compare/eval answers, per (index, its generation, captions file size and mtime): a page asks again
# and again, and encoding thousands of captions takes seconds; a changed index or captions file misses
_EVALS: OrderedDict = OrderedDict()
_EVALS_LOCK = threading.Lock()
EVALS_KEPT = 32
FIELDS = ("collection", "q", "models", "n", "threshold", "under", "glob", "mode", *FILTER_PARAMS)
IMAGE_FIELDS = ("image", "image_name")  # POST only: an address cannot carry an image
COMPARE_BODY = {
    "type": "object",
    "properties": {
        "q": {"type": "string", "description": 'words or an expression: "beach" + "sunset" - like:12'},
        "image": {"type": "string", "description": "an image file as base64 (a data: URL too): one more term"},
        "image_name": {"type": "string"},
        "models": {"type": "array", "items": {"type": "string"}},
        "n": {"type": "integer"},
        "threshold": {"type": "number"},
        **{k: {"type": "string"} for k in ("collection", "under", "glob", "mode", *FILTER_PARAMS)},
    },
}


def _models(state: ServerState, src, asked: Any) -> list[str]:
    """The models asked for (a list, or "a,b" as in a URL), else every model of the collection."""
    from cliplab.search.compare import MAX_MODELS

    if asked in (None, "", []):
        return state.models(src)[:MAX_MODELS]
    if isinstance(asked, str):
        asked = [m.strip() for m in asked.split(",")]
    if not isinstance(asked, list) or not all(isinstance(m, str) and m.strip() for m in asked):
        raise ApiError('models must be model names, as a list or comma-separated: "lite,conse"')
    names = list(dict.fromkeys(m.strip() for m in asked))
    if len(names) > MAX_MODELS:
        raise ApiError(f"{len(names)} models to compare: at most {MAX_MODELS}")
    return names


def _sources(state: ServerState, src, models: list[str]) -> list:
    if src.kind != "folder":
        raise ApiError(
            f"collection {src.name!r} is an index built from embeddings: it has one model, nothing to compare"
        )
    sources = [state.model_source(src, m) for m in models]  # NotFound names the models it has
    for s in sources:
        state.encoder_for(s)  # loaded once, checked against its index
    return sources


def _terms(q: Any, image: bool = False) -> list:
    from cliplab.search.expression import parse

    if image and q in (None, ""):
        return []  # the image alone
    if not isinstance(q, str) or not q.strip():
        raise ApiError('q must be a non-empty query: words, or an expression like "beach" + "sunset" - like:12')
    return parse(q)  # a server takes no image paths: text and like:ID terms


def _image(state: ServerState, p: dict) -> tuple[bytes, str] | None:
    """The POSTed image's bytes (400 bad base64, 413 too large) and its name, or None."""
    from cliplab.serve.query import decode_base64

    if p.get("image") in (None, ""):
        if p.get("image_name") not in (None, ""):
            raise ApiError("image_name without an image")
        return None
    name = text_param(p.get("image_name"), "image_name") or "image"
    return decode_base64(p["image"], state.settings.max_upload_bytes), name[:200]


def _image_vectors(state: ServerState, sources: list, models: list[str], raw: bytes, name: str) -> dict:
    """Model → its own vector of the upload: each model's image tower (checks and budget as in search)."""
    from cliplab.serve.query import encode_upload

    return {m: encode_upload(state, state.encoder_for(s), raw, name) for m, s in zip(models, sources)}


def run_compare(state: ServerState, base: str, p: dict) -> dict:
    """One query, a column per model: rows like /api/search's, each marked `only_here`; `missing`:
    hits the served index lacks (left out); `agreement`: overlap@k, Spearman ρ, Kendall τ per pair.
    With an image (POST): `ranks`, every listed photo's rank under each model (the page cannot send
    the image again to /api/compare/ranks)."""
    from cliplab.search.compare import compare, ranks
    from cliplab.search.expression import Term, check

    t0 = time.perf_counter()
    src = state.source(p.get("collection"))
    models = _models(state, src, p.get("models"))
    image = _image(state, p)
    terms = _terms(p.get("q"), image is not None)
    k = clamp_count(p.get("n"), "n", default=20)
    under, glob = text_param(p.get("under"), "under"), text_param(p.get("glob"), "glob")
    check_under(under)
    sources = _sources(state, src, models)
    vectors = None
    if image is not None:
        vectors = _image_vectors(state, sources, models, *image)
        terms = [*terms, Term("image", image[1], 1.0, vectors[models[0]])]  # each column: its model's vector
        check(terms)
    by_col = {id(s.collection): s for s in sources}

    def search(col, terms, k, **kw):  # through each source: it refreshes its index and holds its read lock
        return by_col[id(col)].run(terms, k, **kw)

    result = compare(
        [s.collection for s in sources],
        terms,
        k,
        optional_float(p.get("threshold"), "threshold"),
        under,
        glob,
        filters_of(p),
        text_param(p.get("mode"), "mode"),
        reference=src.collection,
        names=models,
        search=search,
        image_vectors=vectors,
    )
    out = result.as_dict()
    items = src.items([r["id"] for col in out["models"] for r in col["results"]])
    for col in out["models"]:
        col["results"] = [_row(base, src, r, items.get(r["id"])) for r in col["results"] if r["id"] in items]
    extra = {}
    if image is not None:
        paths = list(dict.fromkeys(r["path"] for col in out["models"] for r in col["results"]))
        collections = [s.collection for s in sources]
        got = ranks(collections, terms, paths, reference=src.collection, names=models, image_vectors=vectors)
        extra = {"image": image[1], "ranks": got}
    query = p.get("q") or ""
    if image is not None:
        query = f"{query} + {image[1]}" if query else image[1]
    return {
        "collection": src.name,
        "query": query,
        "mode": p.get("mode") or "semantic",
        **out,
        **extra,
        "took_ms": round((time.perf_counter() - t0) * 1000, 2),
    }


def _row(base: str, src, row: dict, item) -> dict:
    url = {"url": image_url(base, src.name, item), "thumb_url": image_url(base, src.name, item, "thumb")}
    return {**row, "caption": item.caption, **url}


@router.get("/compare")
def compare_get(
    request: Request,
    collection: str | None = None,
    q: str | None = None,
    models: str | None = None,
    n: str | None = None,
    threshold: str | None = None,
    under: str | None = None,
    glob: str | None = None,
    mode: str | None = None,
    after: str | None = None,
    before: str | None = None,
    type: str | None = None,  # noqa: A002 (the CLI's --type)
    camera: str | None = None,
    min_width: str | None = None,
    min_height: str | None = None,
    orientation: str | None = None,
    has_gps: str | None = None,
    state: ServerState = Depends(get_state),
) -> dict:
    """One query (`q`: words or an expression) → one column per model (`models=a,b[,c]`, default:
    every model that indexed the collection's folder, at most 4), with the agreement figures.
    Filters and `mode` as in /api/search (default semantic)."""
    p = {k: v for k, v in locals().items() if k in FIELDS}
    return run_compare(state, base_url(request), p)


@router.post("/compare", openapi_extra=json_body(COMPARE_BODY))
async def compare_post(request: Request, state: ServerState = Depends(get_state)) -> dict:
    """The GET's fields as a JSON body (`models` may be a list), and `image` (base64 or a data: URL,
    `image_name` optional): alone or with `q`, one more term that every model encodes itself."""
    body = await read_json(request, state.settings.max_upload_bytes * 4 // 3 + 1024 * 1024)
    if not isinstance(body, dict):
        raise ApiError('the body must be a JSON object like {"q": "a beach", "models": ["lite", "conse"]}')
    unknown = sorted(set(body) - set(FIELDS) - set(IMAGE_FIELDS))
    if unknown:
        raise ApiError(f"unknown field {unknown[0]!r} (fields: {', '.join(FIELDS + IMAGE_FIELDS)})")
    return await run_in_threadpool(run_compare, state, base_url(request), body)


@router.get("/compare/ranks")
def compare_ranks(
    collection: str | None = None,
    q: str | None = None,
    id: str | None = None,  # noqa: A002 (the photo's id, as in /image/{collection}/{id})
    models: str | None = None,
    state: ServerState = Depends(get_state),
) -> dict:
    """Where one photo (`id`) ranks for `q` under each model, over the whole collection (1-based;
    null when a model's index lacks it). Semantic: by cosine."""
    from cliplab.search.compare import ranks

    src = state.source(collection)
    names = _models(state, src, models)
    terms = _terms(q)
    fid = parse_id(id)
    if fid is None:
        raise ApiError(f"id must be an image id (a whole number), not {id!r}")
    path = src.items([fid]).get(fid)
    if path is None:
        raise NotFound(f"no indexed image with id {id!r} in collection {src.name!r}")
    sources = _sources(state, src, names)
    got = ranks([s.collection for s in sources], terms, [path.path], reference=src.collection, names=names)
    return {"id": fid, "path": path.path, "ranks": got[path.path]}


@router.get("/compare/eval")
def compare_eval(
    collection: str | None = None, models: str | None = None, state: ServerState = Depends(get_state)
) -> dict:
    """Text→image and image→text R@1/5/10 of each model on the folder's captions (a captions.csv /
    captions.jsonl in the folder, or .txt beside the photos), from the vectors each index holds."""
    from cliplab.eval.collection import NoCaptionsError, evaluate_collection, folder_captions

    src = state.source(collection)
    names = _models(state, src, models)
    sources = _sources(state, src, names)
    rows = []
    for name, s in zip(names, sources):
        try:
            captions = folder_captions(s.collection)
        except NoCaptionsError as e:
            raise NotFound(str(e)) from None
        key = _eval_key(s.collection, captions[0])
        got = _EVALS.get(key) if key else None
        if got is None:
            got = evaluate_collection(s.collection, encoder=state.encoder_for(s).encoder, captions=captions)
            _keep(key, got)
        rows.append({**got, "model": name})
    first = rows[0]
    return {
        "collection": src.name,
        "captions": first["captions"],
        "images": first["images"],
        "captions_count": first["captions_count"],
        "models": rows,
    }


def _eval_key(col, source: str) -> tuple | None:
    """None for sidecar captions: a .txt changed beside a photo leaves no trace in the index."""
    from cliplab.eval.collection import CAPTION_FILES

    if source not in CAPTION_FILES:
        return None
    st = (col.folder / source).stat()
    return (str(col.index_dir), col.catalog.gen, source, st.st_size, st.st_mtime_ns)


def _keep(key: tuple | None, value: dict) -> None:
    if key is None:
        return
    with _EVALS_LOCK:
        _EVALS[key] = value
        while len(_EVALS) > EVALS_KEPT:
            _EVALS.popitem(last=False)
