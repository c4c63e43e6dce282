"""The query pipeline, without HTTP: any input kind → one unit vector → search → filtered matches.

Handlers (native API and clip-retrieval protocol) parse their request into the keyword arguments of
`query_vector` and `search`, so every input kind is validated the same way in one place.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from cliplab.errors import ImageError
from cliplab.models.core.base import l2_normalize
from cliplab.serve.errors import ApiError, NotFound, TooLarge  # noqa: F401 (the routes import them from here)
from cliplab.serve.sources import Match, Source
from cliplab.serve.state import ServerState

log = logging.getLogger("cliplab.serve")
MAX_RESULTS = 1000
MAX_OFFSET = 100_000  # paging deeper than this is not browsing any more


def check_under(under: str | None) -> None:
    """`under` names a sub-folder of the collection: relative, never climbing out of it."""
    if under and (".." in under.replace("\\", "/").split("/") or under.startswith("/")):
        raise ApiError("under must be a sub-folder of the collection (relative, without '..')")


def clamp_count(value: Any, name: str = "num_images", default: int = 20) -> int:
    """An int in 1..MAX_RESULTS: 0 → 1, above → MAX_RESULTS, negative or not a number → 400."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ApiError(f"{name} must be a whole number, not {value!r}")
    try:
        n = int(value) if not isinstance(value, float) or value.is_integer() else None
    except (TypeError, ValueError):
        n = None
    if n is None:
        raise ApiError(f"{name} must be a whole number, not {value!r}")
    if n < 0:
        raise ApiError(f"{name} must not be negative (got {n})")
    return max(1, min(n, MAX_RESULTS))


def optional_float(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON integer like 10**400
        raise ApiError(f"{name} must be a number, not {value!r}"[:200]) from None
    if not math.isfinite(f):
        raise ApiError(f"{name} must be a finite number")
    return f


def decode_base64(data: Any, limit: int) -> bytes:
    """Base64 image bytes (a `data:…;base64,` prefix is allowed), bounded by `limit` bytes."""
    if not isinstance(data, str):
        raise ApiError("image must be a base64 string of an image file")
    data = re.sub(r"^data:[^,]*,", "", data.strip())
    if len(data) * 3 // 4 > limit:
        raise TooLarge(f"image is larger than the upload limit ({limit / 2**20:.0f} MB)")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("image is not valid base64") from None
    if not raw:
        raise ApiError("image is empty")
    return raw


def load_upload(raw: bytes, state: ServerState, name: str = "image"):
    """Bytes of an image file → RGB PIL image; too big → 413, not an image / bomb → 400."""
    from cliplab.data.images import load_image

    if len(raw) > state.settings.max_upload_bytes:
        raise TooLarge(f"{name} is larger than the upload limit ({state.settings.max_upload_mb:g} MB)")
    try:
        return load_image(bytes(raw), max_pixels=state.settings.max_pixels)
    except ImageError as e:
        raise ApiError(f"{name}: {e}") from None


def encode_upload(state: ServerState, shared, raw: bytes, name: str = "image") -> np.ndarray:
    """Bytes of an image file → its unit vector. Decoded pixels count against the server's pixel
    budget until the model has its input (queue, then 503), so big images can't pile up."""
    from cliplab.serve.budget import image_pixels

    if len(raw) > state.settings.max_upload_bytes:
        raise TooLarge(f"{name} is larger than the upload limit ({state.settings.max_upload_mb:g} MB)")
    with state.pixels.hold(image_pixels(raw, state.max_pixels)):
        return shared.encode_image(load_upload(raw, state, name))


def fetch_url(url: Any, state: ServerState) -> bytes:
    from cliplab.data.fetch import FetchError, fetch_url
    from cliplab.data.images import is_url

    if not state.settings.allow_urls:
        raise ApiError(
            "image_url is disabled: this server fetches nothing from the network "
            "(start it with --allow-urls), or send the image itself as base64 `image`"
        )
    if not isinstance(url, str) or not is_url(url):
        raise ApiError("image_url must be an http(s) URL")
    try:  # public addresses only, bounded in bytes and time (cliplab/data/fetch.py)
        raw = fetch_url(url, state.settings.max_upload_bytes, state.settings.fetch_timeout_s)
    except FetchError as e:
        log.info("image_url %s not fetched: %s", url, e.reason)
        raise ApiError(f"image_url: {e}") from None
    return raw


def check_embedding(values: Any, dim: int | None) -> np.ndarray:
    if not isinstance(values, list) or not values:
        raise ApiError("embedding_input must be a non-empty list of numbers")
    # JSON numbers only: numpy would read "1.5" and true as numbers, and 10**400 overflows it
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values):
        raise ApiError("embedding_input must be a flat list of numbers")
    try:
        v = np.asarray([float(x) for x in values], dtype=np.float64)
    except OverflowError:
        raise ApiError("embedding_input contains a number too large for a float") from None
    if dim is not None and v.shape[0] != dim:
        raise ApiError(f"embedding_input has {v.shape[0]} dimensions; this collection's vectors have {dim}")
    if not np.isfinite(v).all():
        raise ApiError("embedding_input contains NaN or infinite values")
    if not np.any(v):
        raise ApiError("embedding_input is all zeros")
    return l2_normalize(v.astype(np.float32))


