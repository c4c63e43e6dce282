"""Every PIL mode decodes to what a person sees: each case writes a real photo in one mode/format and
compares what load_image returns with the 8-bit RGB rendering of the same picture — pixel by pixel
(mean |difference|) and through the `lite` model (cosine ≥ 0.99)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cliplab.data.images import load_image

CASES = [
    "I;16 png",
    "I;16B tiff",
    "I tiff",
    "I tiff wide range",
    "F tiff",
    "F tiff wide range",
    "RGB 16-bit png",
    "LA png",
    "P png transparency",
    "1 png",
    "CMYK jpeg",
    "YCbCr jpeg",
    "I;16 tiff",
    "multi-page tiff",
    "animated gif",
    "animated webp",
    "apng",
]


@pytest.fixture(scope="module")
def photo(shared) -> Image.Image:
    first = sorted((shared / "data" / "imagenet-samples" / "images").glob("*.jpg"))[7]
    return load_image(first)


def _png16_rgb(path: Path, rgb8: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG (PIL cannot write one), each sample v·257."""
    h, w, _ = rgb8.shape
    raw = b"".join(b"\0" + (rgb8[y].astype(">u2") * 257).tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def _make(case: str, photo: Image.Image, d: Path) -> tuple[Path, Image.Image, float]:
    """(file, the expected 8-bit RGB picture, allowed mean |pixel difference|)."""
    grey = photo.convert("L")
    g = np.asarray(grey)
    rgb = np.asarray(photo)
    hole = (slice(0, g.shape[0] // 3), slice(0, g.shape[1] // 3))  # a transparent corner: white when shown
    p = d / case.replace(" ", "_").replace(";", "")
    if case in ("I;16 png", "I;16 tiff", "I;16B tiff"):
        v = g.astype(np.uint16) * 257
        im = Image.frombytes("I;16B", grey.size, v.astype(">u2").tobytes()) if "B" in case else Image.fromarray(v)
        p = p.with_suffix(".png" if "png" in case else ".tif")
        im.save(p)
        assert Image.open(p).mode.startswith("I;16")
        return p, grey.convert("RGB"), 0.0
    if case == "I tiff":  # 16-bit data in a 32-bit container: ÷257
        Image.fromarray(g.astype(np.int32) * 257).save(p := p.with_suffix(".tif"))
        return p, grey.convert("RGB"), 0.0
    if case == "I tiff wide range":  # beyond 16 bits: stretched over the actual range
        Image.fromarray(g.astype(np.int32) * 100_000 - 7_000_000).save(p := p.with_suffix(".tif"))
        stretched = (g.astype(float) - g.min()) * 255 / (g.max() - g.min())
        return p, Image.fromarray(np.rint(stretched).astype(np.uint8)).convert("RGB"), 0.0
    if case == "F tiff":
        Image.fromarray(g.astype(np.float32) / 255).save(p := p.with_suffix(".tif"))
        return p, grey.convert("RGB"), 0.0
    if case == "F tiff wide range":
        Image.fromarray(g.astype(np.float32) * 3.5 + 10).save(p := p.with_suffix(".tif"))
        stretched = (g.astype(float) - g.min()) * 255 / (g.max() - g.min())
        return p, Image.fromarray(np.rint(stretched).astype(np.uint8)).convert("RGB"), 0.6
    if case == "RGB 16-bit png":
        _png16_rgb(p := p.with_suffix(".png"), rgb)
        return p, photo, 0.0
    if case == "LA png":
        alpha = np.full(g.shape, 255, np.uint8)
        alpha[hole] = 0
        im = grey.convert("LA")
        im.putalpha(Image.fromarray(alpha))
        im.save(p := p.with_suffix(".png"))
        assert Image.open(p).mode == "LA"
        want = np.asarray(grey.convert("RGB")).copy()
        want[hole] = 255
        return p, Image.fromarray(want), 0.0
    if case == "P png transparency":
        pal = photo.quantize(255)  # index 255 stays free for the transparent corner
        idx = np.asarray(pal).copy()
        idx[hole] = 255
        im = Image.fromarray(idx, "P")
        im.putpalette(pal.getpalette()[: 255 * 3] + [0, 0, 0])
        im.save(p := p.with_suffix(".png"), transparency=255)
        want = np.asarray(pal.convert("RGB")).copy()
        want[hole] = 255
        return p, Image.fromarray(want), 0.0
    if case == "1 png":
        bw = grey.convert("1")
        bw.save(p := p.with_suffix(".png"))
        return p, bw.convert("RGB"), 0.0
    if case in ("CMYK jpeg", "YCbCr jpeg"):
        photo.convert(case.split()[0]).save(p := p.with_suffix(".jpg"), quality=95)
        return p, photo, 4.0
    if case == "multi-page tiff":
        photo.save(p := p.with_suffix(".tif"), save_all=True, append_images=[Image.new("RGB", photo.size)])
        assert Image.open(p).n_frames == 2
        return p, photo, 0.0
    frames = [photo, Image.new("RGB", photo.size, (0, 0, 0))]  # first frame the photo, then black
    if case == "animated gif":
        first = photo.quantize(256)
        first.save(p := p.with_suffix(".gif"), save_all=True, append_images=[frames[1].quantize(2)], duration=100)
        assert Image.open(p).n_frames == 2
        return p, first.convert("RGB"), 0.5
    if case == "animated webp":
        photo.save(p := p.with_suffix(".webp"), save_all=True, append_images=frames[1:], lossless=True, duration=100)
    else:  # apng
        photo.save(p := p.with_suffix(".png"), save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(p).n_frames == 2
    return p, photo, 0.0


@pytest.mark.parametrize("case", CASES)
def test_mode_decodes_as_seen(case, photo, tmp_path, lite_encoder):
    path, want, tolerance = _make(case, photo, tmp_path)
    got = load_image(path)
    assert got.mode == "RGB" and got.size == want.size
    diff = np.abs(np.asarray(got, np.float32) - np.asarray(want.convert("RGB"), np.float32))
    assert diff.mean() <= tolerance, f"{case}: mean |diff| {diff.mean():.2f}"
    a, b = lite_encoder.encode_images([got, want.convert("RGB")])
    assert float(a @ b) >= 0.99


def test_16bit_keeps_a_dark_picture_dark(tmp_path):
    """Scaled by 65535, not by its own range: a dim 16-bit image is not brightened (nor clipped to white)."""
    a = np.linspace(0, 4000, 64 * 48, dtype=np.float64).reshape(48, 64).astype(np.uint16)
    Image.fromarray(a).save(p := tmp_path / "dim.png")
    got = np.asarray(load_image(p))
    assert got.max() == round(4000 / 257) and got.min() == 0


def test_pa_is_composited_on_white(photo):
    """`PA` (palette + alpha) exists only in memory (no format writes it): to_rgb still shows it right."""
    from cliplab.data.decode import to_rgb

    pal = photo.quantize(64)
    im = pal.convert("PA")
    alpha = np.full((photo.height, photo.width), 255, np.uint8)
    alpha[:10, :10] = 0
    im.putalpha(Image.fromarray(alpha))
    want = np.asarray(pal.convert("RGB")).copy()
    want[:10, :10] = 255
    assert np.array_equal(np.asarray(to_rgb(im)), want)
