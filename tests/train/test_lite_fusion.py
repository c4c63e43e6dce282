"""ConSE fusion in the heads (`conse_fusion`) and the shipped `lite` built with it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

from cliplab.errors import CliplabError
from cliplab.models.trained.checkpoint import build_encoder, load_checkpoint, save_checkpoint
from cliplab.models.trained.heads import DualHeads, ImageSide, TextSide, conse_vectors, head_config

# `describe()` of the `lite` shipped before fusion (commit 0bad4cf): an index built with it must
# see the new model as a different one and ask for a rebuild.
OLD_LITE = {
    "model": "lite",
    "dim": 384,
    "image_tower": "efficientnet-lite0",
    "text_tower": "minilm",
    "image_head": "linear",
    "text_head": "linear",
    "preprocess": "265489eda4e5",
    "weights": "dd3da3959635",
}


def _sides(w: float, seed: int = 0):
    torch.manual_seed(seed)
    dims = {"pooled": 16, "logits": 12}
    img = ImageSide(["pooled"], dims, {**head_config("linear", 16, 8), "conse_fusion": w}, conse_top_t=3, conse_dim=6)
    txt = TextSide({**head_config("linear", 6, 8), "conse_fusion": w})
    if w > 0:
        img.class_emb.copy_(F.normalize(torch.randn(12, 6), dim=-1))
    return img, txt


def test_fused_cosine_mixes_conse_and_heads():
    w = 0.3
    img, txt = _sides(w)
    heads = DualHeads(img, txt)
    feats = {"pooled": torch.randn(5, 16), "logits": torch.randn(5, 12)}
    text = {"text": F.normalize(torch.randn(4, 6), dim=-1)}
    with torch.no_grad():
        vi, vt = heads.encode_image(feats), heads.encode_text(text)
        assert vi.shape == (5, 6 + 8) and heads.dim == 14
        np.testing.assert_allclose(vi.norm(dim=-1), 1, atol=1e-6)
        conse = conse_vectors(feats["logits"], img.class_emb, 3) @ text["text"].T
        hi = F.normalize(img.head(F.normalize(feats["pooled"], dim=-1)), dim=-1)
        ht = F.normalize(txt.head(text["text"]), dim=-1)
        expected = w * conse + (1 - w) * (hi @ ht.T)
        np.testing.assert_allclose(vi @ vt.T, expected, atol=1e-5)


def test_fusion_weight_is_in_the_weights_and_must_match():
    img, txt = _sides(0.5)
    sd = DualHeads(img, txt).state_dict()
    assert float(sd["image.fusion_weight"]) == 0.5 and float(sd["text.fusion_weight"]) == 0.5
    with pytest.raises(CliplabError, match="conse_fusion"):
        DualHeads(_sides(0.5)[0], _sides(0.4)[1])
    with pytest.raises(CliplabError, match=r"\[0, 1\)"):
        TextSide({**head_config("linear", 6, 8), "conse_fusion": 1.0})


def test_text_weight_ramps_with_closeness_to_a_class_prompt():
    """A text equal to a class prompt gets the ramp's top ConSE share, a text far from all of them
    its bottom one, and every cosine is √(w·w_t)·cos_conse + √((1−w)(1−w_t))·cos_heads."""
    w, ramp = 0.3, {"lo": 0.1, "hi": 0.9, "from": 0.5, "to": 0.95}
    img, _ = _sides(w)
    txt = TextSide({**head_config("linear", 6, 8), "conse_fusion": w, "conse_fusion_ramp": ramp}, n_classes=12)
    txt.class_emb.copy_(img.class_emb)
    far = torch.linalg.svd(img.class_emb[:5]).Vh[-1:]  # orthogonal to 5 prompts; kept only if far from all
    texts = torch.cat([img.class_emb[[2, 7]], F.normalize(far, dim=-1)])
    with torch.no_grad():
        wt = txt.text_weight(texts)[:, 0]
        best = (texts @ img.class_emb.T).max(1).values
        assert wt[0] == pytest.approx(0.9) and wt[1] == pytest.approx(0.9)
        expect_far = 0.1 + 0.8 * float(((best[2] - 0.5) / 0.45).clamp(0, 1))
        assert wt[2] == pytest.approx(expect_far, abs=1e-6) and wt[2] < 0.9
        heads = DualHeads(img, txt)
        feats = {"pooled": torch.randn(5, 16), "logits": torch.randn(5, 12)}
        vi, vt = heads.encode_image(feats), heads.encode_text({"text": texts})
        np.testing.assert_allclose(vt.norm(dim=-1), 1, atol=1e-6)
        conse = conse_vectors(feats["logits"], img.class_emb, 3) @ texts.T
        hi = F.normalize(img.head(F.normalize(feats["pooled"], dim=-1)), dim=-1)
        ht = F.normalize(txt.head(texts), dim=-1)
        expected = (w * wt).sqrt() * conse + ((1 - w) * (1 - wt)).sqrt() * (hi @ ht.T)
        np.testing.assert_allclose(vi @ vt.T, expected, atol=1e-5)
    assert "text.class_emb" in heads.state_dict()


def test_bad_ramps_are_refused():
    base = {**head_config("linear", 6, 8), "conse_fusion": 0.3}
    for ramp in (
        {"lo": 0.5, "hi": 0.2, "from": 0.5, "to": 0.9},
        {"lo": 0.1, "hi": 0.9, "from": 0.9, "to": 0.5},
        {"lo": 0.1},
    ):
        with pytest.raises(CliplabError, match="conse_fusion_ramp"):
            TextSide({**base, "conse_fusion_ramp": ramp})
    with pytest.raises(CliplabError, match="needs conse_fusion"):
        TextSide({**head_config("linear", 6, 8), "conse_fusion_ramp": {"lo": 0, "hi": 0.5, "from": 0, "to": 1}})


def test_config_without_fusion_builds_as_before():
    img, txt = _sides(0.0)
    assert img.out_dim == txt.out_dim == 8
    assert not any("fusion" in k for k in DualHeads(img, txt).state_dict())


def _config(w: float | None):
    image_head, text_head = head_config("linear", 1280 + 384, 384), head_config("linear", 384, 384, init="identity")
    if w is not None:
        image_head["conse_fusion"] = text_head["conse_fusion"] = w
    return {
        "image_tower": {"spec": "efficientnet-lite0"},
        "text_tower": {"spec": "minilm"},
        "image_side": {"inputs": ["pooled", "conse"], "head": image_head},
        "text_side": {"head": text_head},
    }


def test_fused_checkpoint_round_trip_and_identity(tmp_path):
    plain = build_encoder(_config(None), seed=1)
    fused = build_encoder(_config(0.4), seed=1)
    fused.heads.load_state_dict(
        {**plain.heads.state_dict(), "image.fusion_weight": torch.tensor(0.4), "text.fusion_weight": torch.tensor(0.4)}
    )
    save_checkpoint(plain, tmp_path / "plain")
    save_checkpoint(fused, tmp_path / "fused")
    cfg = json.loads((tmp_path / "fused" / "cliplab.json").read_text())
    assert cfg["dim"] == 768 and cfg["image_side"]["head"]["conse_fusion"] == 0.4
    a, b = load_checkpoint(tmp_path / "plain"), load_checkpoint(tmp_path / "fused")
    assert a.dim == 384 and b.dim == 768
    assert a.describe()["weights"] != b.describe()["weights"]  # an index built with one refuses the other
    image = [Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8))]
    texts = ["a dog on the grass", "a red car"]
    np.testing.assert_allclose(b.encode_images(image), fused.encode_images(image), atol=1e-6)
    # The fused similarity is the weighted mix of the unfused model's and ConSE's.
    from cliplab.models.backends.conse import ConSEEncoder

    conse = ConSEEncoder()
    mix = (
        0.4 * conse.encode_images(image) @ conse.encode_texts(texts).T
        + 0.6 * a.encode_images(image) @ a.encode_texts(texts).T
    )
    np.testing.assert_allclose(b.encode_images(image) @ b.encode_texts(texts).T, mix, atol=1e-4)


def test_shipped_lite_is_fused_and_not_the_old_model(lite_encoder):
    d = lite_encoder.describe()
    assert d["dim"] == 768 and lite_encoder.config["image_side"]["head"]["conse_fusion"] > 0
    # texts lean on ConSE by how close they are to an ImageNet class prompt
    from cliplab.models.backends.conse import CLASS_TEMPLATE
    from tools.lite_recipe import TEXT_RAMP

    text = lite_encoder.heads.text
    assert text.ramp == TEXT_RAMP
    assert torch.equal(text.class_emb, lite_encoder.heads.image.class_emb)
    with torch.no_grad():
        raw = lite_encoder.text_tower.run([CLASS_TEMPLATE.format("goldfinch"), "two men sit on a bench"])["text"]
        wt = text.text_weight(raw)[:, 0]
    assert wt[0] == pytest.approx(TEXT_RAMP["hi"], abs=1e-3) and wt[1] < 0.5
    assert d != {**OLD_LITE, "logit_scale": d["logit_scale"]} and d["weights"] != OLD_LITE["weights"]
