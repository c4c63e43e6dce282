"""The three images behind tests/index/fixtures/schema1/ (written again by the tests, byte for byte)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

NAMES = ("IMG_2041.png", "holiday-2019/beach_day.png", "screens/receipt.png")


def write_images(folder: Path) -> list[Path]:
    out = []
    for i, name in enumerate(NAMES):
        im = Image.new("RGB", (64, 48), (40 * i, 120, 255 - 60 * i))
        ImageDraw.Draw(im).ellipse((8 + 4 * i, 8, 40, 40), fill=(255, 255 - 80 * i, 0))
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        im.save(p, optimize=False)
        out.append(p)
    return out
