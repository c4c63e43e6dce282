"""The native API: collections, facets and search (text, image upload, "more like this"); classify and
embed are in routes_classify.py.

Parameters arrive as strings and are checked by the query module, so a bad value is a 400 with a
sentence naming it rather than a validation dump. Work that touches a model or the index runs in
FastAPI's thread pool (plain `def` handlers, or `run_in_threadpool`).
"""

from __future__ import annotations

import time

import numpy as np
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool

from cliplab.index.ocr import texts as ocr_texts
from cliplab.serve.deps import base_url, get_state
from cliplab.serve.library_search import SEARCH_BODY, SEARCH_PARAMS, empty_message, json_terms, terms_of_json
from cliplab.serve.library_search import run as run_library_search
from cliplab.serve.library_search import wanted as uses_library_search
from cliplab.serve.query import (
    MAX_OFFSET,
    ApiError,
    TooLarge,
    check_under,
    clamp_count,
    decode_base64,
    encode_upload,
    optional_float,
    parse_id,
    query_vector,
    search,
)
from cliplab.serve.routes_clip import image_url, read_json
from cliplab.serve.state import ServerState

router = APIRouter(prefix="/api", tags=["cliplab"])
MAX_FILES = 64
MAX_LABELS = 1000
MAX_TEXTS = 1000
# Starlette's multipart limits: files, non-file fields, bytes of one non-file field
FORM_LIMITS = {"max_files": MAX_FILES, "max_fields": MAX_TEXTS + 10, "max_part_size": 1024 * 1024}


@router.get("/collections")
def collections(state: ServerState = Depends(get_state)) -> list[dict]:
    return [
        {**src.info(), **state.encoders.runtime(src.model), "models": state.models(src)}
        for src in state.sources.values()
    ]


@router.get("/facets")
def facets_route(collection: str | None = None, state: ServerState = Depends(get_state)) -> dict:
    """What a folder's collection can be filtered by: years with counts, cameras, file types."""
    from cliplab.index.photos import facets

    src = state.source(collection)
    if src.kind != "folder":
        raise ApiError("facets need a folder's index (this collection is built from embeddings)")
    return {"collection": src.name, **facets(src.collection.catalog)}


def run_search(
    state: ServerState,
    base: str,
    collection,
    query: str,
    n,
    offset,
    threshold,
    under,
    glob,
    extra=None,
    terms=None,
    **inputs,
) -> dict:
    """Shared by GET (text / like / an expression with filters) and POST (image upload, or a JSON
    list of terms) search. `terms`: the POST's raw list, checked here."""
    t0 = time.perf_counter()
    src = state.source(collection)
    count = clamp_count(n, "n", default=20)
    skip = 0 if offset in (None, "") else parse_id(offset)
    if skip is None:
        raise ApiError(f"offset must be a whole number ≥ 0, not {offset!r}")
    ran: dict = {}
    cut = optional_float(threshold, "threshold")
    if terms is not None or (extra and uses_library_search(src, extra)):  # the library's search
        if inputs.get("like") not in (None, ""):
            raise ApiError("give one query, q or like, not both (an expression takes like:ID as a term)")
        if skip > MAX_OFFSET:
            raise ApiError(f"offset must be between 0 and {MAX_OFFSET}")
        check_under(under)
        if terms is not None:
            terms = terms_of_json(terms, lambda data, name: _encode_base64(state, src, data, name))
        found, ran = run_library_search(state, src, extra or {}, skip + count, cut, under or None, glob or None, terms)
        matches = found[skip:]
    else:
        vector, exclude = query_vector(state, src, **inputs)
        matches = search(src, vector, count, skip, cut, under or None, glob or None, exclude)
    items = src.items([m.id for m in matches])
    read = ocr_texts(src.collection.catalog, [m.id for m in matches]) if src.kind == "folder" else {}
    dated = _dates(src, [m.id for m in matches])
    results = []
    for rank, m in enumerate(matches, start=skip + 1):
        item = items.get(m.id)
        if item is None:
            continue
        results.append(
            {
                "rank": rank,
                "id": m.id,
                "score": m.score,
                "path": item.path,
                "name": item.path.rsplit("/", 1)[-1],
                "caption": item.caption,
                "url": image_url(base, src.name, item),
                "thumb_url": image_url(base, src.name, item, "thumb"),
                **_video_fields(m),
                **({"ocr": read[m.id]} if m.id in read else {}),  # text in the image (index --ocr)
                **dated.get(m.id, {}),
            }
        )
    if ran and not results and not skip:
        ran["message"] = empty_message(ran, cut, under, glob)
    return {
        "model": src.model,
        "collection": src.name,
        "query": query,
        **ran,
        "took_ms": round((time.perf_counter() - t0) * 1000, 2),
        "results": results,
    }


def _dates(src, ids: list[int]) -> dict[int, dict]:
    """id → {"taken": ISO date, "taken_from": "DateTimeOriginal" | … | "mtime"}: the date the date
    sort orders by, and where it came from (a folder's photos; an embeddings index has none)."""
    if src.kind != "folder" or not ids:
        return {}
    from cliplab.index.photos import get

    meta = get(src.collection.catalog, ids)
    return {i: {"taken": m["taken_at"], "taken_from": m["taken_from"]} for i, m in meta.items() if m.get("taken_at")}


