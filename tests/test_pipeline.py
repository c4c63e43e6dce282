import numpy as np

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
