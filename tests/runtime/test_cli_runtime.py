"""--runtime / --precision / --device on the commands that encode, and every output says what ran."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cliplab.cli import app


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, c in enumerate([(200, 20, 20), (20, 20, 200)]):
        Image.fromarray(np.full((64, 80, 3), c, np.uint8)).save(folder / f"{i}.jpg")
    return folder


def _run(*args):
    return CliRunner().invoke(app, list(args))


def test_classify_json_says_runtime(lite_pair, onnx_cache, images):
    r = _run("classify", str(images), "-l", "cat,dog", "--json", "--runtime", "onnx", "--precision", "int8")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["runtime"] == "onnx" and out["precision"]["image"] == "fp32 (int8 kept fp32: CNN)"


def test_embed_text_output_says_runtime(lite_pair, onnx_cache, images, tmp_path):
    r = _run("embed", str(images), "-o", str(tmp_path / "out"), "--runtime", "onnx")
    assert r.exit_code == 0, r.output
    assert "onnx fp32" in r.stdout


@pytest.mark.parametrize(
    "opt,value,msg",
    [
        ("--runtime", "tensorrt", "unknown runtime"),
        ("--precision", "fp16", "unknown precision"),
        ("--device", "tpu", "unknown device"),
    ],
)
def test_bad_runtime_options_are_one_line_errors(onnx_cache, images, opt, value, msg):
    r = _run("classify", str(images), "-l", "cat,dog", opt, value)
    assert r.exit_code == 2 and msg in r.stderr and "Traceback" not in r.output


def test_index_status_mentions_runtime(lite_pair, onnx_cache, images, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "indexes"))
    assert _run("index", str(images), "--runtime", "onnx").exit_code == 0
    r = _run("index", str(images), "--status", "--json", "--runtime", "onnx")
    assert r.exit_code == 0, r.output
    st = json.loads(r.stdout)
    assert st["runtime"]["runtime"] == "onnx" and "searchable with any" in st["runtime"]["note"]
