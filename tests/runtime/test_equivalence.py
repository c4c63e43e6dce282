"""ONNX Runtime vs torch: fp32 within 1e-4 of torch after L2-normalisation, int8 at cosine ≥ 0.999
(mean) / 0.99 (min) wherever int8 is actually applied — a tiny random CLIP and the shipped `lite`."""

from __future__ import annotations

import numpy as np
import pytest

from cliplab.runtime import load, runtime_label, runtime_of

FP32_TOL = 1e-4


def _cos(a, b):
    return (a * b).sum(axis=1)


@pytest.fixture(scope="module")
def clip_pair(tiny_clip, session_cache):
    import os

    os.environ["CLIPLAB_CACHE"] = str(session_cache)
    try:
        return (
            load(str(tiny_clip), runtime="torch"),
            load(str(tiny_clip), runtime="onnx"),
            load(str(tiny_clip), runtime="onnx", precision="int8"),
        )
    finally:
        os.environ.pop("CLIPLAB_CACHE", None)


def test_tiny_clip_fp32_matches_torch(clip_pair, photos, texts):
    torch_enc, fp32, _ = clip_pair
    assert runtime_of(fp32) == {"runtime": "onnx", "precision": {"image": "fp32", "text": "fp32"}, "device": "cpu"}
    assert np.abs(fp32.encode_images(photos) - torch_enc.encode_images(photos)).max() <= FP32_TOL
    assert np.abs(fp32.encode_texts(texts) - torch_enc.encode_texts(texts)).max() <= FP32_TOL


def test_tiny_clip_int8_close_to_torch(clip_pair, photos, texts):
    torch_enc, _, int8 = clip_pair
    assert int8.precision == {"image": "int8", "text": "int8"}  # both transformer towers quantised
    assert runtime_label(int8) == "onnx int8"
    for got, want in (
        (int8.encode_images(photos), torch_enc.encode_images(photos)),
        (int8.encode_texts(texts), torch_enc.encode_texts(texts)),
    ):
        cos = _cos(got, want)
        assert cos.mean() >= 0.999 and cos.min() >= 0.99, (cos.mean(), cos.min())
    # the int8 graph really is another graph
    assert int8.image.graph["file"] == "image.int8.onnx" and int8.text.graph["file"] == "text.int8.onnx"


def test_identity_is_the_torch_models(clip_pair):
    from cliplab.runtime import without_runtime

    torch_enc, fp32, int8 = clip_pair
    assert without_runtime(fp32.describe()) == without_runtime(torch_enc.describe())
    assert without_runtime(int8.describe()) == without_runtime(torch_enc.describe())
    assert fp32.dim == torch_enc.dim and fp32.logit_scale == pytest.approx(torch_enc.logit_scale)


def test_lite_fp32_matches_torch(lite_pair, photos, texts):
    torch_enc, fp32, _ = lite_pair
    assert np.abs(fp32.encode_images(photos) - torch_enc.encode_images(photos)).max() <= FP32_TOL
    assert np.abs(fp32.encode_texts(texts) - torch_enc.encode_texts(texts)).max() <= FP32_TOL


def test_lite_int8_is_honest(lite_pair, photos, texts):
    """The EfficientNet tower is kept fp32 (no int8 recipe reaches cosine 0.999) and says so; the
    MiniLM text tower is int8 only if it passed the check at quantize time."""
    torch_enc, _, int8 = lite_pair
    assert int8.precision["image"] == "fp32 (int8 kept fp32: CNN)"
    assert np.abs(int8.encode_images(photos) - torch_enc.encode_images(photos)).max() <= FP32_TOL
    got, want = int8.encode_texts(texts), torch_enc.encode_texts(texts)
    if int8.precision["text"] == "int8":
        cos = _cos(got, want)
        assert cos.mean() >= 0.999 and cos.min() >= 0.99
    else:
        assert int8.precision["text"].startswith("fp32 (int8 kept fp32: int8 cosine")
        assert np.abs(got - want).max() <= FP32_TOL
    assert "image kept fp32: CNN" in runtime_label(int8)
