"""The frozen-tower feature cache: computed once, keyed by file state, failures never cached."""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from cliplab.train.features import FeatureStore, apply_view, image_features, text_features
from tests.helpers import make_image


class CountingTower:
    """Mean colour as 'pooled' (3-d) and its sum as 'logits' (1-d); counts the images it runs."""

    id, spec, batch_size = "counting-v1", "counting", 4
    feature_dims = {"pooled": 3, "logits": 1}

    def __init__(self):
        self.seen = 0

    def preprocess(self, image):
        return np.asarray(image.convert("RGB").resize((4, 4)), np.float32).transpose(2, 0, 1) / 255

    def run(self, batch):
        if isinstance(batch, list):  # texts
            self.seen += len(batch)
            v = torch.tensor([[len(t), 0.0, 0.0, 1.0] for t in batch])
            return {"pooled": v[:, :3], "logits": v[:, 3:]}
        self.seen += len(batch)
        m = torch.from_numpy(batch.mean(axis=(2, 3)))
        return {"pooled": m, "logits": m.sum(dim=1, keepdim=True)}


def test_store_round_trip_and_wrong_size_ignored(tmp_path):
    s = FeatureStore(tmp_path / "f.sqlite", 3)
    s.put({"a": np.array([1, 2, 3]), "b": np.array([1, 2])})
    got = s.get(["a", "b", "c"])
    s.close()
    assert list(got) == ["a"] and got["a"].tolist() == [1, 2, 3]


def test_images_cached_by_file_state_failures_not_cached(tmp_path):
    red = make_image(tmp_path / "red.png", color=(255, 0, 0))
    blue = make_image(tmp_path / "blue.png", color=(0, 0, 255))
    (tmp_path / "bad.png").write_bytes(b"")
    paths = [str(red), str(tmp_path / "bad.png"), str(blue)]
    tower = CountingTower()
    feats, failed = image_features(tower, paths, cache_dir=tmp_path / "cache", progress=False)
    assert tower.seen == 2 and list(failed) == [1]
    np.testing.assert_allclose(feats["pooled"][0], [1, 0, 0], atol=1e-6)
    assert np.isnan(feats["pooled"][1]).all() and feats["logits"].shape == (3, 1)

    again, failed = image_features(tower, paths, cache_dir=tmp_path / "cache", progress=False)
    assert tower.seen == 2 and list(failed) == [1]  # all from the cache; the bad file retried, still bad
    np.testing.assert_array_equal(again["pooled"][[0, 2]], feats["pooled"][[0, 2]])

    make_image(red, color=(0, 255, 0))  # same path, new content (and mtime)
    os.utime(red, ns=(1, 1))
    third, _ = image_features(tower, paths, cache_dir=tmp_path / "cache", progress=False)
    assert tower.seen == 3
    np.testing.assert_allclose(third["pooled"][0], [0, 1, 0], atol=1e-6)
    # another view is another cache entry
    image_features(tower, paths, view="flip", cache_dir=tmp_path / "cache", progress=False)
    assert tower.seen == 5


def test_texts_cached_by_content(tmp_path):
    tower = CountingTower()
    a = text_features(tower, ["a cat", "a dog"], cache_dir=tmp_path, progress=False)
    b = text_features(tower, ["a dog", "a bird"], cache_dir=tmp_path, progress=False)
    assert tower.seen == 3
    assert a["pooled"][1].tolist() == b["pooled"][0].tolist() == [5, 0, 0]


def test_views_are_deterministic():
    im = Image.fromarray(np.arange(100 * 60 * 3, dtype=np.uint8).reshape(60, 100, 3))
    assert np.array_equal(np.asarray(apply_view(im, "flip")), np.asarray(im)[:, ::-1])
    assert apply_view(im, "crop").size == (80, 48)
    assert apply_view(im, "lowres").size == im.size
    assert np.array_equal(np.asarray(apply_view(im, "lowres")), np.asarray(apply_view(im, "lowres")))


def test_gray_and_sketch_views():
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    gray = np.asarray(apply_view(im, "gray"))
    assert gray.shape == (40, 50, 3) and (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    flat = Image.new("RGB", (40, 30), (120, 60, 200))  # no edges: a drawing of it is blank paper
    assert np.asarray(apply_view(flat, "sketch")).min() >= 250
    edge = np.full((30, 40, 3), 230, np.uint8)
    edge[:, 20:] = 20  # one strong edge: the drawing has a dark line near it, white far from it
    sketch = np.asarray(apply_view(Image.fromarray(edge), "sketch"))[..., 0]
    assert sketch.shape == (30, 40) and sketch[:, 2].min() >= 250 and sketch[:, 18:23].min() < 200
    assert np.array_equal(sketch, np.asarray(apply_view(Image.fromarray(edge), "sketch"))[..., 0])
