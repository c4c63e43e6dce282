"""Projection heads (cliplab/models/trained/heads.py): configs, identity init, ConSE vectors, fusion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from cliplab.errors import CliplabError
from cliplab.models.backends.conse import conse_combine
from cliplab.models.trained.heads import build_head, conse_vectors, fuse, fusion_weight, head_config


def test_head_config_resolves_and_validates():
    assert head_config("none", 10) == {"kind": "none", "in_dim": 10, "out_dim": 10}
    mlp = head_config("mlp", 10, 4)
    assert (mlp["hidden"], mlp["dropout"], mlp["skip"]) == (10, 0.0, False)
    with pytest.raises(CliplabError, match="unknown head"):
        head_config("transformer", 10)
    with pytest.raises(CliplabError, match="identity init"):
        head_config("linear", 10, 4, init="identity")


@pytest.mark.parametrize("kind, extra", [("linear", {}), ("mlp", {"skip": True})])
def test_identity_init_starts_as_no_change(kind, extra):
    torch.manual_seed(0)
    head = build_head(head_config(kind, 6, 6, init="identity", **extra)).eval()
    x = torch.randn(3, 6)
    y = head(x)
    if kind == "linear":
        assert torch.allclose(y, x)
    else:  # skip path = identity, MLP path shrunk: the output points where the input does
        assert (F.cosine_similarity(x, y) > 0.9).all()


def test_shapes_and_none_head():
    x = torch.randn(2, 8)
    assert build_head(head_config("mlp", 8, 3, hidden=5))(x).shape == (2, 3)
    assert torch.equal(build_head(head_config("none", 8))(x), x)


def test_conse_vectors_match_the_numpy_conse():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 20)).astype(np.float32)
    class_emb = rng.normal(size=(20, 6)).astype(np.float32)
    ours = conse_vectors(torch.from_numpy(logits), torch.from_numpy(class_emb), 5).numpy()
    probs = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    np.testing.assert_allclose(ours, conse_combine(probs, class_emb, 5), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)


def test_fusion_mixes_cosines_by_weight():
    torch.manual_seed(2)
    a1, a2, b1, b2 = (torch.randn(1, 5) for _ in range(4))
    w = torch.tensor(0.3)
    u, v = fuse(a1, b1, w), fuse(a2, b2, w)
    cos = lambda p, q: float(F.cosine_similarity(p, q))  # noqa: E731
    assert abs(float(u.norm()) - 1) < 1e-6
    assert abs(float((u * v).sum()) - (0.3 * cos(a1, a2) + 0.7 * cos(b1, b2))) < 1e-5
    assert fusion_weight({}) == 0.0
    with pytest.raises(CliplabError):
        fusion_weight({"conse_fusion": 1.0})
