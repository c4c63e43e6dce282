"""clip-retrieval's protocol (`clip_back`), as its `ClipClient` and web front speak it.

The front posts its JSON as `text/plain`, so bodies are read raw and parsed whatever the
Content-Type. Fields the clients send for LAION-specific features (safety model, aesthetics,
mclip) are accepted and ignored.

`modality: "text"` is clip-retrieval's search of its text index (caption embeddings). We hold no
caption vectors, so it searches the stored captions by their words instead — a folder's keyword
index (file names, caption files, EXIF text), an embeddings index's captions — and answers in the
same shape.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from cliplab.serve.deps import base_url, get_state
from cliplab.serve.query import (
    ApiError,
    TooLarge,
    clamp_count,
    decode_base64,
    parse_id,
    query_vector,
    search,
)
from cliplab.serve.state import ServerState

router = APIRouter(tags=["clip-retrieval"])


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON (any Content-Type), read in chunks so a huge chunked body stops at `limit`."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge("request body too large")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks) or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(f"invalid JSON body ({e})") from None
    except RecursionError:
        raise ApiError("invalid JSON body (nested too deeply)") from None


def _body_limit(state: ServerState) -> int:
    return state.settings.max_upload_bytes * 4 // 3 + 1024 * 1024


@router.get("/indices-list")
def indices_list(state: ServerState = Depends(get_state)) -> list[str]:
    return list(state.sources)


def knn(state: ServerState, body: Any, base: str) -> list[dict]:
    """One clip-retrieval query → its result list (testable without HTTP)."""
    if not isinstance(body, dict):
        raise ApiError("the body must be a JSON object")
    name = body.get("indice_name")
    if not name and len(state.sources) > 1:
        raise ApiError(f"indice_name is required (one of: {', '.join(state.sources)})")
    src = state.source(name)
    if body.get("modality") not in (None, "image", "text"):
        raise ApiError("modality must be 'image' (the images) or 'text' (the stored captions, by their words)")
    n = clamp_count(body.get("num_images"), "num_images", default=40)
    if body.get("modality") == "text":
        return _captions(src, body, n, base)
    image = body.get("image")
    raw = decode_base64(image, state.settings.max_upload_bytes) if image not in (None, "") else None
    vector, exclude = query_vector(
        state,
        src,
        text=body.get("text"),
        image=raw,
        image_url=body.get("image_url"),
        embedding=body.get("embedding_input"),
    )
    dedup = body.get("deduplicate", True)
    matches = search(
        src, vector, n, exclude=exclude, deduplicate=bool(dedup), dedup_threshold=state.settings.dedup_threshold
    )
    items = src.items([m.id for m in matches])
    out = []
    for m in matches:
        item = items.get(m.id)
        if item is not None:
            out.append({"id": m.id, "similarity": m.score, **_meta(base, src.name, item)})
    return out


def _captions(src, body: dict, n: int, base: str) -> list[dict]:
    """modality "text": the n stored captions that hold the query's words best (keyword search;
    `similarity` is the keyword rank score 1 / (60 + rank), as `/api/search?mode=keyword` gives)."""
    from cliplab.search.query import RRF_K

    text = body.get("text")
    given = [k for k in ("image", "image_url", "embedding_input") if body.get(k) not in (None, "", [])]
    if given or not isinstance(text, str) or not text.strip():
        raise ApiError("modality 'text' searches the stored captions by their words: give text (no image or embedding)")
    if src.kind == "folder":
        from cliplab.search.expression import Term

        ids = [m.id for m in src.run([Term("text", text)], n, mode="keyword")] if n else []
    else:
        if not src.index.ensure_captions():
            raise ApiError(f"collection {src.name!r} holds no captions to search (modality 'text')")
        ids = src.index.keyword_ids(text, n)[0].tolist()  # the metadata is read by items(), under its lock
    items = src.items(ids)
    return [
        {"id": i, "similarity": round(1.0 / (RRF_K + r), 6), **_meta(base, src.name, items[i])}
        for r, i in enumerate(ids, 1)
        if i in items
    ]


def _meta(base: str, collection: str, item) -> dict:
    return {"url": image_url(base, collection, item), "caption": item.caption, "path": item.path}


def image_url(base: str, collection: str, item, route: str = "image") -> str:
    """Where a client gets the image: served by id here, or (embeddings index rows) the row's URL."""
    return item.url or f"{base}/{route}/{collection}/{item.id}"


_NAME = {"type": "string", "description": "collection name (required when there are several)"}
KNN_BODY = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "image": {"type": "string", "description": "base64 of an image file"},
        "image_url": {"type": "string", "description": "http(s) URL (only with --allow-urls)"},
        "embedding_input": {"type": "array", "items": {"type": "number"}},
        "indice_name": _NAME,
        "num_images": {"type": "integer", "minimum": 0},
        "deduplicate": {"type": "boolean"},
        "modality": {"type": "string", "enum": ["image", "text"]},
    },
}
METADATA_BODY = {
    "type": "object",
    "required": ["ids"],
    "properties": {"ids": {"type": "array", "items": {"type": "integer"}, "maxItems": 10000}, "indice_name": _NAME},
}


def json_body(schema: dict) -> dict:
    """The OpenAPI description of a body the route reads itself (for /docs and the fuzz test)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


@router.post("/knn-service", openapi_extra=json_body(KNN_BODY))
async def knn_service(request: Request, state: ServerState = Depends(get_state)) -> list[dict]:
    body = await read_json(request, _body_limit(state))
    return await run_in_threadpool(knn, state, body, base_url(request))


def metadata(state: ServerState, body: Any, base: str) -> list[dict]:
    if not isinstance(body, dict) or not isinstance(body.get("ids"), list):
        raise ApiError('the body must be a JSON object with "ids": [...]')
    name = body.get("indice_name")
    if not name and len(state.sources) > 1:
        raise ApiError(f"indice_name is required (one of: {', '.join(state.sources)})")
    src = state.source(name)
    if len(body["ids"]) > 10_000:
        raise ApiError("at most 10000 ids per request")
    ids = [i for i in (parse_id(x) for x in body["ids"]) if i is not None]
    items = src.items(ids)
    return [{"id": i, "metadata": _meta(base, src.name, items[i])} for i in ids if i in items]


@router.post("/metadata", openapi_extra=json_body(METADATA_BODY))
async def metadata_route(request: Request, state: ServerState = Depends(get_state)) -> list[dict]:
    body = await read_json(request, 1024 * 1024)
    return await run_in_threadpool(metadata, state, body, base_url(request))
