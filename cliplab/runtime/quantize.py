"""int8 graphs with ONNX Runtime's dynamic quantization, accepted only when they stay close to fp32.

Transformer towers (CLIP vision/text, MiniLM) get dynamic int8 weights on their MatMuls: ~2× on
CPU at cosine ≈ 0.9998 to fp32. CNN towers (EfficientNet in `lite`) stay fp32: no post-training
int8 recipe we measured kept cosine ≥ 0.999 (dynamic int8 is also *slower* for convolutions; see
docs/measurements), and an int8 graph that moves vectors is not worth its speed. Every int8 graph
is compared with its fp32 graph at quantize time; one that misses the bar is dropped and the fp32
graph is used, and the reason is recorded (and shown in the encoder's description).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from cliplab.data.atomic import atomic_replace

MIN_MEAN_COSINE = 0.999
MIN_COSINE = 0.99
CNN_CONV_NODES = 5  # a ViT has one Conv (the patch embedding); a CNN has dozens


def conv_count(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return sum(1 for n in model.graph.node if n.op_type == "Conv")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return (a * b).sum(axis=1)


def _run(path: Path, inputs: dict[str, np.ndarray], output: str) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run([output], inputs)[0]


def quantize_dynamic_int8(src: Path, dst: Path, per_channel: bool = True) -> None:
    """Dynamic int8 (weights int8, activations quantised on the fly) for MatMul/Gemm, atomically."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".quant-") as tmp:
        pre, out = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        try:  # symbolic shape inference fails on the text graphs; the ONNX one is enough
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        except Exception:  # noqa: BLE001 pre-processing is an optimisation
            pre = src
        quantize_dynamic(
            str(pre),
            str(out),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            op_types_to_quantize=["MatMul", "Gemm", "Attention"],  # Attention: fused ViT layers (fuse.py)
            extra_options={"DefaultTensorType": 1},  # FLOAT, for outputs of fused ops shape inference skips
        )
        atomic_replace(out, dst)


def make_int8(src: Path, dst: Path, inputs: dict[str, np.ndarray], output: str, keep_cnn_fp32: bool = True) -> dict:
    """Write `dst` as the int8 version of `src` if it is close enough to fp32 on `inputs`.

    Returns {"ok": True, "mean_cosine", "min_cosine"} or {"ok": False, "reason": why fp32 is kept}."""
    if keep_cnn_fp32 and conv_count(src) >= CNN_CONV_NODES:
        return {"ok": False, "reason": "CNN"}
    ref = _run(src, inputs, output)
    quantize_dynamic_int8(src, dst, per_channel=True)
    cos = cosines(_run(dst, inputs, output), ref)
    rec = {"ok": True, "mean_cosine": float(cos.mean()), "min_cosine": float(cos.min())}
    if rec["mean_cosine"] >= MIN_MEAN_COSINE and rec["min_cosine"] >= MIN_COSINE:
        return rec
    dst.unlink(missing_ok=True)
    return {"ok": False, "reason": f"int8 cosine {rec['mean_cosine']:.4f} < {MIN_MEAN_COSINE}"}
