"""Multilingual open_clip text towers: XLM-RoBERTa (`xlm-roberta-base-ViT-B-32`) and NLLB-CLIP, each
built offline as a 2-layer, width-64 random model with a tokenizer of the real class trained here
(XLM-R: a SentencePiece unigram; NLLB: a character-level BPE with NLLB's 202 FLORES-200 codes).
cliplab's tokens and text vectors equal open_clip's on non-English and over-long texts; NLLB reads a
query language (`--lang`), and a model without one refuses it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cliplab.errors import CliplabError
from cliplab.models.backends.openclip import import_open_clip
from cliplab.models.backends.openclip_build import build_random_open_clip, make_xlmr_base
from cliplab.models.language import in_language, with_vectors
from cliplab.models.loader import load_encoder

TEXTS = [
    "a photo of a dog",
    "Ein Hund läuft über die Wiese",
    "一只猫在沙发上睡觉",
    "Кошка спит на диване",
    "el perro corre por la playa " * 20,  # past the 77-token context: truncated as open_clip does
]


@pytest.fixture(scope="module")
def oc():
    return import_open_clip()


@pytest.fixture(scope="module")
def xlmr_dir(tmp_path_factory):
    """open_clip's xlm-roberta-base-ViT-B-32 config with its text tower's `hf_model_name` pointing at this
    folder (an XLMRobertaConfig + tokenizer saved here), as a real checkpoint points at `xlm-roberta-base`."""
    out = make_xlmr_base(tmp_path_factory.mktemp("xlmr") / "xlmr", TEXTS)
    text_cfg = {"hf_model_name": str(out), "hf_tokenizer_name": str(out), "hf_pooler_type": "mean_pooler"}
    return build_random_open_clip(out, "xlm-roberta-base-ViT-B-32", image_size=32, text_cfg=text_cfg)


@pytest.fixture(scope="module")
def nllb_dir(tmp_path_factory):
    """open_clip's nllb-clip-base config over a small M2M100 encoder and an NllbTokenizer built here."""
    from transformers import M2M100Config, NllbTokenizer

    out = tmp_path_factory.mktemp("nllb") / "nllb"
    out.mkdir()
    chars = sorted(set("▁".join(TEXTS)) | {"▁"})
    tok = NllbTokenizer(vocab={"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, **{c: i + 4 for i, c in enumerate(chars)}})
    tok.save_pretrained(out)
    layers = dict(encoder_layers=2, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2)
    M2M100Config(
        vocab_size=len(tok), d_model=64, encoder_ffn_dim=128, decoder_ffn_dim=128, max_position_embeddings=82, **layers
    ).save_pretrained(out)
    text_cfg = {"hf_model_name": str(out), "hf_tokenizer_name": str(out), "hf_proj_type": "linear"}
    return build_random_open_clip(
        out, "nllb-clip-base", image_size=32, text_cfg={**text_cfg, "hf_pooler_type": "cls_pooler"}
    )


def _reference(oc, folder, **tok_kwargs):
    return oc.create_model(f"local-dir:{folder}").eval(), oc.get_tokenizer(f"local-dir:{folder}", **tok_kwargs)


def _check_text(enc, ref, tok, texts=TEXTS):
    with torch.no_grad():
        want = torch.nn.functional.normalize(ref.encode_text(tok(texts)), dim=-1).numpy()
    assert np.abs(enc.encode_texts(texts) - want).max() <= 1e-5
    ids, full = enc.model.text.tokenize(texts)["input_ids"], tok(texts).numpy()
    np.testing.assert_array_equal(ids, full[:, : ids.shape[1]])
    assert (full[:, ids.shape[1] :] == enc.model.text.pad_id).all()  # only padding was cut
    return ids


def test_xlm_roberta_equals_open_clip(oc, xlmr_dir):
    enc = load_encoder(str(xlmr_dir))
    ref, tok = _reference(oc, xlmr_dir)
    assert type(tok.tokenizer).__name__ == "XLMRobertaTokenizer" and len(tok.tokenizer) > 50
    ids = _check_text(enc, ref, tok)
    assert ids.shape[1] == 77 and ids[-1, -1] == tok.tokenizer.eos_token_id  # the long text: cut, then </s>
    assert (ids[:, 0] == tok.tokenizer.bos_token_id).all() and tok.tokenizer.unk_token_id not in ids[1]
    x = np.random.default_rng(0).uniform(-1.5, 1.5, (2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        assert np.abs(enc.encode_image_batch(x) - ref.encode_image(torch.from_numpy(x)).numpy()).max() <= 1e-5
    assert enc.describe()["architecture"] == "xlm-roberta-base-ViT-B-32"


def test_tokenizer_named_by_the_config_when_the_checkpoint_has_none(xlmr_dir, tmp_path):
    """Hub repos of HF-text checkpoints may hold only weights + open_clip_config.json: the tokenizer is
    then the one text_cfg.hf_tokenizer_name names (here a folder; on a real model a hub id in the cache)."""
    import shutil

    bare = tmp_path / "bare"
    bare.mkdir()
    for f in ("open_clip_config.json", "open_clip_model.safetensors"):
        shutil.copy(xlmr_dir / f, bare / f)
    got, want = load_encoder(str(bare)), load_encoder(str(xlmr_dir))
    np.testing.assert_array_equal(
        got.model.text.tokenize(TEXTS)["input_ids"], want.model.text.tokenize(TEXTS)["input_ids"]
    )
    assert np.abs(got.encode_texts(TEXTS) - want.encode_texts(TEXTS)).max() == 0


@pytest.mark.parametrize("name", ["xlmr_dir", "nllb_dir"])
def test_onnx_export_matches_torch(request, name):
    from cliplab.runtime import load

    folder = str(request.getfixturevalue(name))
    torch_enc, onnx_enc = load(folder, runtime="torch"), load(folder, runtime="onnx")
    assert onnx_enc.describe()["runtime"] == "onnx"
    np.testing.assert_array_equal(
        onnx_enc.text.tokenize(TEXTS)["input_ids"], torch_enc.model.text.tokenize(TEXTS)["input_ids"]
    )
    assert np.abs(onnx_enc.encode_texts(TEXTS) - torch_enc.encode_texts(TEXTS)).max() <= 1e-4
    if name == "nllb_dir":  # another language on ONNX: the same tokens and vectors as torch's
        for lang in ("deu_Latn", "zho_Hans"):
            t, o = in_language(torch_enc, lang), in_language(onnx_enc, lang)
            assert np.array_equal(o.text.tokenize(TEXTS)["input_ids"], t.model.text.tokenize(TEXTS)["input_ids"])
            assert np.abs(o.encode_texts(TEXTS) - t.encode_texts(TEXTS)).max() <= 1e-4
            assert o.describe()["language"] == lang and "language" not in onnx_enc.describe()
        assert o.text.fingerprint() != onnx_enc.text.fingerprint()
        onnx_enc.text.config.pop("language")  # a cache exported before the code was recorded: read from the tokens
        assert np.array_equal(
            in_language(onnx_enc, "zho_Hans").text.tokenize(TEXTS)["input_ids"], o.text.tokenize(TEXTS)["input_ids"]
        )
        with pytest.raises(CliplabError, match="unknown language code 'deu_Latin'.*deu_Latn"):
            in_language(onnx_enc, "deu_Latin")
    else:
        with pytest.raises(CliplabError, match="takes no query language"):
            in_language(onnx_enc, "deu_Latn")


@pytest.mark.parametrize("lang", [None, "deu_Latn", "zho_Hans"])
def test_nllb_reads_the_query_language(oc, nllb_dir, lang):
    enc = load_encoder(str(nllb_dir))
    ref, tok = _reference(oc, nllb_dir, **({"src_lang": lang} if lang else {}))
    ids = _check_text(in_language(enc, lang), ref, tok)
    code = tok.tokenizer.convert_tokens_to_ids(lang or "eng_Latn")  # NLLB's default source language
    assert (ids[:, 0] == code).all() and ids.shape[1] == 77


def test_nllb_language_changes_the_vector_and_the_fingerprint(nllb_dir):
    enc = load_encoder(str(nllb_dir))
    deu = in_language(enc, "deu_Latn")
    assert deu.describe()["language"] == "deu_Latn" and "language" not in enc.describe()
    assert deu.model.text.fingerprint() != enc.model.text.fingerprint()
    assert np.abs(deu.encode_texts(TEXTS[1:2]) - enc.encode_texts(TEXTS[1:2])).max() > 1e-3
    assert (
        enc.model.text.tokenize(TEXTS[1:2])["input_ids"][0, 0] != deu.model.text.tokenize(TEXTS[1:2])["input_ids"][0, 0]
    )
    from cliplab.search.expression import parse

    terms = with_vectors(enc, parse('"Ein Hund" + "Katze"', lambda _v: False), "deu_Latn")
    np.testing.assert_allclose(np.stack([t.vector for t in terms]), deu.encode_texts(["Ein Hund", "Katze"]), atol=1e-6)


def test_a_language_is_refused_clearly(nllb_dir, xlmr_dir):
    with pytest.raises(CliplabError, match="unknown language code 'deu_Latin'.*deu_Latn"):
        in_language(load_encoder(str(nllb_dir)), "deu_Latin")
    with pytest.raises(CliplabError, match="takes no query language"):
        in_language(load_encoder(str(xlmr_dir)), "deu_Latn")
    lite = load_encoder("lite")
    assert in_language(lite, None) is lite  # no language: any model
    with pytest.raises(CliplabError, match="takes no query language"):
        in_language(lite, "deu_Latn")


def test_cli_lang_on_classify_and_search(nllb_dir, xlmr_dir, tmp_path, monkeypatch):
    from cliplab.cli import app

    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "indexes"))
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, rgb in enumerate([(200, 30, 30), (20, 160, 40), (30, 40, 200)]):
        Image.new("RGB", (40, 30), rgb).save(photos / f"p{i}.jpg")
    run = CliRunner().invoke
    opts = ["--runtime", "torch", "--json", "--lang", "deu_Latn"]
    r = run(app, ["classify", str(photos / "p0.jpg"), "--labels", "Hund,Katze", "--model", str(nllb_dir), *opts])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["model"] == str(nllb_dir)
    r = run(app, ["search", "ein roter Hund", "--dir", str(photos), "--model", str(nllb_dir), "--yes", *opts])
    assert r.exit_code == 0, r.output
    hits = json.loads(r.stdout)["results"]
    enc = in_language(load_encoder(str(nllb_dir)), "deu_Latn")
    want = enc.encode_texts(["ein roter Hund"])[0] @ enc.encode_images([Image.open(photos / hits[0]["path"])])[0]
    assert len(hits) == 3 and abs(hits[0]["score"] - float(want)) < 1e-4  # the query read as German
    r = run(app, ["classify", str(photos / "p0.jpg"), "--labels", "Hund,Katze", "--model", str(xlmr_dir), *opts])
    assert r.exit_code == 2 and "error:" in r.output and "takes no query language" in r.output


def test_api_search_reads_lang(nllb_dir, xlmr_dir, tmp_path, monkeypatch):
    """`/api/search?lang=` reads the query as that language (the CLI's --lang), cached apart from the
    same words read as English; a model without languages answers 400 with the CLI's sentence."""
    from fastapi.testclient import TestClient

    from cliplab.runtime import load_encoder as load_on
    from cliplab.serve import Settings, create_app, open_state

    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "indexes"))
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, rgb in enumerate([(200, 30, 30), (20, 160, 40), (30, 40, 200)]):
        Image.new("RGB", (40, 30), rgb).save(photos / f"p{i}.jpg")
    folders = {"nllb": photos, "xlmr": tmp_path / "xlmr-photos"}
    import shutil

    shutil.copytree(photos, folders["xlmr"])
    for name, model in (("nllb", nllb_dir), ("xlmr", xlmr_dir)):
        state = open_state(
            [folders[name]],
            model=str(model),
            loader=lambda spec: load_on(spec, runtime="torch"),
            settings=Settings(allowed_hosts=["testserver"]),
        )
        with TestClient(create_app(state)) as client:
            ask = {"q": "ein roter Hund", "mode": "semantic", "lang": "deu_Latn"}
            r = client.get("/api/search", params=ask)
            if name == "xlmr":
                assert r.status_code == 400 and "takes no query language" in r.json()["error"]
                continue
            assert r.status_code == 200, r.text
            top = r.json()["results"][0]
            enc = load_encoder(str(nllb_dir))
            image = enc.encode_images([Image.open(photos / top["path"])])[0]
            german = in_language(enc, "deu_Latn").encode_texts(["ein roter Hund"])[0] @ image
            english = enc.encode_texts(["ein roter Hund"])[0] @ image
            assert abs(top["score"] - float(german)) < 1e-4 and abs(german - english) > 1e-4
            plain = client.get("/api/search", params={**ask, "lang": ""}).json()["results"]
            assert abs(next(h for h in plain if h["path"] == top["path"])["score"] - float(english)) < 1e-4
            assert client.get("/api/search", params=ask).json()["results"][0]["score"] == top["score"]
            posted = client.post("/api/search", json=ask).json()["results"][0]  # a JSON body takes lang too
            assert (posted["path"], posted["score"]) == (top["path"], top["score"])
        state.close()
