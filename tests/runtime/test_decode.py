"""Big JPEGs are decoded at a reduced scale (Image.draft) when the model input is much smaller;
small images and other formats decode exactly as before."""

from __future__ import annotations

import numpy as np
from PIL import Image

from cliplab.data.images import load_image
from cliplab.pipeline import input_size


def _save(path, w, h, fmt="JPEG"):
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 256], -1).astype(np.uint8)
    Image.fromarray(arr).save(path, fmt)
    return path


def test_big_jpeg_is_drafted(tmp_path):
    big = _save(tmp_path / "big.jpg", 2000, 1200)
    full, drafted = load_image(big), load_image(big, draft=224)
    assert full.size == (2000, 1200)
    assert drafted.size == (500, 300)  # 1/4 scale: the largest reduction that keeps the short side ≥ 224
    assert drafted.mode == "RGB"


def test_small_or_non_jpeg_images_are_untouched(tmp_path):
    small = _save(tmp_path / "small.jpg", 400, 300)  # short side < 2 × 224: nothing to gain
    png = _save(tmp_path / "big.png", 1200, 1000, "PNG")
    for p in (small, png):
        assert np.array_equal(np.asarray(load_image(p, draft=224)), np.asarray(load_image(p)))


def test_drafted_embedding_matches_full_decode(lite_pair, tmp_path):
    _, enc, _ = lite_pair
    assert input_size(enc) == 224
    big = _save(tmp_path / "big.jpg", 1800, 1350)
    full = enc.encode_images([load_image(big)])
    drafted = enc.encode_images([load_image(big, draft=input_size(enc))])
    assert float((full * drafted).sum()) > 0.99
