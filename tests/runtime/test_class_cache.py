"""Zero-shot class embeddings are cached on disk by (model identity, labels, templates)."""

from __future__ import annotations

import numpy as np
import pytest

from cliplab.models.core.base import Encoder, l2_normalize
from cliplab.zeroshot import class_cache_key, class_embeddings


class CountingEncoder(Encoder):
    dim = 8

    def __init__(self, weights: str | None = "w1", needs_fit: bool = False):
        self.weights, self.needs_fit, self.calls = weights, needs_fit, 0
        self.name = "toy"

    def preprocess(self, image):
        raise NotImplementedError

    def encode_image_batch(self, batch):
        raise NotImplementedError

    def encode_texts(self, texts):
        self.calls += 1
        rng = [np.random.default_rng(abs(hash((t, self.weights))) % 2**32) for t in texts]
        return l2_normalize(np.stack([r.normal(size=self.dim) for r in rng]).astype(np.float32))

    def describe(self):
        d = super().describe()
        return {**d, "weights": self.weights} if self.weights else d


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPLAB_CACHE", str(tmp_path))
    return tmp_path / "classes"


def test_hit_miss_and_invalidation(cache):
    enc = CountingEncoder()
    labels, templates = ["cat", "dog", "car"], ["a photo of a {}.", "a {}"]
    first = class_embeddings(enc, labels, templates)
    assert enc.calls == 1 and len(list(cache.glob("*.npy"))) == 1
    again = class_embeddings(enc, labels, templates)
    assert enc.calls == 1 and np.array_equal(first, again)  # read from disk
    class_embeddings(enc, labels + ["bus"], templates)  # other labels → other entry
    class_embeddings(enc, labels, templates[:1])  # other templates → other entry
    assert enc.calls == 3
    retrained = CountingEncoder(weights="w2")  # same name, other weights → never the old vectors
    other = class_embeddings(retrained, labels, templates)
    assert retrained.calls == 1 and not np.allclose(other, first)
    assert class_embeddings(enc, labels, templates, cache=False) is not None and enc.calls == 4


def test_corrupt_entry_is_recomputed(cache):
    enc = CountingEncoder()
    want = class_embeddings(enc, ["a", "b"], ["{}"])
    (f,) = cache.glob("*.npy")
    f.write_bytes(b"not a numpy file")
    got = class_embeddings(enc, ["a", "b"], ["{}"])
    assert enc.calls == 2 and np.allclose(got, want)
    assert np.array_equal(np.load(f), want)  # overwritten with the good vectors


def test_unpinned_models_are_not_cached(cache):
    for enc in (CountingEncoder(weights=None), CountingEncoder(needs_fit=True)):
        assert class_cache_key(enc, ["a"], ["{}"]) is None
        class_embeddings(enc, ["a", "b"], ["{}"])
        class_embeddings(enc, ["a", "b"], ["{}"])
        assert enc.calls == 2
    assert not cache.exists()
