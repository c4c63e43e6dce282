"""Decoded PIL image → the 8-bit RGB picture a person sees, for every PIL mode.

- 16-bit grey (`I;16`, `I;16B`, …) is scaled by 65535/255 (÷257), as image viewers show it, so a
  dark 16-bit photo stays dark; 16-bit RGB(A) PNG/TIFF are already reduced to 8 bits by PIL.
- 32-bit integer (`I`): ÷257 when its values fit 0…65535 (16-bit data in a 32-bit container,
  as older Pillows opened 16-bit PNGs), otherwise stretched over its actual range.
- float (`F`): ×255 when its values lie in 0…1, otherwise stretched over its actual range.
- transparency (`RGBA`, `LA`, `PA`, `P` with a transparent index) is composited on white.
- `1`, `L`, `P`, `CMYK`, `YCbCr`, `LAB`, `HSV`: PIL's own conversion.
Multi-frame files (multi-page TIFF, animated GIF/WebP/PNG) give their first frame: PIL opens there.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_WIDE = {"I", "F", "I;16", "I;16L", "I;16B", "I;16N"}


def to_8bit(image: Image.Image) -> Image.Image:
    """A wide-range grey image (16/32-bit int, float) as 8-bit `L`, scaled, never clipped."""
    a = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if image.mode == "F" and lo >= 0 and hi <= 1:
        lo, hi = 0.0, 1.0
    elif image.mode != "F" and lo >= 0 and hi <= 65535:
        lo, hi = 0.0, 65535.0
    scaled = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB, compositing transparency onto white (as transformers does; a plain convert turns it black)."""
    if image.mode in _WIDE:
        image = to_8bit(image)
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")
