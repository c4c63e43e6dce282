"""Fixtures for the runtime tests: one ONNX cache per session (exports happen once), a tiny random
CLIP checkpoint, photo-like test images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def _no_jit(monkeypatch):
    """The torch reference runs eagerly: tracing + freezing `lite` costs more than these tests."""
    monkeypatch.setenv("CLIPLAB_NO_JIT", "1")


@pytest.fixture(scope="session")
def session_cache():
    """The test session's cache dir (tests/conftest.py points CLIPLAB_CACHE at a temp dir)."""
    import os
    from pathlib import Path

    return Path(os.environ["CLIPLAB_CACHE"])


@pytest.fixture
def onnx_cache(session_cache, monkeypatch):
    """Every runtime test uses the session's cache dir, never the user's ~/.cache."""
    monkeypatch.setenv("CLIPLAB_CACHE", str(session_cache))
    return session_cache


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty cache for tests that watch an export happen (XDG_CACHE_HOME, as users set it)."""
    monkeypatch.delenv("CLIPLAB_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "cliplab"


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """A tiny random CLIP with the real tokenizer (from the shared CLIP config, as the model tests use)."""
    from cliplab.data.shared import shared_path
    from cliplab.models.backends.clip_hf import build_random_clip

    cfg = shared_path("models", "clip-vit-b32-config")
    if cfg is None:
        pytest.skip("shared CLIP config ../shared/models/clip-vit-b32-config is absent")
    return build_random_clip(tmp_path_factory.mktemp("tiny-clip") / "clip", cfg, tiny=True)


def _photo(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx * yy) % 256], -1) * rng.uniform(0.5, 1.0, 3)
    return Image.fromarray(np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8))


@pytest.fixture(scope="session")
def photos() -> list[Image.Image]:
    return [
        _photo(w, h, i)
        for i, (w, h) in enumerate([(320, 240), (200, 300), (256, 256), (97, 501), (640, 480), (50, 40)])
    ]


TEXTS = [
    "a photo of a dog.",
    "A RED CAR parked on a quiet street at night!",
    "",
    "x",
    "naïve café — ünïcödé 😀 text",
    "the " * 120 + "end",  # longer than any max_length: truncated
    "two children playing football on the beach under a cloudy sky",
]


@pytest.fixture(scope="session")
def texts() -> list[str]:
    return list(TEXTS)


@pytest.fixture(scope="session")
def lite_pair(session_cache):
    """(torch encoder, ONNX fp32 encoder, ONNX int8 encoder) for `lite`: exported once per session
    into tests/conftest.py's CLIPLAB_CACHE (session_cache)."""
    from cliplab.runtime import load

    return (
        load("lite", runtime="torch"),
        load("lite", runtime="onnx"),
        load("lite", runtime="onnx", precision="int8"),
    )
