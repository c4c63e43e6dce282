"""Every backend is two towers, and each tower's torch graph (what ONNX export traces) computes what
its fast `encode` path computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cliplab.models import load_encoder
from cliplab.models.core.base import l2_normalize
from cliplab.models.core.tower import Tower, TowerEncoder


def _graph_out(tower: Tower, inputs: dict) -> np.ndarray:
    with torch.inference_mode():
        out = tower.torch_module()(*[torch.from_numpy(v) for v in inputs.values()])
    return out.float().numpy()


def _check_towers(enc, images):
    assert isinstance(enc, TowerEncoder)
    image, text = enc.model.image, enc.model.text
    assert image.modality == "image" and text.modality == "text"
    assert isinstance(image.fingerprint(), str) and len(image.fingerprint()) >= 12
    assert image.fingerprint() != text.fingerprint()
    # the image graph on real preprocessed photos equals the fast path
    batch = np.stack([image.preprocess(im) for im in images])
    fast = image.encode(batch)
    graph = _graph_out(image, {"pixel_values": batch})
    assert graph.shape == fast.shape == (len(images), image.dim)
    np.testing.assert_allclose(l2_normalize(graph), l2_normalize(fast), atol=1e-4)
    # the text graph on tokenizer ids equals encode on the strings
    texts = ["a dog running on the beach", "two children", "a red car parked on a street at night"]
    graph_t = _graph_out(text, text.tokenize(texts))
    np.testing.assert_allclose(l2_normalize(graph_t), l2_normalize(text.encode(texts)), atol=1e-4)
    # example inputs run through the graph (what export traces)
    ex = image.example_inputs(2)
    assert _graph_out(image, ex).shape == (2, image.dim)
    assert "preprocess" in image.runtime_config()
    cfg = text.runtime_config()
    assert cfg["max_length"] > 0 and set(cfg["inputs"]) == set(text.tokenize(["x"]))


@pytest.mark.parametrize("spec", ["lite", "conse", "preclip"])
def test_builtin_models_are_towers(spec, real_images):
    _check_towers(load_encoder(spec), real_images[:3])


def test_clip_is_towers(tiny_clip_dir, real_images):
    enc = load_encoder(str(tiny_clip_dir))
    _check_towers(enc, real_images[:3])
    assert enc.model.text.runtime_config()["tokenizer_file"].endswith("tokenizer.json")
    # the weights are part of the identity: other weights, other fingerprint
    assert enc.describe()["weights"] == enc.weights()


def test_fingerprints_change_with_weights(tmp_path, clip_config_dir):
    from cliplab.models.backends.clip_hf import build_random_clip

    a = load_encoder(str(build_random_clip(tmp_path / "a", clip_config_dir, tiny=True, seed=0)))
    b = load_encoder(str(build_random_clip(tmp_path / "b", clip_config_dir, tiny=True, seed=1)))
    assert a.model.image.fingerprint() != b.model.image.fingerprint()
    assert a.describe()["weights"] != b.describe()["weights"]


def test_feature_maps_through_towers(real_images, tiny_clip_dir):
    lite = load_encoder("lite")
    batch = np.stack([lite.preprocess(im) for im in real_images[:2]])
    assert tuple(lite.model.image.feature_map(batch, "head").shape) == (2, 1280, 7, 7)
    assert lite.model.image.feature_channels(0) == 16
    clip = load_encoder(str(tiny_clip_dir))
    grid = clip.model.image.feature_map(np.stack([clip.preprocess(im) for im in real_images[:2]]), -1)
    assert grid.shape[:2] == (2, clip.model.image.feature_channels(-1))
