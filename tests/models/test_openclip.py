"""open_clip family: cliplab's vectors equal open_clip's own on random-weight models of real
architectures (small widths), through torch and through the ONNX export; tokens equal open_clip's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cliplab.models import specs
from cliplab.models.backends.openclip import import_open_clip, preprocess_from
from cliplab.models.backends.openclip_build import build_random_open_clip
from cliplab.models.loader import load_encoder

TEXTS = [
    "a photo of a dog.",
    "Ein Hund läuft über die Wiese",
    "一只猫在沙发上睡觉",
    "Кошка спит на диване",
    "a very long caption " * 40,  # far past the 77-token context: truncated as open_clip does
]


@pytest.fixture(scope="module")
def oc():
    return import_open_clip()


def _reference(oc, folder):
    return oc.create_model(f"local-dir:{folder}").eval(), oc.get_tokenizer(f"local-dir:{folder}")


def _check_exact(oc, folder, texts=TEXTS):
    enc = load_encoder(str(folder))
    ref, tok = _reference(oc, folder)
    size = enc.model.image.example_inputs(1)["pixel_values"].shape[-1]
    x = np.random.default_rng(1).uniform(-1.5, 1.5, (3, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        want_img = ref.encode_image(torch.from_numpy(x)).numpy()
        want_txt = torch.nn.functional.normalize(ref.encode_text(tok(texts)), dim=-1).numpy()
    assert np.abs(enc.encode_image_batch(x) - want_img).max() <= 1e-5
    assert np.abs(enc.encode_texts(texts) - want_txt).max() <= 1e-5
    ids = enc.model.text.tokenize(texts)["input_ids"]
    full = tok(texts).numpy()
    np.testing.assert_array_equal(ids, full[:, : ids.shape[1]])
    assert not full[:, ids.shape[1] :].any() or enc.model.text.hf  # only padding was cut
    return enc


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory):
    return build_random_open_clip(tmp_path_factory.mktemp("oc") / "vit-b-32", "ViT-B-32")


def test_specs_parse_the_open_clip_forms(vit_dir):
    s = specs.parse(str(vit_dir))
    assert (s.kind, s.path) == ("open_clip", vit_dir)
    assert specs.parse("open_clip:ViT-B-32/laion2b_s34b_b79k").variant == "ViT-B-32/laion2b_s34b_b79k"
    assert specs.parse("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K").kind == "open_clip"
    for bad in ("open_clip:ViT-B-32", "hf-hub:nothing"):
        with pytest.raises(specs.ModelSpecError):
            specs.parse(bad)


def test_vit_b32_equals_open_clip(oc, vit_dir):
    enc = _check_exact(oc, vit_dir)
    d = enc.describe()
    assert (d["backend"], d["architecture"], enc.dim) == ("open_clip", "ViT-B-32", 32)
    assert "probability" not in d  # a CLIP model: softmax


def test_long_text_is_truncated_like_open_clip(oc, vit_dir):
    enc = load_encoder(str(vit_dir))
    _, tok = _reference(oc, vit_dir)
    ids = enc.model.text.tokenize([TEXTS[-1]])["input_ids"][0]
    assert len(ids) == 77 and ids[-1] == tok.eot_token_id and ids[0] == tok.sot_token_id


def test_hf_hub_spec_reads_the_cache_only():
    with pytest.raises(Exception, match="cliplab models pull hf-hub:org/absent"):
        load_encoder("hf-hub:org/absent")


def test_preprocess_follows_open_clip_config():
    p = preprocess_from({"size": 64, "mean": (0, 0, 0), "std": (1, 1, 1), "interpolation": "bilinear"})
    assert (p.crop, p.resample, p.resize, p.center) == (64, Image.BILINEAR, "shortest", "round")
    im = Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 131, 3), np.uint8))
    want = np.asarray(im.resize((93, 64), Image.BILINEAR), np.float32)[:, 14:78] / np.float32(255)  # round(14.5)=14
    np.testing.assert_array_equal(p(im), want.transpose(2, 0, 1))
    sq = preprocess_from({"size": 32, "resize_mode": "squash"})
    assert sq(im).shape == (3, 32, 32)
    with pytest.raises(Exception, match="resize_mode"):
        preprocess_from({"resize_mode": "longest"})


@pytest.mark.parametrize("arch", ["convnext_tiny", "MobileCLIP-S1"])
def test_timm_towers_equal_open_clip(oc, arch, tmp_path):
    """A ConvNeXt and MobileCLIP (timm image towers, real layers) at a 64-pixel input."""
    folder = build_random_open_clip(tmp_path / arch, arch, image_size=64)
    enc = _check_exact(oc, folder, TEXTS[:2] + TEXTS[-1:])
    assert enc.describe()["architecture"] == arch


def test_onnx_export_matches_torch(vit_dir):
    from cliplab.runtime import load

    torch_enc = load(str(vit_dir), runtime="torch")
    onnx_enc = load(str(vit_dir), runtime="onnx")
    assert onnx_enc.describe()["runtime"] == "onnx"
    ims = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (60 + 7 * i, 80, 3), np.uint8)) for i in range(3)]
    assert np.abs(onnx_enc.encode_images(ims) - torch_enc.encode_images(ims)).max() <= 1e-4
    assert np.abs(onnx_enc.encode_texts(TEXTS) - torch_enc.encode_texts(TEXTS)).max() <= 1e-4
    np.testing.assert_array_equal(
        onnx_enc.text.tokenize(TEXTS)["input_ids"], torch_enc.model.text.tokenize(TEXTS)["input_ids"]
    )
