"""`data/ocr.py`: the text in an image (RapidOCR), bounded in size, confident lines only."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw, ImageFont

from cliplab.data import ocr
from cliplab.errors import CliplabError, ImageError


def lines_image(lines, size=(360, 300), font=26, bg=(250, 250, 245), fg="black", top=30) -> Image.Image:
    """Text as a person would photograph or scan it (Pillow's own TrueType font)."""
    im = Image.new("RGB", size, bg)
    draw, f = ImageDraw.Draw(im), ImageFont.load_default(size=font)
    for i, line in enumerate(lines):
        draw.text((30, top + i * int(font * 2.2)), line, fill=fg, font=f)
    return im


def receipt() -> Image.Image:
    return lines_image(["CORNER GROCERY", "Milk 1.20", "Bread 2.30", "TOTAL 42.50"], size=(360, 420))


def sign() -> Image.Image:
    """A big street sign on a wide photo: read after bounding to MAX_SIDE."""
    return lines_image(["HARBOUR STREET"], size=(2600, 900), font=150, bg=(20, 70, 160), fg="white", top=300)


def page() -> Image.Image:
    text = ["Minutes of the lighthouse committee", "The keeper reported a broken lamp", "Next meeting in April"]
    return lines_image(text, size=(700, 400), font=22)


def test_a_receipt_is_read_line_by_line_in_order(tmp_path):
    from cliplab.api import image_text

    receipt().save(tmp_path / "receipt.jpg", quality=92)
    assert image_text(tmp_path / "receipt.jpg").splitlines() == [
        "CORNER GROCERY",
        "Milk 1.20",
        "Bread 2.30",
        "TOTAL 42.50",
    ]
    lines = ocr.read_lines(receipt())
    assert all(ocr.MIN_SCORE <= score <= 1 for _, score in lines)


def test_a_large_sign_is_bounded_then_read():
    im = sign()
    assert max(ocr.bounded(im).size) == ocr.MAX_SIDE and ocr.bounded(im).size[1] == round(900 * 1280 / 2600)
    small = Image.new("RGB", (200, 100))
    assert ocr.bounded(small) is small  # never scaled up
    assert "HARBOUR STREET" in ocr.read_text(im)


def test_a_scanned_page_keeps_its_words_apart():
    words = ocr.read_text(page()).lower().split()
    assert {"lighthouse", "committee", "keeper", "broken", "lamp", "april"} <= set(words)


def test_no_text_no_words(shared):
    photo = Image.open(next((shared / "data" / "cifar10-dev" / "images").rglob("*.jpg"))).convert("RGB")
    assert ocr.read_text(photo) == ""
    assert ocr.read_text(Image.new("RGB", (300, 200), "white")) == ""


def test_engine_is_named_and_loaded_once():
    assert ocr.available() and ocr.unavailable_reason() is None
    assert ocr.engine_name().startswith("rapidocr-onnxruntime ")
    assert ocr._engine() is ocr._engine()


def test_missing_engine_says_what_to_install(monkeypatch):
    monkeypatch.setattr(ocr.importlib.util, "find_spec", lambda name: None)
    assert not ocr.available()
    assert "install cliplab[ocr] (rapidocr-onnxruntime)" in ocr.unavailable_reason()
    ocr._engine.cache_clear()
    try:
        with pytest.raises(CliplabError, match=r"cliplab\[ocr\]"):
            ocr._engine()
    finally:
        ocr._engine.cache_clear()


def test_an_engine_failure_is_an_image_error(monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("onnx said no")

    monkeypatch.setattr(ocr, "_engine", lambda: broken)
    with pytest.raises(ImageError, match="text recognition failed .*onnx said no"):
        ocr.read_text(receipt())
