"""Text inside an image (OCR) with RapidOCR: PP-OCRv4 detection + recognition on ONNX Runtime, whose
models ship inside the `rapidocr-onnxruntime` wheel (the `cliplab[ocr]` extra), so nothing downloads.

Kept cheap, because most photos hold no text:
- the image is first bounded to MAX_SIDE px on its longest side (a 12 MP photo costs what a 1 MP one does);
- the detector sees it at that size (RapidOCR's default scales every image *up* to 736 px on its short
  side: ~7× the pixels of a 320×240 photo), and recognition runs only on the boxes it finds: a photo
  without text costs one detector pass (~0.1 s) and nothing else;
- the angle classifier (upside-down lines) is off: such text is rare in photos and it costs a pass per box.
Boxes are widened a little more than RapidOCR's default (unclip 2.0, not 1.6): its recogniser, trained
mostly on Chinese, drops the spaces of small Latin text in tight boxes ("aboutharbourmaintenance"),
which keyword search could not match. Lines scoring under MIN_SCORE are dropped.

One engine per process, loaded on first use; calls are serialised by a lock (RapidOCR keeps per-call
state on the engine; ONNX Runtime uses every core for one image anyway).
"""

from __future__ import annotations

import functools
import importlib.util
import threading

import numpy as np
from PIL import Image

from cliplab.errors import CliplabError, ImageError

HINT = "install cliplab[ocr] (rapidocr-onnxruntime)"
MAX_SIDE = 1280  # longest side an image is read at; print-size text on a phone photo stays ≥ ~10 px high
MIN_SCORE = 0.7  # recognition confidence below which a line is dropped (real lines score 0.9+)
UNCLIP = 2.0  # how far a detected box is widened before recognition (RapidOCR: 1.6)
MAX_CHARS = 10_000  # of one image's text

_lock = threading.Lock()


def unavailable_reason() -> str | None:
    """Why text cannot be read here (None: it can). Does not import the engine."""
    try:
        found = importlib.util.find_spec("rapidocr_onnxruntime") is not None
    except (ImportError, ValueError):
        found = False
    return None if found else f"reading text in images needs its extra: {HINT}"


def available() -> bool:
    return unavailable_reason() is None


@functools.cache
def engine_name() -> str:
    """What the `ocr` table records as the engine of a text: 'rapidocr-onnxruntime 1.4.4'."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"rapidocr-onnxruntime {version('rapidocr-onnxruntime')}"
    except PackageNotFoundError:
        return "rapidocr-onnxruntime"


@functools.cache
def _engine():
    why = unavailable_reason()
    if why:
        raise CliplabError(why)
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as e:  # installed but broken (e.g. onnxruntime or opencv missing)
        raise CliplabError(f"reading text in images: {e}; {HINT}") from None
    return RapidOCR(det_limit_type="max", det_limit_side_len=MAX_SIDE, det_unclip_ratio=UNCLIP)


def bounded(image: Image.Image) -> Image.Image:
    """The image with its longest side at most MAX_SIDE (never scaled up)."""
    w, h = image.size
    if max(w, h) <= MAX_SIDE:
        return image
    s = MAX_SIDE / max(w, h)
    return image.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BILINEAR, reducing_gap=2.0)


def read_lines(image: Image.Image) -> list[tuple[str, float]]:
    """(line, confidence) of each line of text found, in reading order (top to bottom, then left to
    right, as RapidOCR sorts its boxes). Raises ImageError when the engine fails on this image."""
    small = bounded(image)
    rgb = np.asarray(small if small.mode == "RGB" else small.convert("RGB"))
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])  # RapidOCR takes arrays in OpenCV's channel order
    engine = _engine()
    try:
        with _lock:
            found, _ = engine(bgr, use_cls=False)
    except Exception as e:  # noqa: BLE001 (a third-party model failing on one image must not end a pass)
        raise ImageError(f"text recognition failed ({type(e).__name__}: {e})") from None
    out = []
    for _box, text, score in found or []:
        text = " ".join(str(text).split())
        if float(score) >= MIN_SCORE and any(c.isalnum() for c in text):
            out.append((text, round(float(score), 4)))
    return out


def read_text(image: Image.Image) -> str:
    """The text in an image, one line per detected line ('' when there is none)."""
    return "\n".join(t for t, _ in read_lines(image))[:MAX_CHARS]
