"""HF CLIP backend: embeddings equal transformers' own pipeline; loading errors are one clear line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from transformers import CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

from cliplab.errors import ModelNotFoundError
from cliplab.models.backends import clip_hf
from cliplab.models.backends.clip_hf import HFCLIPEncoder, build_random_clip, load_clip
from cliplab.models.core.base import l2_normalize
from cliplab.models.specs import is_clip_cached

TEXTS = [
    "a photo of a dog",
    "",
    "Ein Foto einer Katze — 猫 🐱",
    "two  people   riding bikes!",
    " ".join(["a very long caption"] * 40),
]  # > 77 tokens: truncated


@pytest.fixture(scope="module")
def encoder(tiny_clip_dir):
    from cliplab.models.loader import load_encoder

    enc = load_encoder(str(tiny_clip_dir))
    assert isinstance(enc, HFCLIPEncoder)
    return enc


@pytest.fixture(scope="module")
def reference(tiny_clip_dir):
    """transformers' own model, image processor and tokenizer, loaded independently."""
    model = CLIPModel.from_pretrained(tiny_clip_dir).eval()
    return model, CLIPImageProcessorPil.from_pretrained(tiny_clip_dir), CLIPTokenizer.from_pretrained(tiny_clip_dir)


def _pooled(out) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def _ref_images(reference, images) -> np.ndarray:
    model, proc, _ = reference
    pix = torch.from_numpy(proc(images, return_tensors="np")["pixel_values"])
    with torch.inference_mode():
        return l2_normalize(_pooled(model.get_image_features(pixel_values=pix)).numpy())


def _ours(enc, images) -> np.ndarray:
    # the pipeline's path: preprocess each PIL image as given, batch, finish
    return enc.finish_images(enc.encode_image_batch(np.stack([enc.preprocess(im) for im in images])))


def test_loaded_through_registry(encoder, tiny_clip_dir):
    assert encoder.name == str(tiny_clip_dir)
    assert encoder.dim == 32 and encoder.image_batch_size == 32
    d = encoder.describe()
    assert d["backend"] == "transformers" and d["architecture"] and d["dim"] == 32


def test_logit_scale_is_the_checkpoints(encoder, reference):
    assert encoder.logit_scale == pytest.approx(float(reference[0].logit_scale.detach().exp()))


def test_synthetic_image_embeddings_match_transformers(encoder, reference, odd_images):
    images = list(odd_images.values())
    got, want = _ours(encoder, images), _ref_images(reference, images)
    assert got.shape == (len(images), 32) and got.dtype == np.float32
    assert np.abs(got - want).max() <= 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    assert np.abs(got[0] - got[1]).max() > 1e-3  # random weights still separate images


def test_real_image_embeddings_match_transformers(encoder, reference, real_images):
    got, want = _ours(encoder, real_images), _ref_images(reference, real_images)
    assert np.abs(got - want).max() <= 1e-5
    # the in-memory convenience path agrees too (RGB JPEGs, so its convert("RGB") is a no-op)
    assert np.abs(encoder.encode_images(real_images) - want).max() <= 1e-5


def test_text_embeddings_match_transformers(encoder, reference, monkeypatch):
    model, _, tok = reference
    want = []
    for t in TEXTS:  # one at a time, unpadded: padding and batching must not change anything
        ids = tok([t], truncation=True, max_length=77, return_tensors="pt")
        assert ids["input_ids"].shape[1] <= 77
        with torch.inference_mode():
            want.append(_pooled(model.get_text_features(**ids)).numpy())
    want = l2_normalize(np.concatenate(want))
    monkeypatch.setattr(clip_hf, "TEXT_BATCH", 2)  # exercise several batches
    got = encoder.encode_texts(TEXTS)
    assert got.shape == (len(TEXTS), 32) and got.dtype == np.float32
    assert np.abs(got - want).max() <= 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    assert encoder.encode_texts([]).shape == (0, 32)


def test_preprocessing_follows_checkpoint_config(tiny_clip_dir, tmp_path, odd_images):
    d = shutil.copytree(tiny_clip_dir, tmp_path / "clip-bilinear")
    cfg = json.loads((d / "preprocessor_config.json").read_text())
    cfg.update(size={"shortest_edge": 240}, resample=2, image_mean=[0.5, 0.5, 0.5], image_std=[0.25, 0.25, 0.25])
    (d / "preprocessor_config.json").write_text(json.dumps(cfg))
    enc, proc = load_clip(str(d)), CLIPImageProcessorPil.from_pretrained(d)
    for name, im in odd_images.items():
        want = proc(im, return_tensors="np")["pixel_values"][0]
        assert np.abs(enc.preprocess(im) - want).max() <= 1e-6, name


def test_build_is_deterministic(tiny_clip_dir, tmp_path, clip_config_dir):
    again = build_random_clip(tmp_path / "again", clip_config_dir, tiny=True, seed=0)
    assert (again / "model.safetensors").read_bytes() == (tiny_clip_dir / "model.safetensors").read_bytes()
    for f in ("tokenizer.json", "vocab.json", "merges.txt", "preprocessor_config.json"):
        assert (again / f).is_file()


def test_hub_id_from_cache(tiny_clip_dir, tmp_path, monkeypatch):
    """A hub id resolves from the HF cache with no network (as `--model auto` relies on)."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    snap = cache / "models--someorg--tiny-clip" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_clip_dir, snap)
    (snap.parents[1] / "refs").mkdir()
    (snap.parents[1] / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert is_clip_cached("someorg/tiny-clip")
    assert not is_clip_cached("someorg/no-such-clip-model")
    enc = load_clip("someorg/tiny-clip")
    assert enc.name == "someorg/tiny-clip" and enc.dim == 32


def _assert_one_clear_line(err: Exception, *needles: str):
    msg = str(err)
    assert "\n" not in msg and len(msg) < 400, msg
    for n in needles:
        assert n in msg, msg


def test_uncached_hub_id_offline_is_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as ei:
        load_clip("someorg/no-such-clip-model")
    _assert_one_clear_line(ei.value, "someorg/no-such-clip-model", "--model lite", "offline")
    assert ei.value.__cause__ is None and ei.value.__suppress_context__


def test_uncached_hub_id_through_registry(monkeypatch):
    from cliplab.models.loader import load_encoder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as ei:
        load_encoder("someorg/no-such-clip-model")
    _assert_one_clear_line(ei.value, "--model lite")


def test_local_dirs_that_are_not_clip(tmp_path, tiny_clip_dir):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError) as ei:
        load_clip(str(tmp_path / "empty"))
    _assert_one_clear_line(ei.value, "not a Hugging Face CLIP checkpoint")

    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelNotFoundError) as ei:
        load_clip(str(bert))
    _assert_one_clear_line(ei.value, "not a Hugging Face CLIP checkpoint", "bert")

    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    shutil.copy(tiny_clip_dir / "config.json", no_weights / "config.json")
    with pytest.raises(ModelNotFoundError) as ei:
        load_clip(str(no_weights))
    _assert_one_clear_line(ei.value, "cannot load CLIP checkpoint")
