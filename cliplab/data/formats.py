"""Which files are pictures, which of them this installation reads, and why the others are skipped.

Folders are scanned for the picture extensions below. Readable ones are decoded; RAW photos and
videos are listed even when their extra is missing, so `index --status` counts them as failed with
the extra to install instead of leaving them out silently. Any other file (.txt, .xmp, .json sidecars) is not a picture and is
not listed. HEIC/HEIF come from pillow-heif (a core dependency), AVIF from Pillow itself, RAW photos
from rawpy (extra `cliplab[raw]`; without it they are skipped with RAW_HINT). Videos are indexed
frame by frame through PyAV (extra `cliplab[video]`, data/video.py; without it: VIDEO_HINT); read as
one picture (`classify`, `embed`) they are skipped with VIDEO_AS_PICTURE, which says where they are read.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
from pathlib import Path

BASE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".apng", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
HEIF_EXTENSIONS = {".heic", ".heif", ".hif"}
AVIF_EXTENSIONS = {".avif"}
IMAGE_EXTENSIONS = BASE_EXTENSIONS | HEIF_EXTENSIONS | AVIF_EXTENSIONS
RAW_EXTENSIONS = {
    ".3fr", ".arw", ".cr2", ".cr3", ".crw", ".dng", ".erf", ".iiq", ".kdc", ".mrw", ".nef",
    ".nrw", ".orf", ".pef", ".raf", ".rw2", ".rwl", ".sr2", ".srf", ".srw", ".x3f",
}  # fmt: skip
VIDEO_EXTENSIONS = {".3gp", ".avi", ".m2ts", ".m4v", ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".mts", ".webm", ".wmv"}
LISTED_EXTENSIONS = IMAGE_EXTENSIONS | RAW_EXTENSIONS | VIDEO_EXTENSIONS  # what a folder scan lists
# Browsers show these as they are; anything else is converted to JPEG before it is served.
BROWSER_EXTENSIONS = {".jpg", ".jpeg", ".png", ".apng", ".webp", ".bmp", ".gif"}

HEIF_HINT = "HEIC/HEIF photo: needs pillow-heif (pip install pillow-heif)"
AVIF_HINT = "AVIF image: this Pillow cannot read AVIF (pip install -U pillow)"
RAW_HINT = "RAW photo: install cliplab[raw] (rawpy)"
VIDEO_HINT = "video: install cliplab[video] (av)"
VIDEO_AS_PICTURE = "video: not one picture, index its folder to search its moments"
# ISO-BMFF brands (bytes 8..12 of the file) of HEIF and AVIF files, to explain an unread file by its content
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
# PIL identifies these but reads their pixels only through a handler a program must install (WMF: Windows only)
_STUBS = {"BUFR", "GRIB", "HDF5", "WMF"}


@functools.cache
def register_heif() -> bool:
    """Teach PIL to open HEIC/HEIF (once per process); False when pillow-heif is missing."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


@functools.cache
def video_available() -> bool:
    """Whether PyAV (extra `cliplab[video]`, FFmpeg inside its wheel) is installed: videos are then indexed."""
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def is_video(path: str | Path) -> bool:
    return Path(str(path)).suffix.lower() in VIDEO_EXTENSIONS


def index_reason(path: str | Path) -> str | None:
    """Why a folder index skips a file by its extension alone; None for what it reads (videos with PyAV)."""
    if is_video(path) and video_available():
        return None
    return not_supported(path)


@functools.cache
def raw_available() -> bool:
    """Whether rawpy (LibRaw; extra `cliplab[raw]`) is installed: RAW photos are then read (data/raw.py)."""
    return importlib.util.find_spec("rawpy") is not None


def avif_available() -> bool:
    from PIL import features

    return bool(features.check("avif"))


def not_supported(path: str | Path) -> str | None:
    """The reason a file is skipped by its extension alone (RAW, video); None for anything else."""
    ext = Path(str(path)).suffix.lower()
    if ext in RAW_EXTENSIONS and not raw_available():
        return RAW_HINT
    if ext in VIDEO_EXTENSIONS:  # as one picture; `cliplab index` samples its frames (index_reason, data/video.py)
        return f"{VIDEO_AS_PICTURE} ({ext})" if video_available() else VIDEO_HINT
    return None


def unread_reason(name: str | Path | None, head: bytes) -> str:
    """Why PIL could not identify a file: a known format whose reader is missing, or not an image."""
    brand = head[8:12] if head[4:8] == b"ftyp" else b""
    ext = Path(str(name)).suffix.lower() if name else ""
    if brand in _HEIF_BRANDS or (not brand and ext in HEIF_EXTENSIONS):
        if not register_heif():
            return HEIF_HINT
    if brand in _AVIF_BRANDS or (not brand and ext in AVIF_EXTENSIONS):
        if not avif_available():
            return AVIF_HINT
    return not_supported(ext) or "not an image (unrecognised format)"


def formats() -> dict:
    """What this installation reads (format → extensions, and whether folder scans list them) and
    which known picture formats it does not read yet."""
    from PIL import Image

    register_heif()
    Image.init()
    stubs = set(_STUBS)
    with contextlib.suppress(Exception):
        from PIL import EpsImagePlugin

        if not EpsImagePlugin.has_ghostscript():
            stubs.add("EPS")
    by_format: dict[str, list[str]] = {}
    for ext, fmt in Image.registered_extensions().items():
        # OPEN: formats PIL can read, not only write
        if fmt in Image.OPEN and fmt not in stubs and ext not in VIDEO_EXTENSIONS:
            by_format.setdefault(fmt, []).append(ext)
    if not avif_available():
        by_format.pop("AVIF", None)
    readable = [
        {"format": fmt, "extensions": sorted(exts), "listed_in_folders": any(e in IMAGE_EXTENSIONS for e in exts)}
        for fmt, exts in sorted(by_format.items())
    ]
    missing = []
    if not register_heif():
        missing.append({"format": "HEIF", "extensions": sorted(HEIF_EXTENSIONS), "reason": HEIF_HINT})
    if not avif_available():
        missing.append({"format": "AVIF", "extensions": sorted(AVIF_EXTENSIONS), "reason": AVIF_HINT})
    if raw_available():
        readable.append({"format": "RAW", "extensions": sorted(RAW_EXTENSIONS), "listed_in_folders": True})
    else:
        missing.append({"format": "RAW", "extensions": sorted(RAW_EXTENSIONS), "reason": RAW_HINT})
    if video_available():  # frames sampled by `cliplab index` (not `classify`/`embed`: those read one picture)
        readable.append({"format": "video", "extensions": sorted(VIDEO_EXTENSIONS), "listed_in_folders": True})
    else:
        missing.append({"format": "video", "extensions": sorted(VIDEO_EXTENSIONS), "reason": VIDEO_HINT})
    return {"readable": readable, "not_readable": missing}
