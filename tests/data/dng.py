"""Write small, valid DNG files (TIFF/EP with a Bayer CFA) that LibRaw decodes: no library writes DNG.

The raw image is an RGGB mosaic of a picture given as RGB, stored linear (the inverse sRGB curve)
as 16-bit samples, with a colour matrix that says "the camera sees linear sRGB", so LibRaw's
demosaic gives the picture back. An optional JPEG preview goes into a SubIFD (NewSubFileType 1),
where cameras put theirs; `extract_thumb` finds it there. Orientation and the capture date go where
cameras write them: IFD0's Orientation tag and the Exif IFD's DateTimeOriginal.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

SHORT, LONG, ASCII, RATIONAL, SRATIONAL, BYTE = 3, 4, 2, 5, 10, 1
_SIZE = {BYTE: 1, ASCII: 1, SHORT: 2, LONG: 4, RATIONAL: 8, SRATIONAL: 8}
_CODE = {BYTE: "B", SHORT: "H", LONG: "I", RATIONAL: "II", SRATIONAL: "ii"}
WHITE = 65535
# XYZ (D65) → linear sRGB: DNG's ColorMatrix1 maps XYZ to camera space, and this camera is linear sRGB
XYZ_TO_SRGB = [[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]]


class _Tiff:
    """A little-endian TIFF assembled front to back: blobs and IFDs appended, offsets returned."""

    def __init__(self):
        self.buf = bytearray(b"II*\0\0\0\0\0")

    def _align(self) -> None:
        if len(self.buf) % 2:
            self.buf += b"\0"

    def blob(self, data: bytes) -> int:
        self._align()
        off = len(self.buf)
        self.buf += data
        return off

    def ifd(self, entries: list[tuple[int, int, list | str | bytes]], first: bool = False) -> int:
        self._align()
        off = len(self.buf)
        entries = sorted(entries)
        extra = bytearray()
        extra_at = off + 2 + 12 * len(entries) + 4
        body = struct.pack("<H", len(entries))
        for tag, typ, values in entries:
            if typ == ASCII:
                raw = (values.encode() if isinstance(values, str) else values) + b"\0"
                count = len(raw)
            else:
                flat = [int(x) for v in values for x in (v if isinstance(v, tuple) else (v,))]
                raw = struct.pack("<" + _CODE[typ][0] * len(flat), *flat)
                count = len(values)
            if len(raw) <= 4:
                field = raw.ljust(4, b"\0")
            else:
                field = struct.pack("<I", extra_at + len(extra))
                extra += raw + (b"\0" if len(raw) % 2 else b"")
            body += struct.pack("<HHI", tag, typ, count) + field
        self.buf += body + b"\0\0\0\0" + extra
        if first:
            self.buf[4:8] = struct.pack("<I", off)
        return off


def _rational(x: float, den: int = 10000) -> tuple[int, int]:
    return (round(x * den), den)


def mosaic(rgb: Image.Image) -> np.ndarray:
    """The RGGB Bayer samples (16-bit, linear light) a sensor would record for this picture."""
    a = np.asarray(rgb.convert("RGB"), np.float64) / 255.0
    lin = np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)
    h, w = lin.shape[:2]
    cfa = np.empty((h, w), np.float64)
    cfa[0::2, 0::2] = lin[0::2, 0::2, 0]  # R
    cfa[0::2, 1::2] = lin[0::2, 1::2, 1]  # G
    cfa[1::2, 0::2] = lin[1::2, 0::2, 1]  # G
    cfa[1::2, 1::2] = lin[1::2, 1::2, 2]  # B
    return np.clip(np.rint(cfa * WHITE), 0, WHITE).astype("<u2")


def write_dng(
    path: str | Path,
    picture: Image.Image,
    preview: Image.Image | None = None,
    orientation: int = 1,
    date: str | None = "2023:07:14 10:20:30",
    make: str = "Cliplab",
    model: str = "Test DNG",
    preview_exif: Image.Exif | None = None,
) -> Path:
    """A DNG of `picture` (even width and height), turned as `orientation` says it must be shown;
    with `preview` as an embedded baseline JPEG when given (carrying `preview_exif`). No date: `date=None`."""
    w, h = picture.size
    assert w % 2 == 0 and h % 2 == 0, "a Bayer mosaic needs an even size"
    t = _Tiff()
    cfa_at = t.blob(mosaic(picture).tobytes())
    sub = []
    if preview is not None:
        buf = io.BytesIO()
        extra = {"exif": preview_exif.tobytes()} if preview_exif is not None else {}
        preview.convert("RGB").save(buf, "JPEG", quality=90, **extra)
        jpg = buf.getvalue()
        jpg_at = t.blob(jpg)
        pw, ph = preview.size
        sub.append(
            t.ifd(
                [
                    (254, LONG, [1]),  # NewSubFileType: a reduced-resolution preview
                    (256, LONG, [pw]),
                    (257, LONG, [ph]),
                    (258, SHORT, [8, 8, 8]),
                    (259, SHORT, [7]),  # JPEG
                    (262, SHORT, [6]),  # YCbCr
                    (273, LONG, [jpg_at]),
                    (277, SHORT, [3]),
                    (278, LONG, [ph]),
                    (279, LONG, [len(jpg)]),
                ]
            )
        )
    exif_ifd = t.ifd([(36867, ASCII, date), (36868, ASCII, date)]) if date else None
    entries = [
        (254, LONG, [0]),  # NewSubFileType: the main (raw) image
        (256, LONG, [w]),
        (257, LONG, [h]),
        (258, SHORT, [16]),
        (259, SHORT, [1]),  # uncompressed
        (262, SHORT, [32803]),  # PhotometricInterpretation: CFA
        (271, ASCII, make),
        (272, ASCII, model),
        (273, LONG, [cfa_at]),
        (274, SHORT, [orientation]),
        (277, SHORT, [1]),
        (278, LONG, [h]),
        (279, LONG, [w * h * 2]),
        (284, SHORT, [1]),
        (33421, SHORT, [2, 2]),  # CFARepeatPatternDim
        (33422, BYTE, [0, 1, 1, 2]),  # CFAPattern: RGGB
        (50706, BYTE, [1, 4, 0, 0]),  # DNGVersion
        (50707, BYTE, [1, 1, 0, 0]),  # DNGBackwardVersion
        (50708, ASCII, f"{make} {model}"),  # UniqueCameraModel
        (50714, LONG, [0]),  # BlackLevel
        (50717, LONG, [WHITE]),  # WhiteLevel
        (50721, SRATIONAL, [_rational(x) for row in XYZ_TO_SRGB for x in row]),  # ColorMatrix1
        (50728, RATIONAL, [(1, 1), (1, 1), (1, 1)]),  # AsShotNeutral: grey is grey
        (50778, SHORT, [21]),  # CalibrationIlluminant1: D65
    ]
    if date:
        entries += [(306, ASCII, date), (34665, LONG, [exif_ifd])]
    if sub:
        entries.append((330, LONG, sub))  # SubIFDs
    t.ifd(entries, first=True)
    path = Path(path)
    path.write_bytes(bytes(t.buf))
    return path
