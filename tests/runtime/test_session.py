"""OnnxTower / OnnxEncoder without torch: same token ids as the HF tokenizers, sessions only when
needed, device and option validation."""

from __future__ import annotations

import numpy as np
import pytest

from cliplab.errors import CliplabError
from cliplab.runtime import device, load, runtime_label


@pytest.fixture(scope="module")
def clip_encoders(tiny_clip, session_cache):
    """session_cache: tests/conftest.py's CLIPLAB_CACHE, which stays set for later tests."""
    return load(str(tiny_clip), runtime="torch"), load(str(tiny_clip), runtime="onnx")


def _same_tokens(torch_tower, onnx_tower, texts):
    want, got = torch_tower.tokenize(texts), onnx_tower.tokenize(texts)
    assert set(got) == set(want)
    for k in want:
        assert got[k].dtype == np.int64 and np.array_equal(got[k], want[k]), k


def test_clip_tokens_equal_hf(clip_encoders, texts):
    torch_enc, onnx_enc = clip_encoders
    _same_tokens(torch_enc.model.text, onnx_enc.model.text, texts)
    _same_tokens(torch_enc.model.text, onnx_enc.model.text, ["one"])  # no padding at all
    assert onnx_enc.model.text.tokenize(texts)["input_ids"].shape[1] == 77  # truncated to max_length


def test_minilm_tokens_equal_hf(lite_pair, texts):
    torch_enc, onnx_enc, _ = lite_pair
    _same_tokens(torch_enc.model.text, onnx_enc.model.text, texts)
    assert "token_type_ids" in onnx_enc.model.text.tokenize(["a"])


def test_preprocess_equals_torch_towers(clip_encoders, lite_pair, photos):
    for torch_enc, onnx_enc in (clip_encoders, lite_pair[:2]):
        for im in photos:
            assert np.array_equal(onnx_enc.preprocess(im), torch_enc.preprocess(im))


def test_preprocess_into_a_batch_row_equals_preprocess(clip_encoders, lite_pair, photos):
    for _, onnx_enc in (clip_encoders, lite_pair[:2]):
        batch = np.full((len(photos) + 1, *onnx_enc.preprocess(photos[0]).shape), np.nan, np.float32)
        for i, im in enumerate(photos):
            onnx_enc.preprocess_into(im, batch[i + 1])
        assert np.isnan(batch[0]).all()  # only its own row is written
        assert np.array_equal(batch[1:], np.stack([onnx_enc.preprocess(im) for im in photos]))


def test_sessions_are_created_lazily(tiny_clip, onnx_cache):
    enc = load(str(tiny_clip), runtime="onnx")
    assert enc.image._session is None and enc.text._session is None
    enc.encode_texts(["a dog"])
    assert enc.text._session is not None and enc.image._session is None  # a text search: text graph only


def test_runtime_and_precision_validation(tiny_clip, onnx_cache):
    with pytest.raises(CliplabError, match="unknown runtime"):
        load(str(tiny_clip), runtime="tensorrt")
    with pytest.raises(CliplabError, match="unknown precision"):
        load(str(tiny_clip), precision="fp8")
    with pytest.raises(CliplabError, match="int8 needs the ONNX runtime"):
        load(str(tiny_clip), runtime="torch", precision="int8")
    with pytest.raises(CliplabError, match="unknown device"):
        load(str(tiny_clip), device="tpu")


def test_preclip_runs_on_torch_and_says_so(onnx_cache):
    enc = load("preclip", runtime="onnx")
    assert "runs on torch" in runtime_label(enc) and runtime_label(enc).startswith("torch fp32")


def test_auto_picks_onnx_when_installed(tiny_clip, onnx_cache, monkeypatch):
    from cliplab.runtime import select

    assert load(str(tiny_clip)).describe()["runtime"] == "onnx"
    monkeypatch.setattr(select, "onnx_available", lambda: False)
    assert runtime_label(load(str(tiny_clip))) == "torch fp32"
    with pytest.raises(CliplabError, match="onnxruntime is not installed"):
        load(str(tiny_clip), runtime="onnx")


def test_device_selection(monkeypatch):
    import onnxruntime as ort
    import torch

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.ort_providers("auto") == ["CPUExecutionProvider"]
    assert device.torch_device("auto") == "cpu" and device.torch_device("cpu") == "cpu"
    with pytest.raises(CliplabError, match="no CUDA provider"):
        device.ort_providers("cuda")
    with pytest.raises(CliplabError, match="no CUDA GPU"):
        device.torch_device("cuda")
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.ort_providers("auto") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert device.ort_providers("cpu") == ["CPUExecutionProvider"]
    assert device.torch_device("auto") == "cuda" and device.torch_device("cuda") == "cuda"


def test_cuda_without_gpu_is_one_line_error(tiny_clip, onnx_cache, monkeypatch):
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(CliplabError) as e:
        load(str(tiny_clip), runtime="onnx", device="cuda")
    assert "\n" not in str(e.value)


def test_threads(monkeypatch):
    monkeypatch.setenv("CLIPLAB_THREADS", "3")
    assert device.cpu_threads() == 3
    monkeypatch.setenv("CLIPLAB_THREADS", "many")
    with pytest.raises(CliplabError):
        device.cpu_threads()
    monkeypatch.delenv("CLIPLAB_THREADS")
    assert device.cpu_threads() >= 1


def test_torch_gpu_fallback_for_cpu_only_towers(monkeypatch):
    """With a GPU present, `auto` keeps a tower that cannot move on the CPU and says so; `cuda`
    asked by name is a one-line error rather than a silent CPU run."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    enc = load("preclip", runtime="torch", device="auto")
    assert enc.runtime_info["device"] == "cpu"
    with pytest.raises(CliplabError) as e:
        load("preclip", runtime="torch", device="cuda")
    assert str(e.value).startswith("--device cuda: ") and "\n" not in str(e.value)