def _video_fields(m) -> dict:
    """A video's hit: media, its best moment (seconds) and moments, for the page to play from (#t=)."""
    if getattr(m, "media", "image") != "video":
        return {}
    return {"media": "video", "timestamp": m.timestamp, "moments": m.moments}


def _encode_base64(state: ServerState, src, data, name: str) -> np.ndarray:
    return encode_upload(state, state.encoder_for(src), decode_base64(data, state.settings.max_upload_bytes), name)


@router.get("/search")
def search_get(
    request: Request,
    q: str | None = None,
    collection: str | None = None,
    n: str | None = None,
    offset: str | None = None,
    threshold: str | None = None,
    under: str | None = None,
    glob: str | None = None,
    like: str | None = None,
    after: str | None = None,
    before: str | None = None,
    type: str | None = None,  # noqa: A002 (the CLI's --type)
    camera: str | None = None,
    min_width: str | None = None,
    min_height: str | None = None,
    orientation: str | None = None,
    has_gps: str | None = None,
    mode: str | None = None,
    sort: str | None = None,
    lang: str | None = None,
    cluster: str | None = None,
    region: str | None = None,
    map: str | None = None,  # noqa: A002 (the model of the map a cluster/region is on)
    state: ServerState = Depends(get_state),
) -> dict:
    """Text or an expression → images (`q`: "beach" + 2:"sunset" - like:12), or image → images by id
    (`like`). Filters, `mode` (semantic, keyword, hybrid) and `sort` (relevance, date, -date) as
    in `cliplab search`; `lang` as its --lang."""
    extra = {"q": q, "after": after, "before": before, "type": type, "camera": camera, "min_width": min_width}
    extra |= {"min_height": min_height, "orientation": orientation, "has_gps": has_gps, "mode": mode, "sort": sort}
    extra["lang"] = lang  # NLLB-CLIP: the language the text is in
    extra |= {"cluster": cluster, "region": region, "map": map}  # a selection on the map (library_search.py)
    return run_search(
        state,
        base_url(request),
        collection,
        q if q else f"like:{like}",
        n,
        offset,
        threshold,
        under,
        glob,
        extra,
        text=q,
        like=like,
    )


async def read_upload(upload: UploadFile, state: ServerState) -> bytes:
    limit = state.settings.max_upload_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(
            f"{upload.filename or 'upload'} is larger than the upload limit ({state.settings.max_upload_mb:g} MB)"
        )
    return data


def merge_query(request: Request, form: dict) -> dict:
    """Form fields, with what the URL's query string gives for the same names: either may carry a
    parameter, and when both do they must agree (a silent winner would hide a client's mistake)."""
    merged = dict(form)
    for key in form:
        url = request.query_params.get(key)
        if url is None:
            continue
        if form[key] is not None and form[key] != url:
            raise ApiError(f"{key} is given twice with different values: {url!r} in the URL, {form[key]!r} in the form")
        merged[key] = url
    return merged


POST_FIELDS = ("collection", "n", "offset", "threshold", "under", "glob")


@router.post("/search", openapi_extra={"requestBody": {"content": {"application/json": {"schema": SEARCH_BODY}}}})
async def search_post(
    request: Request,
    image: UploadFile | None = File(None),
    collection: str | None = Form(None),
    n: str | None = Form(None),
    offset: str | None = Form(None),
    threshold: str | None = Form(None),
    under: str | None = Form(None),
    glob: str | None = Form(None),
    state: ServerState = Depends(get_state),
) -> dict:
    """Image (multipart field `image`) → similar images; or a JSON body with `terms` (texts, indexed
    image ids, base64 images, each with a weight) and/or `q`, with the GET's filters, mode and sort.
    Parameters as form/JSON fields or in the URL."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await _search_json(request, state)
    if image is None:
        raise ApiError("no image: send the file in the multipart field 'image' (or a JSON body with terms)")
    p = merge_query(
        request,
        {"collection": collection, "n": n, "offset": offset, "threshold": threshold, "under": under, "glob": glob},
    )
    raw = await read_upload(image, state)
    name = image.filename or "image"
    return await run_in_threadpool(
        run_search,
        state,
        base_url(request),
        p["collection"],
        name,
        p["n"],
        p["offset"],
        p["threshold"],
        p["under"],
        p["glob"],
        image=raw,
        image_name=name,
    )


async def _search_json(request: Request, state: ServerState) -> dict:
    body = await read_json(request, state.settings.max_upload_bytes * 4 // 3 + 2**20)
    if not isinstance(body, dict) or not (body.get("terms") or body.get("q")):
        raise ApiError(
            'the body must be multipart with an image, or JSON like {"terms": [{"text": "a beach"}, '
            '{"image_id": 12, "weight": -1}], "collection": "name"}'
        )
    p = merge_query(request, {k: body.get(k) for k in (*POST_FIELDS, *SEARCH_PARAMS)})
    terms = json_terms(p, body.get("terms"))  # q's terms, then the body's
    query = "terms" if p["q"] in (None, "") else p["q"]
    return await run_in_threadpool(
        run_search,
        state,
        base_url(request),
        p["collection"],
        query,
        p["n"],
        p["offset"],
        p["threshold"],
        p["under"],
        p["glob"],
        p,
        terms,
    )
