"""Image loading that never crashes a run: every failure becomes an ImageError with a reason.

Handles EXIF orientation, any PIL mode (→ RGB), zero-byte / truncated / non-image files,
decompression bombs (checked from the header, before any pixel is decoded) and http(s) URLs.
"""
from __future__ import annotations

import io
import os
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Iterable

from PIL import Image, ImageOps, UnidentifiedImageError

from cliplab.errors import CliplabError, ImageError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
# 8k × 8k; larger files are almost always mistakes or bombs. Overridable per call / by env.
DEFAULT_MAX_PIXELS = int(os.environ.get("CLIPLAB_MAX_PIXELS", 64_000_000))
URL_TIMEOUT_S = 15


def is_url(s: str) -> bool:
    return str(s).startswith(("http://", "https://"))


def _open_source(src: str | Path):
    if is_url(str(src)):
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
        raise ImageError("file not found")
    if p.is_dir():
        raise ImageError("is a directory")
    if p.stat().st_size == 0:
        raise ImageError("empty file (0 bytes)")
    return p


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB, compositing transparency onto white (as transformers does; a plain convert turns it black)."""
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def load_image(src: str | Path, max_pixels: int | None = None) -> Image.Image:
    """Decode one image fully into an RGB PIL image, or raise ImageError(reason)."""
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    fp = _open_source(src)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fp) as im:
                w, h = im.size
                if w * h > limit:
                    raise ImageError(f"image too large ({w}x{h} > {limit} pixels)")
                im.load()  # full decode here, so truncation is caught now, not later
                im = ImageOps.exif_transpose(im)
                return to_rgb(im) if im.mode != "RGB" else im.copy()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not an image (unrecognised format)") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"image too large ({e})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        msg = str(e).strip() or type(e).__name__
        raise ImageError(f"corrupt or truncated image ({msg})") from None


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
        if p.is_dir():
            it = p.rglob("*") if recursive else p.glob("*")
            out.extend(str(f) for f in sorted(it) if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file())
        elif p.is_file() and p.suffix.lower() in {".txt", ".lst"}:
            base = p.parent
            for line in p.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    out.append(line if is_url(line) or Path(line).is_absolute() else str(base / line))
        elif p.exists():
            out.append(str(p))
        else:
            raise CliplabError(f"no such file or folder: {s}")
    return out
