"""ONNX Runtime vs torch: fp32 within 1e-4 of torch after L2-normalisation, int8 at cosine ≥ 0.999
(mean) / 0.99 (min) wherever int8 is actually applied — a tiny random CLIP and the shipped `lite`."""

from __future__ import annotations

import re

import numpy as np
import pytest

from cliplab.runtime import load, runtime_label, runtime_of

FP32_TOL = 1e-4


def _cos(a, b):
    return (a * b).sum(axis=1)


@pytest.fixture(scope="module")
def clip_pair(tiny_clip, session_cache):
    """session_cache: tests/conftest.py's CLIPLAB_CACHE, which stays set for later tests."""
    return (
        load(str(tiny_clip), runtime="torch"),
        load(str(tiny_clip), runtime="onnx"),
        load(str(tiny_clip), runtime="onnx", precision="int8"),
    )


def test_tiny_clip_fp32_matches_torch(clip_pair, photos, texts):
    torch_enc, fp32, _ = clip_pair
    assert runtime_of(fp32) == {"runtime": "onnx", "precision": {"image": "fp32", "text": "fp32"}, "device": "cpu"}
    assert np.abs(fp32.encode_images(photos) - torch_enc.encode_images(photos)).max() <= FP32_TOL
    assert np.abs(fp32.encode_texts(texts) - torch_enc.encode_texts(texts)).max() <= FP32_TOL


def test_tiny_clip_int8_close_to_torch(clip_pair, photos, texts):
    """int8 wherever it keeps cosine ≥ 0.999 to fp32 on the check inputs, fp32 (saying why) elsewhere.
    With today's releases (transformers 5.24, onnx 1.23, onnxruntime 1.24–1.32) the tiny random CLIP
    misses that line (image 0.9986, text 0.957) where earlier ones passed it, so each tower is held
    to the branch it took, both checked for real."""
    torch_enc, fp32, int8 = clip_pair
    assert runtime_label(int8).startswith("onnx")
    pairs = {
        "image": (int8.encode_images(photos), torch_enc.encode_images(photos), fp32.encode_images(photos)),
        "text": (int8.encode_texts(texts), torch_enc.encode_texts(texts), fp32.encode_texts(texts)),
    }
    for side, (got, want, plain) in pairs.items():
        tower = getattr(int8, side)
        if tower.precision == "int8":
            cos = _cos(got, want)
            assert cos.mean() >= 0.999 and cos.min() >= 0.99, (side, cos.mean(), cos.min())
            assert tower.graph["file"] == f"{side}.int8.onnx"  # really another graph
        else:
            assert re.fullmatch(r"fp32 \(int8 kept fp32: int8 cosine 0\.\d+ < 0\.999\)", tower.precision), (
                tower.precision
            )
            assert tower.graph["file"] == f"{side}.onnx"
            np.testing.assert_array_equal(got, plain)  # the fp32 graph, not a silently worse one


def test_identity_is_the_torch_models(clip_pair):
    from cliplab.models.core.tower import TowerEncoder
    from cliplab.runtime import without_runtime

    torch_enc, fp32, int8 = clip_pair
    assert isinstance(fp32, TowerEncoder) and type(fp32.model.image).__name__ == "OnnxTower"  # one encoder class
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


def test_tiny_clip_vision_graph_is_fused(clip_pair):
    """The exported ViT runs as ORT's fused Attention ops (QAttention in int8) and its patch
    embedding as a MatMul: the form that is fast on CPU (cliplab.models.backends.clip_export). The last
    layer is computed for the CLS token only, so it is not one of the fused ops."""
    import collections

    import onnx

    torch_enc, fp32, int8 = clip_pair
    layers = torch_enc.model.image.clip.config.vision_config.num_hidden_layers
    graphs = ["image.onnx"] + (["image.int8.onnx"] if int8.image.precision == "int8" else [])
    ops = {g: collections.Counter(n.op_type for n in onnx.load(str(fp32.entry.path(g))).graph.node) for g in graphs}
    assert ops["image.onnx"]["Attention"] == layers - 1
    assert ops["image.onnx"]["Conv"] == 0 and ops["image.onnx"]["SkipLayerNormalization"] == 0
    if "image.int8.onnx" in ops:  # kept only where int8 passed its cosine check (see the test above)
        assert ops["image.int8.onnx"]["QAttention"] == layers - 1


def test_split_batches_equal_whole_batches(clip_pair, photos):
    """An image batch split across concurrent calls gives what one call gives."""
    _, fp32, _ = clip_pair
    x = np.stack([fp32.preprocess(p) for p in photos])
    callers = fp32.image.callers
    try:
        fp32.image.callers = 1
        whole = fp32.encode_image_batch(x)
        fp32.image.callers = 3
        split = fp32.encode_image_batch(x)
    finally:
        fp32.image.callers = callers
    assert split.shape == whole.shape == (len(photos), fp32.dim)
    assert np.abs(split - whole).max() < 1e-5
