import numpy as np
import pytest

from cliplab.errors import CliplabError
from cliplab.models.core.base import l2_normalize
from cliplab.zeroshot import class_embeddings, load_templates, parse_labels, top_k, zero_shot_probs
from tests.helpers import ToyEncoder


def test_templates(tmp_path):
    assert load_templates(None) == ["a photo of a {}."]
    assert len(load_templates("clip80")) == 80 and all("{}" in t for t in load_templates("clip80"))
    assert load_templates("a sketch of {}") == ["a sketch of {}"]
    f = tmp_path / "t.txt"
    f.write_text("a {}.\n\nart of {}\n")
    assert load_templates(str(f)) == ["a {}.", "art of {}"]
    f.write_text("no placeholder\n")
    with pytest.raises(CliplabError, match="placeholder"):
        load_templates(str(f))
    with pytest.raises(CliplabError):
        load_templates("nonsense")


def test_labels(tmp_path):
    assert parse_labels(" cat, dog,,cat ") == ["cat", "dog"]
    f = tmp_path / "l.txt"
    f.write_text("red car\nblue bus\n")
    assert parse_labels(str(f)) == ["red car", "blue bus"]
    with pytest.raises(CliplabError):
        parse_labels(" , ")


def test_class_embeddings_average_templates_then_normalise():
    enc = ToyEncoder()
    emb = class_embeddings(enc, ["a", "b"], ["x {}", "y {}"])
    want = l2_normalize(enc.encode_texts(["x a", "y a"]).mean(0, keepdims=True))[0]
    np.testing.assert_allclose(emb[0], want, atol=1e-6)
    assert emb.shape == (2, 4)


def test_probs_and_top_k():
    img = l2_normalize(np.array([[1, 0], [0, 1]], np.float32))
    cls = l2_normalize(np.array([[1, 0], [1, 1]], np.float32))
    p = zero_shot_probs(img, cls, 10.0)
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-6)
    e = np.exp(10 * np.array([1.0, np.sqrt(0.5)]))
    np.testing.assert_allclose(p[0], e / e.sum(), rtol=1e-5)
    assert top_k(p, ["x", "y"], 1) == [[("x", pytest.approx(p[0, 0]))], [("y", pytest.approx(p[1, 1]))]]
    # Ties resolve by label order, so output is deterministic.
    assert [lab for lab, _ in top_k(np.array([[0.5, 0.5]]), ["b", "a"], 2)[0]] == ["b", "a"]
