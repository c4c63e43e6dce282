"""Thumbnails: made once with PIL (EXIF-rotated, RGB, longest side `size`), cached as JPEG. With
`size=None` the same gives the full-size JPEG of a file browsers cannot show (HEIC, TIFF, AVIF).

The cache key holds the file's size and mtime, so an edited image gets a new thumbnail (and a new
ETag) while an unchanged one is never decoded twice. The cache lives in the index folder; when that
is read-only the thumbnail is still made, just not kept.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from cliplab.data.atomic import atomic_write_bytes
from cliplab.data.formats import is_video


def file_tag(path: Path, fid: int) -> str:
    """A strong ETag for an image file as it is now."""
    st = path.stat()
    return f'"{fid}-{st.st_size}-{st.st_mtime_ns}"'


def thumbnail(
    path: Path, fid: int, cache: Path, size: int | None = 256, max_pixels: int | None = None
) -> tuple[bytes, str]:
    """(JPEG bytes, ETag) of the file's thumbnail. Raises ImageError if the file no longer decodes."""
    from cliplab.data.images import load_image

    st = path.stat()
    key = f"{fid}-{size or 'full'}-{st.st_size}-{st.st_mtime_ns}"
    target = cache / f"{key}.jpg"
    if target.is_file():
        return target.read_bytes(), f'"t{key}"'
    if is_video(path):  # a video's thumbnail is its poster frame (data/video.py)
        from cliplab.data.video import poster

        im = poster(path, max_pixels=max_pixels)
    else:
        im = load_image(path, max_pixels=max_pixels)
    if size:
        im.thumbnail((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85 if size else 92, optimize=True)
    data = buf.getvalue()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        for old in cache.glob(f"{fid}-{size or 'full'}-*.jpg"):  # the thumbnail of an earlier version of the file
            if old.name != target.name:
                old.unlink(missing_ok=True)
        atomic_write_bytes(target, data)  # a concurrent request reads the old or the new, never half
    except OSError:
        pass
    return data, f'"t{key}"'
