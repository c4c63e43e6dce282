"""int8 by task quality (issue 24): a model cliplab trained may declare in its cliplab.json that a
tower's int8 is accepted (validation metrics within 0.5 point, min cosine ≥ 0.99); every other
tower keeps the cosine rule (mean ≥ 0.999, min ≥ 0.99)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from cliplab.runtime import quantize
from cliplab.runtime.quantize import COSINE_RULE, TASK_RULE, declared, make_int8, meets_task_rule

GOOD = {"validation": {"a": {"fp32": 50.0, "int8": 50.5}, "b": {"fp32": 80.0, "int8": 79.6}}, "cosine": {"min": 0.991}}


def _rec(delta: float = 0.0, min_cos: float = 0.995, **extra) -> dict:
    return {
        "validation": {"a": {"fp32": 40.0, "int8": 40.0 + delta}},
        "cosine": {"mean": 0.998, "min": min_cos},
        **extra,
    }


def test_task_rule_needs_every_metric_within_half_a_point_and_min_cosine():
    assert meets_task_rule(GOOD)
    assert meets_task_rule(_rec(-0.5))
    assert not meets_task_rule(_rec(0.6))  # a gain moves the metric too
    assert not meets_task_rule(_rec(-0.6))
    assert not meets_task_rule(_rec(0.0, min_cos=0.989))
    assert not meets_task_rule({"cosine": {"min": 0.999}})  # no measurements: no acceptance
    assert not meets_task_rule({"validation": {}, "cosine": {"min": 0.999}})
    assert not meets_task_rule({"validation": {"a": {"fp32": "x"}}, "cosine": {"min": 0.999}})


def test_declared_reads_only_rule_meeting_towers(tmp_path):
    assert declared(None) == {}
    assert declared(tmp_path) == {}  # no cliplab.json
    (tmp_path / "cliplab.json").write_text(json.dumps({"format": "cliplab.checkpoint"}))
    assert declared(tmp_path) == {}  # a model without the declaration
    cfg = {"int8": {"rule": TASK_RULE, "image": _rec(0.2, method="static"), "text": _rec(1.0, method="dynamic")}}
    (tmp_path / "cliplab.json").write_text(json.dumps(cfg))
    assert list(declared(tmp_path)) == ["image"]  # the text tower's record misses the rule


# --- make_int8's decision, on a tiny graph whose "int8" version is a chosen perturbation ----------
def _matmul_graph(path, w: np.ndarray) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", w.shape[0]])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", w.shape[1]])
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [numpy_helper.from_array(w, "w")]
    )
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))


@pytest.fixture
def perturbed(tmp_path, monkeypatch):
    """(src, inputs, set_noise): the int8 graph make_int8 builds is src's weights + noise."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(16, 8)).astype(np.float32)
    src = tmp_path / "g.onnx"
    _matmul_graph(src, w)
    inputs = {"x": rng.normal(size=(32, 16)).astype(np.float32)}
    noise = {"scale": 0.0}

    def fake_build(s, dst, recipe, folder=None):
        _matmul_graph(dst, w + noise["scale"] * np.random.default_rng(1).normal(size=w.shape).astype(np.float32))

    monkeypatch.setattr(quantize, "build_int8", fake_build)
    return src, inputs, lambda s: noise.update(scale=s)


def _cosines(res):
    return res.get("mean_cosine"), res.get("min_cosine")


def test_declared_tower_is_accepted_below_0999_but_not_below_099(perturbed, tmp_path):
    src, inputs, set_noise = perturbed
    dst = tmp_path / "g.int8.onnx"
    set_noise(0.06)  # cosine ≈ 0.998: misses the cosine rule's 0.999, meets the task rule's 0.99
    plain = make_int8(src, dst, inputs, "y")
    assert not plain["ok"] and plain["rule"] == COSINE_RULE and plain["reason"].startswith("int8 cosine")
    assert not dst.exists()
    task = make_int8(src, dst, inputs, "y", recipe={"method": "dynamic"})
    assert task["ok"] and task["rule"] == TASK_RULE and dst.exists()
    assert 0.99 <= task["min_cosine"] and task["mean_cosine"] < 0.999, _cosines(task)
    set_noise(0.5)  # cosine well under 0.99: the declaration does not save it
    worse = make_int8(src, dst, inputs, "y", recipe={"method": "dynamic"})
    assert not worse["ok"] and worse["rule"] == TASK_RULE and "min cosine" in worse["reason"]
    assert not dst.exists()


