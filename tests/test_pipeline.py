import numpy as np
from PIL import Image

from cliplab.pipeline import embed_images, embed_texts, iter_image_batches
from tests.helpers import ToyEncoder, make_bad_files, make_image


def test_embed_images_keeps_order_and_records_failures(tmp_path):
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 10, 10), (250, 250, 250)]
    good = [make_image(tmp_path / f"g{i}.png", color=c) for i, c in enumerate(colors)]
    bad = make_bad_files(tmp_path / "bad")
    paths = [
        good[0],
        bad["truncated.jpg"],
        good[1],
        good[2],
        bad["empty.jpg"],
        good[3],
        bad["notes.png"],
        bad["huge.png"],
        good[4],
    ]
    res = embed_images(ToyEncoder(), paths, batch_size=2, workers=2)
    assert res.n_ok == 5 and res.vectors.shape == (5, 4)
    assert res.status == ["ok", "failed", "ok", "ok", "failed", "ok", "failed", "failed", "ok"]
    assert [r for r in res.rows if r >= 0] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(np.linalg.norm(res.vectors, axis=1), 1, atol=1e-6)
    # Row i of the vectors is the i-th good image: red, green, blue dominate in turn.
    assert res.vectors[0, 0] > res.vectors[0, 1] and res.vectors[1, 1] > res.vectors[1, 0]
    assert res.vectors[2, 2] > res.vectors[2, 0]
    reasons = dict(res.failures)
    assert "truncated" in reasons[str(bad["truncated.jpg"])]
    assert "empty" in reasons[str(bad["empty.jpg"])]
    assert "not an image" in reasons[str(bad["notes.png"])]
    assert "too large" in reasons[str(bad["huge.png"])]


def test_batches_respect_batch_size_and_cover_all(tmp_path):
    paths = [make_image(tmp_path / f"{i}.png") for i in range(7)]
    batches = list(iter_image_batches(ToyEncoder(), [str(p) for p in paths], batch_size=3, workers=2))
    assert [len(b.indices) for b in batches] == [3, 3, 1]
    assert sum((b.indices for b in batches), []) == list(range(7))


def test_all_bad_gives_empty_result(tmp_path):
    bad = make_bad_files(tmp_path)
    res = embed_images(ToyEncoder(), list(bad.values()))
    assert res.n_ok == 0 and res.vectors.shape == (0, 4) and len(res.failures) == 4


def test_embed_texts_batches_match_single_call():
    enc = ToyEncoder()
    texts = [f"text {i}" for i in range(10)]
    np.testing.assert_allclose(embed_texts(enc, texts, batch_size=3), enc.encode_texts(texts))


class _Counting(ToyEncoder):
    """Counts how images reach the batch: `preprocess` (a new array) or `preprocess_into` (in place)."""

    def __init__(self):
        self.calls = {"preprocess": 0, "preprocess_into": 0}

    def preprocess(self, image):
        self.calls["preprocess"] += 1
        return super().preprocess(image)

    def preprocess_into(self, image, out):
        self.calls["preprocess_into"] += 1
        out[...] = ToyEncoder.preprocess(self, image)


def test_images_are_preprocessed_into_the_batch(tmp_path):
    paths = [str(make_image(tmp_path / f"{i}.png", color=(20 * i, 0, 0))) for i in range(10)]
    enc = _Counting()
    res = embed_images(enc, paths, batch_size=3, workers=2)
    # Only the first images (which size the batch array) are preprocessed into a new array.
    assert enc.calls["preprocess"] <= 2 and enc.calls["preprocess"] + enc.calls["preprocess_into"] == 10
    np.testing.assert_allclose(res.vectors, ToyEncoder().encode_images([Image.open(p) for p in paths]), atol=1e-6)


def test_a_failure_leaves_its_row_out_of_the_batch(tmp_path):
    bad = make_bad_files(tmp_path / "bad")
    good = [str(make_image(tmp_path / f"{i}.png", color=(0, 30 * i, 0))) for i in range(5)]
    paths = [good[0], str(bad["truncated.jpg"]), good[1], good[2], good[3], str(bad["empty.jpg"]), good[4]]
    batches = list(iter_image_batches(ToyEncoder(), paths, batch_size=3, workers=2))
    assert [b.indices for b in batches] == [[0, 2], [3, 4], [6]]
    assert [[i for i, _, _ in b.failures] for b in batches] == [[1], [5], []]
    want = ToyEncoder().encode_image_batch(np.stack([ToyEncoder().preprocess(Image.open(p)) for p in good]))
    np.testing.assert_allclose(np.concatenate([b.vectors for b in batches]), want, atol=1e-6)


class _Identity(ToyEncoder):
    """Hands its input batch back as the vectors (as `train.features.image_pixels` does)."""

    def encode_image_batch(self, batch):
        return batch


def test_batches_handed_back_by_the_encoder_are_not_overwritten(tmp_path):
    paths = [str(make_image(tmp_path / f"{i}.png", color=(10 * i, 5 * i, 0))) for i in range(11)]
    batches = list(iter_image_batches(_Identity(), paths, batch_size=2, workers=2))  # all kept, then checked
    got = np.concatenate([b.vectors for b in batches])
    np.testing.assert_array_equal(got, np.stack([ToyEncoder().preprocess(Image.open(p)) for p in paths]))
