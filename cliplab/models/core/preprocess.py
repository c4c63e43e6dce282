"""Image preprocessing with PIL + numpy (torchvision is not available here).

`ResizeCropNormalize` reproduces transformers' CLIPImageProcessor (PIL backend, `CLIPImageProcessorPil`)
to the bit: alpha composited onto white, shortest side resized with PIL resampling (the long side is
truncated with int()), centre crop (zero-padding an image smaller than the crop, extra row/column
before it), uint8 → float64 × rescale_factor → float32, then per-channel (x - mean) / std in float32 (done as
a 256-entry table per channel: the same bits, a fraction of the time).
The same transform, with other sizes and statistics, serves the CNN towers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from cliplab.data.images import to_rgb  # noqa: F401  (re-exported: preprocessing starts with it)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ResizeCropNormalize:
    shortest_edge: int = 224
    crop: int = 224
    mean: tuple = CLIP_MEAN
    std: tuple = CLIP_STD
    resample: int = Image.BICUBIC
    rescale_factor: float = 1 / 255
    # open_clip/SigLIP (torchvision's Resize/CenterCrop): "squash" resizes to crop×crop with no crop;
    # center "round" places the crop like torchvision (round half to even), "floor" like transformers.
    # repr=False: the repr is part of existing towers' fingerprints, which must not change.
    resize: str = field(default="shortest", repr=False)
    center: str = field(default="floor", repr=False)

    def __call__(self, image: Image.Image, out: np.ndarray | None = None) -> np.ndarray:
        """`out`: a (3, crop, crop) float32 array to write into (a row of a preallocated batch)."""
        return self.normalise(self.pixels(image), out)

    def pixels(self, image: Image.Image) -> np.ndarray:
        """RGB, shortest side resized, centre-cropped: a (crop, crop, 3) uint8 view."""
        image = to_rgb(image)
        w, h = image.size
        if self.resize == "squash":
            size = (self.crop, self.crop)
            return np.asarray(image if image.size == size else image.resize(size, resample=self.resample), np.uint8)
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
        size = (new_short, new_long) if w <= h else (new_long, new_short)
        if (w, h) != size:
            image = image.resize(size, resample=self.resample)
        return center_crop(np.asarray(image, dtype=np.uint8), self.crop, self.center == "round")

    def normalise(self, pixels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """(H, W, 3) uint8 → (3, H, W) float32 by a table lookup per channel: the same bits as
        transformers' arithmetic at a fraction of its time (benchmarks/int8_vit.py section 5)."""
        lut = self.table()
        if out is None:
            out = np.empty((3, *pixels.shape[:2]), np.float32)
        for c in range(3):  # uint8 indices never leave the 256-entry table, so "wrap" is exact,
            # and unlike the default mode it writes into `out` without a buffered copy (~30 % faster)
            np.take(lut[c], pixels[..., c], out=out[c], mode="wrap")
        return out

    def table(self) -> np.ndarray:
        """(3, 256) float32: what each uint8 value of each channel becomes. Built with transformers'
        exact arithmetic (float64 rescale, downcast, then (x - mean) / std in float32), so a lookup
        gives the same bits as computing every pixel."""
        lut = _TABLES.get(self)
        if lut is None:
            v = (np.arange(256, dtype=np.float64)[:, None] * self.rescale_factor).astype(np.float32)
            lut = ((v - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)).T
            lut = _TABLES[self] = np.ascontiguousarray(lut)
        return lut


_TABLES: dict = {}  # ResizeCropNormalize (frozen, hashable) → its lookup table


def center_crop(arr: np.ndarray, size: int, rounded: bool = False) -> np.ndarray:
    """Centre crop (H, W, C) to size×size, zero-padding first if the image is smaller.

    An odd padding puts the extra row/column before the image (transformers uses ceil there).
    `rounded`: the offset is round((H - size) / 2) as torchvision's CenterCrop has it (open_clip)."""
    h, w = arr.shape[:2]
    if h < size or w < size:
        ph, pw = max(size - h, 0), max(size - w, 0)
        arr = np.pad(arr, ((ph - ph // 2, ph // 2), (pw - pw // 2, pw // 2), (0, 0)))
        h, w = arr.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    if rounded:
        top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return arr[top : top + size, left : left + size]
