"""Images and thumbnails, by (collection, id) only.

No path from the request ever reaches the file system: the id is looked up in the catalog, and only
a file the index lists as an image is sent. Anything else — a non-number, an unknown id, `..`
forms, encoded slashes — is a 404. Files browsers cannot show (HEIC, HEIF, AVIF, TIFF) are sent as
a JPEG made once and cached like a thumbnail.
"""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from cliplab.data.formats import BROWSER_EXTENSIONS, is_video
from cliplab.errors import ImageError
from cliplab.serve.deps import get_state
from cliplab.serve.query import NotFound, parse_id
from cliplab.serve.sources import Item
from cliplab.serve.state import ServerState
from cliplab.serve.thumbs import file_tag, thumbnail

router = APIRouter(tags=["images"])
CACHE = "private, max-age=3600"


def _item(state: ServerState, collection: str, image_id: str) -> tuple[Item, object]:
    src = state.sources.get(collection)
    fid = parse_id(image_id)
    if src is None or fid is None:
        raise NotFound(f"no image {image_id!r} in collection {collection!r}")
    item = src.items([fid]).get(fid)
    # still the file that was indexed? (a swapped-in symlink or other content is not served)
    if item is None or item.file is None or src.fresh(item) is None:
        raise NotFound(f"no image {image_id!r} in collection {collection!r}")
    return item, src


def _not_modified(request: Request, etag: str) -> bool:
    return etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]


@router.get("/image/{collection}/{image_id}")
def image(collection: str, image_id: str, request: Request, state: ServerState = Depends(get_state)):
    item, src = _item(state, collection, image_id)
    video = is_video(item.file)  # sent as it is (Range requests: the page plays it from a moment, #t=)
    # HEIC, TIFF, …: browsers show them as JPEG only
    if item.file.suffix.lower() not in BROWSER_EXTENSIONS and not video:
        return _jpeg(request, *_make_jpeg(item, src, None, image_id, state))
    etag = file_tag(item.file, item.id)
    headers = {"ETag": etag, "Cache-Control": CACHE}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    media = mimetypes.guess_type(item.file.name)[0] or "application/octet-stream"
    if video and not media.startswith("video/"):  # .3gp, .mts: guessed as audio/model types
        media = "video/mp4" if item.file.suffix.lower() == ".3gp" else "video/mp2t"
    return FileResponse(
        item.file, media_type=media, headers=headers, content_disposition_type="inline", filename=item.file.name
    )


@router.get("/thumb/{collection}/{image_id}")
async def thumb(collection: str, image_id: str, request: Request, state: ServerState = Depends(get_state)):
    item, src = _item(state, collection, image_id)
    size = state.settings.thumb_size  # decoding is CPU work: off the event loop
    return _jpeg(request, *await run_in_threadpool(_make_jpeg, item, src, size, image_id, state))


def _make_jpeg(item: Item, src, size: int | None, image_id: str, state: ServerState) -> tuple[bytes, str]:
    """(JPEG bytes, ETag) of a thumbnail, or with size None of the whole picture (cached either way)."""
    try:
        return thumbnail(item.file, item.id, src.cache_dir(), size, state.settings.max_pixels)
    except ImageError as e:
        raise NotFound(f"image {image_id} can no longer be read ({e})") from None


def _jpeg(request: Request, data: bytes, etag: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": CACHE}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="image/jpeg", headers=headers)
