"""The native API: collections, search (text, image upload, "more like this"), classify, embed.

Parameters arrive as strings and are checked by the query module, so a bad value is a 400 with a
sentence naming it rather than a validation dump. Work that touches a model or the index runs in
FastAPI's thread pool (plain `def` handlers, or `run_in_threadpool`).
"""

from __future__ import annotations

import re
import time

import numpy as np
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool

from cliplab.index.ocr import texts as ocr_texts
from cliplab.serve.classes import MAX_LABEL_CHARS, MAX_PROMPTS, MAX_TEMPLATE_CHARS
from cliplab.serve.deps import base_url, get_state
from cliplab.serve.library_search import SEARCH_BODY, SEARCH_PARAMS, empty_message, json_terms, terms_of_json
from cliplab.serve.library_search import run as run_library_search
from cliplab.serve.library_search import wanted as uses_library_search
from cliplab.serve.query import (
    MAX_OFFSET,
    ApiError,
    TooLarge,
    clamp_count,
    decode_base64,
    encode_upload,
    optional_float,
    parse_id,
    query_vector,
    search,
)
from cliplab.serve.routes_clip import image_url, json_body, read_json
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
        if under and (".." in under.replace("\\", "/").split("/") or under.startswith("/")):
            raise ApiError("under must be a sub-folder of the collection (relative, without '..')")
        if terms is not None:
            terms = terms_of_json(terms, lambda data, name: _encode_base64(state, src, data, name))
        found, ran = run_library_search(state, src, extra or {}, skip + count, cut, under or None, glob or None, terms)
        matches = found[skip:]
    else:
        vector, exclude = query_vector(state, src, **inputs)
        matches = search(src, vector, count, skip, cut, under or None, glob or None, exclude)
    items = src.items([m.id for m in matches])
    read = ocr_texts(src.collection.catalog, [m.id for m in matches]) if src.kind == "folder" else {}
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
    state: ServerState = Depends(get_state),
) -> dict:
    """Text or an expression → images (`q`: "beach" + 2:"sunset" - like:12), or image → images by id
    (`like`). Filters, `mode` (semantic, keyword, hybrid) and `sort` (relevance, date, -date) as
    in `cliplab search`; `lang` as its --lang."""
    extra = {"q": q, "after": after, "before": before, "type": type, "camera": camera, "min_width": min_width}
    extra |= {"min_height": min_height, "orientation": orientation, "has_gps": has_gps, "mode": mode, "sort": sort}
    extra["lang"] = lang  # NLLB-CLIP: the language the text is in
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


def _split(text: str | None) -> list[str]:
    return [s.strip() for s in re.split(r"[,\n]", text or "") if s.strip()]


def _templates(spec: str | None) -> list[str]:
    """Named template sets, or one literal template; never a path (no file is read for a request)."""
    from cliplab.zeroshot import load_templates

    spec = (spec or "").strip()
    if spec in ("", "single", "default", "clip80", "none"):
        return load_templates(spec or None)
    if spec.count("{}") != 1 or len(spec) > MAX_TEMPLATE_CHARS:
        raise ApiError(
            f"templates must be single, clip80, none, or one template of at most {MAX_TEMPLATE_CHARS} "
            "characters with exactly one {} (replaced by the label)"
        )
    return [spec]


