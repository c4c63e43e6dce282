"""int8 graphs with ONNX Runtime, accepted only when they stay close to fp32, by one of two rules.

- **cosine** (every model): dynamic int8 weights on the MatMuls of transformer towers (CLIP
  vision/text, MiniLM): ~2× on CPU at cosine ≈ 0.9998 to fp32; accepted at mean cosine ≥ 0.999
  and min ≥ 0.99 on the tower's check inputs. CNN towers keep fp32 ("CNN"): dynamic int8 is slower
  *and* wrong for convolutions (docs/measurements).
- **task quality** (a model cliplab trained): its `cliplab.json` may declare, per tower, an int8
  recipe with its measured validation metrics and cosines (`"int8": {"image": {...}}`, written by
  tools/lite_int8_calibrate.py). A declared tower is accepted when the declaration itself meets
  the rule (every validation metric within 0.5 point of fp32, min cosine ≥ 0.99 on the validation
  set) *and* the graph built here keeps min cosine ≥ 0.99 on the check inputs. CNN towers use
  static int8 from the shipped activation ranges (calibrate.py).

A graph that misses its bar is dropped and fp32 is used. The rule that decided is recorded in the
cache manifest's int8 record ("rule"), the reason for fp32 also in the encoder's description.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from cliplab.data.atomic import atomic_replace

MIN_MEAN_COSINE = 0.999
MIN_COSINE = 0.99
MAX_METRIC_DELTA = 0.5  # points (metrics in %), the task-quality rule
CNN_CONV_NODES = 5  # a ViT has one Conv (the patch embedding); a CNN has dozens
INT8_VERSION = 2  # bump when the int8 graphs or rules change: cached int8 records are redone
COSINE_RULE = f"cosine to fp32: mean ≥ {MIN_MEAN_COSINE}, min ≥ {MIN_COSINE}"
TASK_RULE = f"task quality: validation metrics within {MAX_METRIC_DELTA} point, see cliplab.json"


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


def quantize_dynamic_int8(src: Path, dst: Path, per_channel: bool = True, exclude: list[str] | None = None) -> None:
    """Dynamic int8 (weights int8, activations quantised on the fly) for MatMul/Gemm, atomically;
    nodes named in `exclude` stay fp32."""
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
            nodes_to_exclude=list(exclude or []),
            extra_options={"DefaultTensorType": 1},  # FLOAT, for outputs of fused ops shape inference skips
        )
        atomic_replace(out, dst)


# --- the task-quality declaration (cliplab.json "int8") ----------------------------------------
def declared(folder: Path | None) -> dict[str, dict]:
    """{side: recipe} of the towers whose int8 the model's cliplab.json declares *and* whose
    declared measurements meet the task-quality rule; {} for anything else."""
    if folder is None:
        return {}
    try:
        decl = json.loads((Path(folder) / "cliplab.json").read_text(encoding="utf-8")).get("int8") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {side: rec for side, rec in decl.items() if isinstance(rec, dict) and meets_task_rule(rec)}


def meets_task_rule(rec: dict) -> bool:
    """Every declared validation delta within MAX_METRIC_DELTA points and min cosine ≥ MIN_COSINE."""
    try:
        deltas = [float(m["int8"]) - float(m["fp32"]) for m in rec["validation"].values()]
        return (
            bool(deltas)
            and all(abs(d) <= MAX_METRIC_DELTA + 1e-9 for d in deltas)
            and float(rec["cosine"]["min"]) >= MIN_COSINE
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return False


def build_int8(src: Path, dst: Path, recipe: dict | None, folder: Path | None = None) -> None:
    """The int8 graph of `src`: a declared recipe (static from a calibration file, or dynamic with
    fp32 nodes), else dynamic int8 on every MatMul/Gemm."""
    recipe = recipe or {}
    if recipe.get("method") == "static":
        from cliplab.runtime.calibrate import quantize_static_int8, read_calibration

        quantize_static_int8(src, dst, read_calibration(Path(folder) / recipe["calibration"]))
    else:
        quantize_dynamic_int8(src, dst, per_channel=True, exclude=recipe.get("fp32_nodes"))


def make_int8(
    src: Path,
    dst: Path,
    inputs: dict[str, np.ndarray],
    output: str,
    keep_cnn_fp32: bool = True,
    recipe: dict | None = None,
    folder: Path | None = None,
) -> dict:
    """Write `dst` as the int8 version of `src` if it passes its rule on `inputs`: the task-quality
    rule when `recipe` (a declared, rule-meeting tower of the model in `folder`) is given, else the
    cosine rule. Returns {"ok": True, "rule", "mean_cosine", "min_cosine"} or {"ok": False,
    "rule", "reason": why fp32 is kept}."""
    from cliplab.runtime.calibrate import CalibrationMismatch

    rule = TASK_RULE if recipe else COSINE_RULE
    if not recipe and keep_cnn_fp32 and conv_count(src) >= CNN_CONV_NODES:
        return {"ok": False, "rule": rule, "reason": "CNN"}
    ref = _run(src, inputs, output)
    try:
        build_int8(src, dst, recipe, folder)
    except CalibrationMismatch as e:
        return {"ok": False, "rule": rule, "reason": str(e)}
    cos = cosines(_run(dst, inputs, output), ref)
    rec = {"ok": True, "rule": rule, "mean_cosine": float(cos.mean()), "min_cosine": float(cos.min())}
    if recipe and rec["min_cosine"] >= MIN_COSINE:
        return rec
    if not recipe and rec["mean_cosine"] >= MIN_MEAN_COSINE and rec["min_cosine"] >= MIN_COSINE:
        return rec
    dst.unlink(missing_ok=True)
    if recipe:
        return {"ok": False, "rule": rule, "reason": f"int8 min cosine {rec['min_cosine']:.4f} < {MIN_COSINE}"}
    return {"ok": False, "rule": rule, "reason": f"int8 cosine {rec['mean_cosine']:.4f} < {MIN_MEAN_COSINE}"}
