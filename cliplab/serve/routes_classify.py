"""The native API's model calls on images: zero-shot classify (`/api/classify`) and raw vectors
(`/api/embed`). Uploads are read with the same bounded reader as search's (`routes_api.read_upload`);
the model work runs in FastAPI's thread pool.
"""

from __future__ import annotations

import re
import time

import numpy as np
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool

from cliplab.serve.classes import MAX_LABEL_CHARS, MAX_PROMPTS, MAX_TEMPLATE_CHARS
from cliplab.serve.deps import get_state
from cliplab.serve.query import ApiError, clamp_count, encode_upload, parse_id
from cliplab.serve.routes_api import FORM_LIMITS, MAX_FILES, MAX_LABELS, MAX_TEXTS, read_upload
from cliplab.serve.routes_clip import json_body, read_json
from cliplab.serve.state import ServerState

router = APIRouter(prefix="/api", tags=["cliplab"])


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
