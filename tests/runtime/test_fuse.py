"""The SkipLayerNormalization split gives the outputs the fused op gives."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from cliplab.runtime.device import batch_parallelism
from cliplab.runtime.fuse import split_skip_layernorm


def _graph(with_bias: bool) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    d = 8
    inits = [numpy_helper.from_array(rng.normal(size=d).astype(np.float32), n) for n in ("gamma", "beta", "bias")]
    inputs = ["x", "skip", "gamma", "beta"] + (["bias"] if with_bias else [])
    node = helper.make_node(
        "SkipLayerNormalization", inputs, ["y", "", "", "sum"], domain="com.microsoft", epsilon=1e-5, name="sln"
    )
    after = helper.make_node("Mul", ["sum", "y"], ["out"], name="use_both")  # both outputs are used downstream
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 5, d]) for n in ("x", "skip", "out")]
    g = helper.make_graph([node, after], "g", vi[:2], vi[2:], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])


def _run(model: onnx.ModelProto, feeds) -> np.ndarray:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def test_split_skip_layernorm_keeps_the_outputs():
    rng = np.random.default_rng(1)
    feeds = {n: rng.normal(size=(3, 5, 8)).astype(np.float32) for n in ("x", "skip")}
    for with_bias in (True, False):
        model = _graph(with_bias)
        want = _run(model, feeds)
        assert split_skip_layernorm(model.graph) == 1
        ops = [n.op_type for n in model.graph.node]
        assert "SkipLayerNormalization" not in ops and "LayerNormalization" in ops
        assert ops.count("Add") == (2 if with_bias else 1)
        np.testing.assert_allclose(_run(model, feeds), want, atol=1e-5)


def test_batch_parallelism():
    assert batch_parallelism(1) == (1, 1)
    assert batch_parallelism(2) == (2, 1)
    assert batch_parallelism(8) == (4, 2)
    assert batch_parallelism(16) == (4, 4)
