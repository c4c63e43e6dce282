"""A pixel budget for decoding uploads: concurrent decodes may together hold at most `total`
pixels (an 8 KB PNG can claim 64 megapixels, ~400 MB decoded). A request over budget waits up to
`wait_s`, then gets a 503 with Retry-After. When the last decode lets go, freed memory is handed
back to the system (glibc keeps it otherwise)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import io
import threading
import warnings

from cliplab.serve.errors import ApiError

LARGE = 4_000_000  # pixels: after decodes this big, give memory back


class Busy(ApiError):
    status = 503
    retry_after = 2


class PixelBudget:
    def __init__(self, total: int, wait_s: float = 10.0):
        self.total, self.wait_s = total, wait_s
        self.in_use = 0
        self._large = False
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def hold(self, pixels: int):
        pixels = min(pixels, self.total)  # one image alone always fits
        with self._cond:
            if not self._cond.wait_for(lambda: self.in_use + pixels <= self.total, timeout=self.wait_s):
                raise Busy("the server is decoding too many large images; try again shortly")
            self.in_use += pixels
            self._large |= pixels >= LARGE
        try:
            yield
        finally:
            with self._cond:
                self.in_use -= pixels
                trim, self._large = self._large and self.in_use == 0, self._large and self.in_use > 0
                self._cond.notify_all()
            if trim:
                release_memory()


def image_pixels(raw: bytes, max_pixels: int) -> int:
    """Width × height from the file's header (nothing decoded); 0 when unknown or refused anyway."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(raw)) as im:
                w, h = im.size
    except Exception:  # noqa: BLE001 (not an image: load_image says why)
        return 0
    return w * h if w * h <= max_pixels else 0  # too large: refused from the header, never decoded


def release_memory() -> None:
    """Hand freed heap back to the OS (glibc's malloc_trim; elsewhere nothing to do)."""
    name = ctypes.util.find_library("c")
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(name).malloc_trim(0)
