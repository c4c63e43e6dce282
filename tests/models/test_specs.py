"""`models/specs.py`: the one owner of model specs, `auto`, and vector identity."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cliplab.errors import ModelNotFoundError, ModelSpecError
from cliplab.models import specs


@pytest.mark.parametrize(
    ("text", "kind", "variant", "dim"),
    [
        ("lite", "lite", None, None),
        (None, "lite", None, None),
        ("  conse ", "conse", "lite0", None),
        ("conse:lite2", "conse", "lite2", None),
        ("preclip", "preclip", None, 64),
        ("preclip:16", "preclip", None, 16),
        ("someorg/some-clip", "hub", None, None),
    ],
)
def test_parse(text, kind, variant, dim):
    s = specs.parse(text)
    assert (s.kind, s.variant, s.dim) == (kind, variant, dim)
    assert s.fitted == (kind == "preclip")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("preclip:abc", "positive whole number"),
        ("preclip:0", "positive whole number"),
        ("conse:lite9", "conse:lite1"),
        ("lite:x", "unknown model"),
        ("litee", "unknown model"),
        ("./no/such/folder", "not a checkpoint directory"),
    ],
)
def test_bad_specs_are_one_typed_error(text, needle):
    with pytest.raises(ModelSpecError, match=needle) as ei:
        specs.parse(text)
    assert isinstance(ei.value, ModelNotFoundError) and "\n" not in str(ei.value)


def test_the_loader_raises_the_same_error():
    """Formerly `load_encoder("preclip:abc")` was a bare ValueError from int()."""
    from cliplab.models import load_encoder

    with pytest.raises(ModelSpecError, match="positive whole number"):
        load_encoder("preclip:abc")


def test_folders_are_recorded_by_absolute_path(tmp_path, monkeypatch):
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "cliplab.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    s = specs.parse("ck")
    assert (s.kind, s.text) == ("checkpoint", str(ck.resolve()))
    (tmp_path / "plain").mkdir()
    with pytest.raises(ModelSpecError, match="neither a cliplab checkpoint"):
        specs.parse("plain")


def _fake_hub(tmp_path, monkeypatch, files):
    from huggingface_hub import constants

    snap = tmp_path / "hub" / "models--openai--clip-vit-base-patch32" / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    (snap.parents[1] / "refs").mkdir()
    (snap.parents[1] / "refs" / "main").write_text("0" * 40)
    for f in files:
        (snap / f).write_text(json.dumps({"model_type": "clip", "projection_dim": 512}) if f == "config.json" else "x")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def test_auto_needs_the_tokenizer_everywhere(tmp_path, monkeypatch):
    """One rule for `auto`: weights without a tokenizer cannot load offline, so auto is lite, and the
    ONNX cache key (which once used a looser rule) says the same."""
    from cliplab.runtime import keys

    _fake_hub(tmp_path, monkeypatch, ["config.json", "model.safetensors"])
    assert specs.resolve_auto() == "lite" and specs.normalize("auto") == "lite"
    assert keys.sources("auto")[0] == "lite"
    (specs.hub_snapshot(specs.DEFAULT_CLIP) / "tokenizer.json").write_text("x")
    assert specs.resolve_auto() == specs.DEFAULT_CLIP == specs.normalize("auto")
    assert keys.sources("auto")[0] == f"hf:{specs.DEFAULT_CLIP}"
    assert [r["spec"] for r in specs.available_models() if r["spec"] == specs.DEFAULT_CLIP and r["installed"]]


def test_vector_identity_ignores_how_a_model_ran():
    d = {"model": "lite", "dim": 4, "weights": "abc", "logit_scale": 14.0}
    ran = {**d, "runtime": "onnx", "precision": {"image": "int8"}, "device": "cpu", "runtime_note": "x"}
    assert specs.vector_identity(ran) == specs.vector_identity(d) == {"model": "lite", "dim": 4, "weights": "abc"}
    assert specs.identity_differences(d, {**d, "weights": "def"}) == "weights was abc, now def"


def test_every_owner_of_vectors_uses_the_one_identity():
    from cliplab.distributed.worker import model_fingerprint
    from cliplab.index.collection import _fingerprint
    from tests.helpers import ToyEncoder

    enc = ToyEncoder()
    assert model_fingerprint(enc) == _fingerprint(enc) == specs.vector_identity(enc.describe())


def test_specs_import_without_torch():
    code = "import sys, cliplab.models.specs as s; s.parse('conse:lite1'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_model_table_lists_the_builtins():
    rows = {r["spec"]: r for r in specs.available_models()}
    assert rows["lite"]["installed"] and rows["lite"]["default"] and rows["conse"]["dim"] == specs.TEXT_DIM
    assert rows["auto"]["source"].startswith("resolves to")