def query_vector(
    state: ServerState,
    src: Source,
    *,
    text: str | None = None,
    image: bytes | None = None,
    image_url: str | None = None,
    embedding: Any = None,
    like: Any = None,
    image_name: str = "image",
) -> tuple[np.ndarray, list[int]]:
    """Exactly one input → (unit query vector, ids to leave out of the results)."""
    given = [
        k
        for k, v in (
            ("text", text),
            ("image", image),
            ("image_url", image_url),
            ("embedding_input", embedding),
            ("like", like),
        )
        if v not in (None, "", [])
    ]
    if not given:
        raise ApiError("nothing to search: give text, an image, image_url, embedding_input or like (an image id)")
    if len(given) > 1:
        raise ApiError(f"give one query, not several ({', '.join(given)})")
    if text not in (None, ""):
        if not isinstance(text, str) or not text.strip():
            raise ApiError("text must be a non-empty string")
        return state.encoder_for(src).encode_text(text), []
    if embedding not in (None, "", []):
        return check_embedding(embedding, src.dim), []
    if like not in (None, ""):
        fid = parse_id(like)
        vec = src.vectors([fid]).get(fid) if fid is not None else None
        if vec is None:
            raise NotFound(f"no indexed image with id {like!r} in collection {src.name!r}")
        return vec, [fid]
    raw = image if image is not None else fetch_url(image_url, state)
    return encode_upload(state, state.encoder_for(src), raw, image_name if image is not None else "image_url"), []


def parse_id(value: Any) -> int | None:
    """An image id as given in a URL or JSON; anything but a plain non-negative integer → None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 2**63 else None  # SQLite's integers are 64-bit
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    return None


def search(
    src: Source,
    vector: np.ndarray,
    n: int,
    offset: int = 0,
    threshold: float | None = None,
    under: str | None = None,
    glob: str | None = None,
    exclude: Sequence[int] = (),
    deduplicate: bool = False,
    dedup_threshold: float = 0.98,
) -> list[Match]:
    """Matches `offset`..`offset + n` of the ranking, best first (near-duplicates dropped if asked)."""
    if not 0 <= offset <= MAX_OFFSET:
        raise ApiError(f"offset must be between 0 and {MAX_OFFSET}")
    want = offset + n
    check_under(under)
    if not deduplicate:
        return src.search(vector, want, threshold, under, glob, exclude)[offset : offset + n]
    # duplicates thin the list: ask for more, then keep the best of each group
    k = want
    while True:
        found = src.search(vector, 2 * k, threshold, under, glob, exclude)
        kept = drop_duplicates(src, found, dedup_threshold)
        if len(kept) >= want or len(found) < 2 * k or k >= 4 * MAX_RESULTS:
            return kept[offset : offset + n]
        k *= 2


def drop_duplicates(src: Source, matches: list[Match], threshold: float) -> list[Match]:
    """Greedy, in rank order: a match whose vector has cosine ≥ threshold with a kept one goes."""
    vecs = src.vectors([m.id for m in matches])
    kept: list[Match] = []
    kept_vecs: list[np.ndarray] = []
    for m in matches:
        v = vecs.get(m.id)
        if v is None:
            continue
        if kept_vecs and float(np.max(np.stack(kept_vecs) @ v)) >= threshold:
            continue
        kept.append(m)
        kept_vecs.append(v)
    return kept
