"""RAW camera photos (CR2, CR3, NEF, ARW, DNG, ORF, RW2, RAF, …) through rawpy (LibRaw): `cliplab[raw]`.

A RAW file carries the camera's own JPEG rendering of the shot (its preview). When that is at least
the model's input size it is used as it is: it is what the camera showed, and it costs a JPEG decode
instead of a demosaic. Otherwise the sensor data is demosaiced at half size (one RGB pixel per 2×2
Bayer block, with the camera's white balance and the sRGB curve the models were trained on).

The pixel limit is checked from LibRaw's header (`sizes`) before anything is unpacked. Orientation:
the preview's EXIF when it has an Orientation tag (rawpy's previews carry one LibRaw writes from
the RAW's header), else LibRaw's `flip`; a demosaic is turned upright by LibRaw itself.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageOps

from cliplab.data.formats import RAW_EXTENSIONS
from cliplab.errors import ImageError

MIN_PREVIEW = 224  # the short side a preview needs when the caller does not name the model's input size
SRGB_GAMMA = (2.4, 12.92)  # LibRaw's default is BT.709; photos (and what models saw) are sRGB
_NO_TIME = "1970:01:01 00:00:00"  # what LibRaw writes into a preview's EXIF when the RAW has no date
HEAD_BYTES = 1 << 20  # TIFF-based RAWs keep their EXIF near the start, before the sensor data
# LibRaw's flip (dcraw's numbering) → EXIF orientation (LibRaw maps the other way with "50132467")
_FLIP_TO_ORIENTATION = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def is_raw(path: str | Path) -> bool:
    return Path(str(path)).suffix.lower() in RAW_EXTENSIONS


def _open(path: Path):
    import rawpy

    return rawpy.imread(str(path))


def _reason(e: Exception) -> str:
    msg = e.args[0] if e.args else type(e).__name__
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return str(msg).strip() or type(e).__name__


def load_raw(path: Path, max_pixels: int, draft: int | None = None) -> Image.Image:
    """One RAW photo as an upright RGB image (preview or half-size demosaic), or ImageError(reason)."""
    import rawpy

    try:
        with _open(path) as raw:
            s = raw.sizes  # from the header: nothing is unpacked yet
            if s.width * s.height > max_pixels:
                raise ImageError(f"image too large ({s.width}x{s.height} > {max_pixels} pixels)")
            im = _preview(raw, draft, max_pixels)
            if im is not None:
                return im
            rgb = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8, gamma=SRGB_GAMMA)
            return Image.fromarray(rgb)  # already upright: LibRaw applies `flip`
    except rawpy.LibRawError as e:
        raise ImageError(f"corrupt or unsupported RAW photo ({_reason(e)})") from None
    except MemoryError:
        raise ImageError("RAW photo too large to decode (out of memory)") from None


def _preview(raw, draft: int | None, max_pixels: int) -> Image.Image | None:
    """The embedded preview, upright, when it is at least the model's input size (`draft`, else
    MIN_PREVIEW) on its short side and has the picture's shape (not a letterboxed or cropped one);
    None to demosaic instead. With `draft`, a large JPEG preview is decoded at a reduced scale."""
    import rawpy

    want = draft or MIN_PREVIEW
    try:
        thumb = raw.extract_thumb()
    except rawpy.LibRawError:  # none, or unreadable: the sensor data may still be fine
        return None
    try:
        if thumb.format == rawpy.ThumbFormat.JPEG:
            im = Image.open(io.BytesIO(thumb.data))
        else:  # a bitmap (h, w, 3) uint8
            im = Image.fromarray(thumb.data)
        w, h = im.size
        s = raw.sizes
        shape = s.width / s.height
        off_shape = min(abs(w / h - r) for r in (shape, 1 / shape)) > 0.05  # letterboxed or cropped
        if min(w, h) < want or w * h > max_pixels or off_shape:
            return None
        if draft and im.format == "JPEG" and min(w, h) >= 2 * draft:
            im.draft("RGB", (draft, draft))  # reduced-scale decode, as load_image does for JPEGs
        im.load()
        orientation = im.getexif().get(0x0112) if im.format == "JPEG" else None
    except (OSError, SyntaxError, ValueError, EOFError):
        return None  # a broken preview: the sensor data may still be fine
    if orientation is None:
        orientation = _FLIP_TO_ORIENTATION.get(s.flip, 1)
        im = im.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else im
    else:
        im = ImageOps.exif_transpose(im)
    return im.convert("RGB")


def raw_header(path: Path) -> tuple[str, tuple[int, int], Image.Exif]:
    """(format, stored size, EXIF) of a RAW photo, for the photo metadata: EXIF from the file's TIFF
    header (CR2, NEF, ARW, DNG, ORF, RW2, … are TIFF inside) or, lacking a date there, from the
    embedded preview; its Orientation tag is LibRaw's when neither has one. Raises ImageError."""
    import rawpy

    fmt = path.suffix.lstrip(".").upper()
    try:
        with _open(path) as raw:
            s = raw.sizes
            exif = _tiff_exif(path)
            if not _dated(exif):
                exif = _preview_exif(raw) or exif
    except rawpy.LibRawError as e:
        raise ImageError(f"corrupt or unsupported RAW photo ({_reason(e)})") from None
    if 0x0112 not in exif:
        exif[0x0112] = _FLIP_TO_ORIENTATION.get(s.flip, 1)
    return fmt, (s.width, s.height), exif


def _tiff_exif(path: Path) -> Image.Exif:
    exif = Image.Exif()
    try:
        with path.open("rb") as f:
            head = f.read(HEAD_BYTES)
        if head[:2] in (b"II", b"MM") and head[2:4] not in (b"*\0", b"\0*"):  # ORF "IIRO", RW2 "IIU\0": TIFF inside
            head = head[:2] + (b"*\0" if head[:2] == b"II" else b"\0*") + head[4:]
        exif.load(head)
    except Exception:  # noqa: BLE001 not TIFF-based (CR3, RAF, …) or a broken header: no EXIF from here
        return Image.Exif()
    return exif


def _preview_exif(raw) -> Image.Exif | None:
    """The preview's dated EXIF block. rawpy hands a JPEG preview with an EXIF block LibRaw writes
    first (date, make, model, orientation, from what it parsed: CR3 and RAF included); the camera's
    own block, when the preview has one, follows it and says more, so it is preferred."""
    import rawpy

    try:
        thumb = raw.extract_thumb()
        if thumb.format != rawpy.ThumbFormat.JPEG:
            return None
        with Image.open(io.BytesIO(thumb.data)) as im:
            blocks = [d for m, d in getattr(im, "applist", []) if m == "APP1" and d.startswith(b"Exif\0\0")]
    except Exception:  # noqa: BLE001 no preview, or a broken one
        return None
    for data in reversed(blocks):
        exif = Image.Exif()
        try:
            exif.load(data)
        except Exception:  # noqa: BLE001 a broken block: try the next
            continue
        if _dated(exif):
            return exif
    return None


def _dated(exif: Image.Exif) -> bool:
    if not exif:
        return False
    try:
        sub = exif.get_ifd(0x8769)
    except Exception:  # noqa: BLE001 a broken Exif IFD pointer
        sub = {}
    dates = (sub.get(0x9003), sub.get(0x9004), exif.get(0x0132))
    return any(d and not str(d).startswith(_NO_TIME) for d in dates)