def test_undeclared_cnn_keeps_fp32_without_quantising(monkeypatch, tmp_path):
    """Without a declaration a CNN tower is not even quantised (the cosine rule's "CNN")."""
    monkeypatch.setattr(quantize, "conv_count", lambda _p: 40)
    monkeypatch.setattr(quantize, "build_int8", lambda *a, **k: pytest.fail("quantised a CNN without a declaration"))
    res = make_int8(tmp_path / "cnn.onnx", tmp_path / "cnn.int8.onnx", {}, "y")
    assert res == {"ok": False, "rule": COSINE_RULE, "reason": "CNN"}


# --- a real lite checkpoint with a declaration, through the loader ------------------------------
@pytest.fixture(scope="module")
def declared_lite(tmp_path_factory):
    """A copy of the shipped lite checkpoint whose cliplab.json declares the image tower's int8
    (numbers meeting the rule) and the text tower's (numbers missing it)."""
    from cliplab.models.specs import lite_dir

    src = lite_dir()
    if not (src / "int8_calibration.json").is_file():
        pytest.skip("lite has no int8_calibration.json (make lite-model writes it)")
    d = tmp_path_factory.mktemp("declared") / "lite-copy"
    d.mkdir()
    for f in ("cliplab.json", "model.safetensors", "int8_calibration.json"):
        shutil.copy(src / f, d / f)
    cfg = json.loads((d / "cliplab.json").read_text())
    cfg["int8"] = {
        "rule": TASK_RULE,
        "image": {"method": "static", "calibration": "int8_calibration.json", **GOOD},
        "text": {"method": "dynamic", **_rec(2.0)},
    }
    (d / "cliplab.json").write_text(json.dumps(cfg))
    return d


def test_declared_checkpoint_runs_the_declared_int8_graph(declared_lite, onnx_cache, monkeypatch, photos):
    monkeypatch.setenv("CLIPLAB_NO_JIT", "1")
    from cliplab.runtime import load, runtime_label

    enc = load(str(declared_lite), runtime="onnx", precision="int8", notify=lambda _m: None)
    assert enc.precision["image"] == "int8"
    assert enc.image.graph["file"] == "image.int8.onnx"  # really another graph
    graphs = enc.entry.manifest["towers"]["image"]["graphs"]
    assert graphs["int8"]["rule"] == TASK_RULE and graphs["int8"]["min_cosine"] >= 0.99
    assert graphs["int8"]["version"] == quantize.INT8_VERSION
    text = enc.entry.manifest["towers"]["text"]["graphs"]["int8"]
    assert text["rule"] == COSINE_RULE  # its record misses the task rule: the cosine rule decides
    assert enc.precision["text"] == "int8" if "file" in text else enc.precision["text"].startswith("fp32 (int8")
    assert "image kept fp32" not in runtime_label(enc)
    fp32 = load(str(declared_lite), runtime="onnx", notify=lambda _m: None)
    got, want = enc.encode_images(photos), fp32.encode_images(photos)
    cos = (got * want).sum(1)
    # int8: close, not identical (the 0.99 bar is on the check inputs; these test cards are harsher)
    assert cos.min() > 0.95 and np.abs(got - want).max() > 1e-4


def test_cache_key_follows_the_declaration(declared_lite, tmp_path):
    """A changed declaration or calibration is another cache entry: never a reused one."""
    from cliplab.runtime.keys import cache_key

    d = tmp_path / "ckpt"
    shutil.copytree(declared_lite, d)
    before = cache_key(str(d), 17)
    cfg = json.loads((d / "cliplab.json").read_text())
    cfg["int8"]["image"]["cosine"]["min"] = 0.95
    (d / "cliplab.json").write_text(json.dumps(cfg))
    after = cache_key(str(d), 17)
    assert after != before
    cal = json.loads((d / "int8_calibration.json").read_text())
    cal["ranges"] = {k: [lo, hi * 2] for k, (lo, hi) in cal["ranges"].items()}
    (d / "int8_calibration.json").write_text(json.dumps(cal))
    assert cache_key(str(d), 17) != after


def test_old_int8_records_are_redone():
    """An entry whose int8 records predate this rule version (or its rules) is prepared again."""
    from cliplab.runtime.select import needs_int8

    m = {"towers": {"image": {"graphs": {"fp32": {}, "int8": {"fallback": "CNN"}}}, "text": {"graphs": {"fp32": {}}}}}
    assert needs_int8(m)
    for t in m["towers"].values():
        t["graphs"]["int8"] = {"fallback": "x", "version": quantize.INT8_VERSION}
    assert not needs_int8(m)
