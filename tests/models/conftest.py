"""Fixtures for the model tests: a tiny random CLIP checkpoint and awkward synthetic images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cliplab.data.shared import shared_path


def _noise(w: int, h: int, seed: int) -> np.ndarray:
    # smooth gradients + noise, so resampling filters actually matter
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / max(w, 1), yy * 255 / max(h, 1), (xx + yy) % 256], -1)
    return np.clip(base + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def odd_images() -> dict[str, Image.Image]:
    """Odd sizes and PIL modes: tall, wide, smaller than the crop, RGBA, LA, L, P (+transparency), CMYK."""
    rgba = np.dstack([_noise(300, 200, 3), np.linspace(0, 255, 300 * 200).reshape(200, 300).astype(np.uint8)])
    p_trans = Image.fromarray(_noise(170, 150, 7)).convert("P")
    p_trans.info["transparency"] = 0
    return {
        "tall": Image.fromarray(_noise(100, 333, 0)),
        "wide": Image.fromarray(_noise(501, 97, 1)),
        "tiny": Image.fromarray(_noise(7, 5, 2)),
        "exact": Image.fromarray(_noise(224, 224, 8)),
        "rgba": Image.fromarray(rgba, "RGBA"),
        "la": Image.fromarray(rgba, "RGBA").convert("LA"),
        "gray": Image.fromarray(_noise(250, 261, 4)).convert("L"),
        "palette": Image.fromarray(_noise(230, 240, 5)).convert("P"),
        "palette_transparent": p_trans,
        "cmyk": Image.fromarray(_noise(240, 230, 6)).convert("CMYK"),
    }


@pytest.fixture(scope="session")
def real_images() -> list[Image.Image]:
    folder = shared_path("data", "flickr8k-1k", "images")
    if folder is None:
        pytest.skip("shared data folder ../shared/data/flickr8k-1k/images is absent")
    files = sorted(folder.glob("*.jpg"))[:6]
    assert files, f"no .jpg files in {folder}"
    out = []
    for f in files:
        with Image.open(f) as im:
            im.load()
            out.append(im.copy())
    return out


@pytest.fixture(scope="session")
def clip_config_dir():
    d = shared_path("models", "clip-vit-b32-config")
    if d is None:
        pytest.skip("shared CLIP config ../shared/models/clip-vit-b32-config is absent")
    return d


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory, clip_config_dir):
    from cliplab.models.backends.clip_hf import build_random_clip

    return build_random_clip(tmp_path_factory.mktemp("tiny-clip"), clip_config_dir, tiny=True, seed=0)
