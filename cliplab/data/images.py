"""Image loading that never crashes a run: every failure becomes an ImageError with a reason.

Handles EXIF orientation, any PIL mode (→ RGB, cliplab.data.decode), HEIC/HEIF/AVIF, RAW photos
(cliplab.data.raw), zero-byte / truncated / non-image files, video files (a reason), decompression bombs
(checked from the header, before any pixel is decoded, for every format) and http(s) URLs.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Iterable

from PIL import Image, ImageOps, UnidentifiedImageError

from cliplab.data.decode import to_rgb  # noqa: F401  (re-exported)
from cliplab.data.files import IMAGE_EXTENSIONS, broken_link_reason, walk_images  # noqa: F401  (re-exported)
from cliplab.data.formats import not_supported, register_heif, unread_reason
from cliplab.data.raw import is_raw, load_raw  # rawpy itself is imported only when a RAW photo comes
from cliplab.data.shards import TarMember, is_tar, list_tar
from cliplab.errors import CliplabError, ImageError
from cliplab.settings import DEFAULT_MAX_PIXELS, settings  # noqa: F401  (DEFAULT_MAX_PIXELS: importable here)

# One size limit: CLIPLAB_MAX_PIXELS (checked from the header in load_image). PIL's own bomb limit
# (~179 MP) would otherwise win silently whenever the documented one is set higher.
Image.MAX_IMAGE_PIXELS = None
register_heif()  # HEIC/HEIF open like any PIL format (lazily: the header first, pixels on load)
URL_TIMEOUT_S = 15


def is_url(s: str) -> bool:
    return str(s).startswith(("http://", "https://"))


def _open_source(src: str | Path | bytes):
    if isinstance(src, (bytes, bytearray)):  # in-memory file (server uploads)
        if not src:
            raise ImageError("empty file (0 bytes)")
        return io.BytesIO(src)
    if isinstance(src, TarMember):  # an image inside a webdataset .tar shard, read by offset
        return io.BytesIO(src.read_bytes())
    if is_url(str(src)):
        import urllib.error  # here, not at the top: 15-25 ms of every CLI start, for a rare case
        import urllib.request

        try:
            with urllib.request.urlopen(str(src), timeout=URL_TIMEOUT_S) as r:  # noqa: S310 (http(s) only)
                data = r.read()
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise ImageError(f"cannot download URL ({reason}); offline? download it and pass the file") from None
        if not data:
            raise ImageError("empty response")
        return io.BytesIO(data)
    p = Path(src)
    if not p.exists():
        raise ImageError(broken_link_reason(p) if p.is_symlink() else "file not found")
    if p.is_dir():
        raise ImageError("is a directory")
    if p.stat().st_size == 0:
        raise ImageError("empty file (0 bytes)")
    return p


def load_image(src: str | Path | bytes, max_pixels: int | None = None, draft: int | None = None) -> Image.Image:
    """Decode one image fully into an RGB PIL image, or raise ImageError(reason).

    `draft`: the model's input size. A JPEG at least twice that size on its short side is decoded
    at a reduced scale (1/2, 1/4 or 1/8, never below `draft`), which makes a 12 MP photo ~10×
    cheaper. A HEIC with a stored thumbnail at least that size on both sides (iPhones store a
    320×240 one) gives that thumbnail instead of decoding the full picture. Pixels then differ
    slightly from a full decode + resize, so callers that need bit-exact preprocessing (tests
    against transformers use small images) leave it None."""
    limit = settings().max_pixels if max_pixels is None else max_pixels
    local = isinstance(src, (str, Path)) and not is_url(str(src))
    if local and (why := not_supported(src)):
        raise ImageError(why)  # video, RAW without rawpy: by extension, without reading the file
    fp = _open_source(src)
    if local and is_raw(src):
        return load_raw(fp, limit, draft)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fp) as im:
                w, h = im.size
                if w * h > limit:
                    raise ImageError(f"image too large ({w}x{h} > {limit} pixels)")
                if draft and im.format == "JPEG" and min(w, h) >= 2 * draft:
                    im.draft("RGB", (draft, draft))
                elif draft and im.format == "HEIF":  # its stored thumbnail when one is ≥ draft (pillow-heif)
                    im.draft("RGB", (draft, draft))
                im.load()  # full decode here, so truncation is caught now, not later
                im = ImageOps.exif_transpose(im)  # a new image (transposed or a copy): it outlives the file
                return to_rgb(im)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(unread_reason(fp if isinstance(fp, Path) else None, _head(fp))) from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"image too large ({e})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        msg = str(e).strip() or type(e).__name__
        raise ImageError(f"corrupt or truncated image ({msg})") from None


def _head(fp) -> bytes:
    """The first bytes of a source, to name the format of a file PIL could not identify."""
    try:
        if isinstance(fp, Path):
            with fp.open("rb") as f:
                return f.read(16)
        return fp.getvalue()[:16]
    except (OSError, AttributeError):
        return b""


def list_images(inputs: Iterable[str | Path], recursive: bool = True) -> list[str]:
    """Expand files, folders (by image extension), `.txt` lists (one path per line) and URLs.

    Folders are scanned in sorted order so runs are reproducible. A missing path raises.
    """
    out: list[str] = []
    for item in inputs:
        s = str(item)
        if is_url(s):
            out.append(s)
            continue
        p = Path(s).expanduser()
        if p.is_dir():  # broken links are listed too: loading them reports why they were skipped
            found = (f.path for f in walk_images(p, skip_hidden=False) if recursive or "/" not in f.rel)
            out.extend(sorted(found, key=lambda f: Path(f).parts))
        elif p.is_file() and p.suffix.lower() in {".txt", ".lst"}:
            base = p.parent
            for line in p.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    out.append(line if is_url(line) or Path(line).is_absolute() else str(base / line))
        elif p.is_file() and is_tar(p):  # a webdataset shard: one item per sample (cliplab.data.shards)
            out.extend(list_tar(p))
        elif p.exists():
            out.append(str(p))
        else:
            raise CliplabError(f"no such file or folder: {s}")
    return out
