"""SigLIP family: cliplab's vectors equal transformers' SiglipModel on a small random-weight model
(torch and ONNX), tokens equal SigLIP's processor (padded to the full length, truncated), and
zero-shot probabilities are sigmoid(scale·cos + bias)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cliplab.models import specs
from cliplab.models.backends.openclip_build import train_sentencepiece
from cliplab.models.loader import load_encoder

TEXTS = [
    "a photo of a dog",
    "Ein Hund läuft über die Wiese",
    "一只猫在沙发上睡觉",
    "Кошка спит на диване",
    "two people on a beach at sunset " * 20,  # past the 16-token length: truncated as SigLIP's tokenizer does
]


@pytest.fixture(scope="module")
def siglip_dir(tmp_path_factory):
    """A 2-layer, width-64 SiglipModel with a small SentencePiece tokenizer trained here (offline)."""
    from transformers import SiglipConfig, SiglipModel, SiglipTokenizer

    out = tmp_path_factory.mktemp("siglip") / "siglip"
    out.mkdir()
    texts = TEXTS[:4] * 20 + ["red car", "el perro corre", "a cat"] * 20
    proto = train_sentencepiece(texts, 100, pad_id=0, eos_id=1, unk_id=2, bos_id=-1)
    (out / "spiece.model").write_bytes(proto)
    SiglipTokenizer(vocab_file=str(out / "spiece.model")).save_pretrained(out)
    small = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)
    cfg = SiglipConfig(
        text_config={**small, "vocab_size": 100, "max_position_embeddings": 16, "bos_token_id": 0, "eos_token_id": 1},
        vision_config={**small, "image_size": 32, "patch_size": 8},
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = SiglipModel(cfg).eval()
    with torch.no_grad():
        model.logit_bias.fill_(-3.0)
    model.save_pretrained(out)
    return out


def test_spec_is_the_siglip_family(siglip_dir):
    s = specs.parse(str(siglip_dir))
    assert (s.kind, s.family) == ("hf-folder", "siglip")


def test_vectors_equal_transformers(siglip_dir):
    from transformers import AutoTokenizer, SiglipModel

    enc = load_encoder(str(siglip_dir))
    ref, tok = SiglipModel.from_pretrained(siglip_dir).eval(), AutoTokenizer.from_pretrained(siglip_dir)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 3, 32, 32)).astype(np.float32)
    ids = tok(TEXTS, padding="max_length", truncation=True, max_length=16, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        want_img = ref.get_image_features(pixel_values=torch.from_numpy(x)).pooler_output.numpy()
        want_txt = torch.nn.functional.normalize(ref.get_text_features(input_ids=ids).pooler_output, dim=-1).numpy()
    assert np.abs(enc.encode_image_batch(x) - want_img).max() <= 1e-5
    assert np.abs(enc.encode_texts(TEXTS) - want_txt).max() <= 1e-5
    np.testing.assert_array_equal(enc.model.text.tokenize(TEXTS)["input_ids"], ids.numpy())
    assert ids.shape[1] == 16 and ids[-1, -1] == tok.eos_token_id  # the long text: truncated, eos kept


def test_images_are_squashed_like_the_processor(siglip_dir):
    from transformers import SiglipImageProcessor

    enc = load_encoder(str(siglip_dir))
    im = Image.fromarray(np.random.default_rng(1).integers(0, 255, (50, 90, 3), np.uint8))
    want = SiglipImageProcessor(size={"height": 32, "width": 32})(im, return_tensors="np")["pixel_values"][0]
    assert np.abs(enc.preprocess(im) - want).max() <= 1e-6


def test_zero_shot_is_sigmoid_with_bias(siglip_dir):
    from cliplab.zeroshot import encoder_probs

    enc = load_encoder(str(siglip_dir))
    d = enc.describe()
    assert d["probability"] == "sigmoid" and d["logit_bias"] == pytest.approx(-3.0)
    assert "logit_bias" not in specs.vector_identity(d) and "probability" not in specs.vector_identity(d)
    v = enc.encode_image_batch(np.zeros((2, 3, 32, 32), np.float32))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    cls = enc.encode_texts(["a dog", "a cat", "a car"])
    probs, rule = encoder_probs(enc, v, cls)
    want = 1 / (1 + np.exp(-(enc.logit_scale * (v @ cls.T) - 3.0)))
    assert rule == "sigmoid" and np.allclose(probs, want, atol=1e-6)
    assert not np.allclose(probs.sum(axis=1), 1.0)  # independent per label, not a softmax


def test_onnx_graphs_match_torch(siglip_dir, tmp_path):
    """Both towers export within 1e-4 of torch. A SentencePiece-only tokenizer (SigLIP 1) is converted
    to a `tokenizers` one (siglip_tokenizer.py): the ONNX runtime gives the slow tokenizer's ids and
    torch's vectors on every text, also non-English, punctuated and over-long ones."""
    from cliplab.runtime import load, runtime_label
    from cliplab.runtime.export import export_checked

    enc = load_encoder(str(siglip_dir))
    for side in ("image", "text"):
        assert export_checked(getattr(enc.model, side), tmp_path / f"{side}.onnx") <= 1e-4
    onnx = load(str(siglip_dir), runtime="onnx")
    assert runtime_label(onnx).startswith("onnx") and onnx.describe()["probability"] == "sigmoid"
    texts = [*TEXTS, "Hello, World!  It's 5 p.m. -- ok?", "  Ünïcödé ﬁ and ＦＵＬＬ width  "]
    want = enc.model.text.tokenize(texts)["input_ids"]
    got = onnx.text.tokenize(texts)["input_ids"]
    np.testing.assert_array_equal(got, want[:, : got.shape[1]])
    assert (want[:, got.shape[1] :] == enc.model.text.pad_id).all()  # the graph pads back to the full length
    assert np.abs(onnx.encode_texts(texts) - enc.encode_texts(texts)).max() <= 1e-4


def test_a_tokenizer_the_conversion_cannot_match_runs_on_torch(tmp_path):
    """SentencePiece with byte fallback has no faithful `tokenizers` form here: refused, not guessed."""
    from transformers import SiglipTokenizer

    from cliplab.models.backends.siglip_tokenizer import fast_siglip_tokenizer

    texts = ["a photo of a dog", "red car", "a cat"] * 20
    proto = train_sentencepiece(texts, 300, pad_id=0, eos_id=1, unk_id=2, bos_id=-1, byte_fallback=True)
    (tmp_path / "spiece.model").write_bytes(proto)
    assert fast_siglip_tokenizer(SiglipTokenizer(vocab_file=str(tmp_path / "spiece.model"))) is None