def classify(
    state: ServerState,
    collection,
    labels: list[str],
    templates: list[str],
    k: int,
    uploads: list[tuple[str, bytes]],
    ids: list[str],
) -> dict:
    from cliplab.zeroshot import encoder_probs, probability_rule, top_k

    t0 = time.perf_counter()
    if not labels:
        raise ApiError("no labels: give labels like 'cat,dog,car'")
    if len(labels) > MAX_LABELS:
        raise ApiError(f"at most {MAX_LABELS} labels")
    if any(len(lab) > MAX_LABEL_CHARS for lab in labels):
        raise ApiError(f"a label is longer than {MAX_LABEL_CHARS} characters")
    if len(labels) * len(templates) > MAX_PROMPTS:
        raise ApiError(
            f"{len(labels)} labels × {len(templates)} templates is too much work for one request "
            f"(at most {MAX_PROMPTS} prompts)"
        )
    if not uploads and not ids:
        raise ApiError("no images: upload files in field 'images' or give 'ids' of indexed images")
    src = state.source(collection)
    shared = state.encoder_for(src)
    rows: list[dict] = []
    vecs: list[np.ndarray] = []
    # every row has the same keys: name, id (None for an upload), error (None when ok), predictions
    for name, raw in uploads:
        try:
            vecs.append(encode_upload(state, shared, raw, name))
            rows.append({"name": name, "id": None, "error": None, "predictions": []})
        except ApiError as e:
            if e.status in (413, 503):  # too large, or over the pixel budget: the whole request
                raise
            rows.append({"name": name, "id": None, "error": str(e), "predictions": []})
    stored = src.vectors([i for i in (parse_id(x) for x in ids) if i is not None])
    names = src.items(list(stored))
    for x in ids:
        i = parse_id(x)
        if i in stored and i in names:
            vecs.append(stored[i])
            rows.append({"name": names[i].path, "id": i, "error": None, "predictions": []})
        else:
            missing = f"no indexed image with id {x!r} in collection {src.name!r}"
            rows.append({"name": str(x), "id": None, "error": missing, "predictions": []})
    if vecs:
        cls = state.classes.get(shared.encoder, labels, templates)
        best = top_k(encoder_probs(shared.encoder, np.stack(vecs), cls)[0], labels, k)
        it = iter(best)
        for row in rows:
            if row["error"] is None:
                row["predictions"] = [{"label": lab, "prob": round(p, 6)} for lab, p in next(it)]
    return {
        "model": src.model,
        "labels": labels,
        "templates": len(templates),
        "probability": probability_rule(shared.encoder)[0],
        "took_ms": round((time.perf_counter() - t0) * 1000, 2),
        "results": rows,
    }


@router.post("/classify")
async def classify_route(
    labels: str = Form(...),
    templates: str | None = Form(None),
    k: str | None = Form(None),
    images: list[UploadFile] = File(default=[]),
    ids: str | None = Form(None),
    collection: str | None = Form(None),
    state: ServerState = Depends(get_state),
) -> dict:
    """Zero-shot: per image, the probability of each label (multipart: images and/or ids, labels)."""
    if len(images) > MAX_FILES:
        raise ApiError(f"at most {MAX_FILES} images per request")
    uploads = [(u.filename or f"image-{i + 1}", await read_upload(u, state)) for i, u in enumerate(images)]
    labs = list(dict.fromkeys(_split(labels)))
    top = clamp_count(k, "k", default=5)
    return await run_in_threadpool(classify, state, collection, labs, _templates(templates), top, uploads, _split(ids))


def embed(state: ServerState, collection, texts: list, uploads: list[tuple[str, bytes]]) -> dict:
    src = state.source(collection)
    if not texts and not uploads:
        raise ApiError("nothing to embed: give texts and/or images")
    if len(texts) > MAX_TEXTS or not all(isinstance(t, str) and t.strip() for t in texts):
        raise ApiError(f"texts must be up to {MAX_TEXTS} non-empty strings")
    shared = state.encoder_for(src)
    out: dict = {"model": src.model, "dim": shared.dim}
    if texts:
        out["texts"] = shared.encoder.encode_texts(list(texts)).tolist()
    if uploads:
        vecs, errors = [], []
        for name, raw in uploads:
            try:
                vecs.append(encode_upload(state, shared, raw, name).tolist())
            except ApiError as e:
                if e.status in (413, 503):  # too large, or over the pixel budget: the whole request
                    raise
                vecs.append(None)
                errors.append({"name": name, "error": str(e)})
        out["images"], out["errors"] = vecs, errors
    return out


EMBED_BODY = {
    "type": "object",
    "properties": {"texts": {"type": "array", "items": {"type": "string"}}, "collection": {"type": "string"}},
}


@router.post("/embed", openapi_extra=json_body(EMBED_BODY))
async def embed_route(request: Request, state: ServerState = Depends(get_state)) -> dict:
    """Texts (JSON `{"texts": [...]}` or form fields) and/or images (multipart `images`) → vectors."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(**FORM_LIMITS)
        texts = [t for t in form.getlist("texts") if isinstance(t, str)]
        files = [f for f in form.getlist("images") if not isinstance(f, str)]
        uploads = [(f.filename or f"image-{i + 1}", await read_upload(f, state)) for i, f in enumerate(files)]
        collection = form.get("collection")
    else:
        body = await read_json(request, 4 * 1024 * 1024)
        if not isinstance(body, dict) or not isinstance(body.get("texts", []), list):
            raise ApiError('the JSON body must look like {"texts": ["a dog", ...], "collection": "name"}')
        texts, uploads, collection = body.get("texts", []), [], body.get("collection")
    return await run_in_threadpool(embed, state, collection, texts, uploads)
