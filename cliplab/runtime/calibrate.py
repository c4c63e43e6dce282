"""Static int8 (QDQ) for a CNN tower from shipped activation ranges: reproducible and offline.

Dynamic int8 quantises activations on the fly and is slow and wrong for convolutions; static int8
needs each activation's range, measured once on real photos by a tool (tools/lite_int8_calibrate.py)
and shipped as a small JSON next to the weights (`int8_calibration.json`):

    {"format": "cliplab.int8-calibration", "version": 1, "op_types": ["Conv", "Clip", "Add"],
     "nodes": [names of the nodes to quantise], "ranges": {tensor: [lowest, highest]}, "photos": ...}

Building the int8 graph then reads no photo and no user data: it is a pure function of the fp32
graph and that file. Nodes outside "nodes" (the stem and first blocks, the head, the ConSE fusion)
stay fp32. A graph whose tensors the file does not name (another exporter) raises
CalibrationMismatch, and the tower keeps fp32.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np

from cliplab.data.atomic import atomic_replace, atomic_write_bytes
from cliplab.errors import CliplabError

FORMAT = "cliplab.int8-calibration"
VERSION = 1
OP_TYPES = ("Conv", "Clip", "Add")
DIGITS = 6  # significant digits kept of each range: the file is the same bytes from run to run


class CalibrationMismatch(CliplabError):
    """The calibration file does not describe this graph."""


def preprocess_graph(src: Path, dst: Path) -> None:
    """ORT's quantisation pre-processing (shape inference, Pad folded into Conv): the graph that
    calibration names and static quantisation reads."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(src), str(dst))


def node_tensors(graph, names: Iterable[str]) -> list[str]:
    """The activation tensors (inputs and outputs, not weights) of the named nodes, sorted."""
    want, weights = set(names), {i.name for i in graph.initializer}
    out = {t for n in graph.node if n.name in want for t in [*n.input, *n.output] if t and t not in weights}
    return sorted(out)


def _round(x: float) -> float:
    return float(f"{x:.{DIGITS}g}")


def activation_ranges(graph_path: Path, nodes: list[str], batches: Iterable[dict[str, np.ndarray]]) -> dict:
    """MinMax of every activation tensor of `nodes` over `batches` (fp32 graph, CPU) → {tensor: [lo, hi]}."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    model = onnx.load(str(graph_path))
    tensors = node_tensors(model.graph, nodes)
    have = {o.name for o in model.graph.output} | {i.name for i in model.graph.input}
    for t in tensors:
        if t not in have:
            model.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    lo = {t: np.inf for t in tensors}
    hi = {t: -np.inf for t in tensors}
    for feeds in batches:
        for t, v in zip(tensors, sess.run(tensors, feeds) if tensors else []):
            lo[t], hi[t] = min(lo[t], float(v.min())), max(hi[t], float(v.max()))
    # a range always holds 0 (a uint8 zero point must exist); rounded outward to DIGITS
    return {t: [_round(min(lo[t], 0.0)), _round(max(hi[t], 0.0))] for t in tensors}


def write_calibration(path: Path, nodes: list[str], ranges: dict, photos: dict) -> dict:
    cal = {
        "format": FORMAT,
        "version": VERSION,
        "method": "static QDQ: activations uint8 (MinMax), weights int8 per channel",
        "op_types": list(OP_TYPES),
        "photos": photos,
        "nodes": sorted(nodes),
        "ranges": dict(sorted(ranges.items())),
    }
    atomic_write_bytes(path, (json.dumps(cal, indent=1) + "\n").encode())
    return cal


def read_calibration(path: Path) -> dict:
    try:
        cal = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CalibrationMismatch(f"unreadable int8 calibration {path}: {e}") from None
    if not isinstance(cal, dict) or cal.get("format") != FORMAT or cal.get("version") != VERSION:
        raise CalibrationMismatch(f"{path}: not a {FORMAT} v{VERSION} file")
    return cal


def quantize_static_int8(src: Path, dst: Path, cal: dict) -> None:
    """Write `dst` = `src` with the calibrated nodes in int8 (QDQ, u8 activations, s8 per-channel
    weights), atomically. Raises CalibrationMismatch when the file misses a tensor of the graph."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantType
    from onnxruntime.quantization.calibrate import TensorData, TensorsData
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer

    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".quant-") as tmp:
        pre, out = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        preprocess_graph(src, pre)
        model = onnx.load(str(pre))
        present = {n.name for n in model.graph.node}
        nodes = [n for n in cal["nodes"] if n in present]
        missing = [t for t in node_tensors(model.graph, nodes) if t not in cal["ranges"]]
        if len(nodes) != len(cal["nodes"]) or missing or not nodes:
            raise CalibrationMismatch(
                f"int8 calibration does not match this graph ({len(cal['nodes']) - len(nodes)} nodes, "
                f"{len(missing)} tensors missing)"
            )
        f32 = np.float32
        ranges = {t: TensorData(lowest=f32(lo), highest=f32(hi)) for t, (lo, hi) in cal["ranges"].items()}
        q = QDQQuantizer(
            model,
            True,  # per channel
            False,  # reduce range: not needed with VNNI
            QuantType.QInt8,
            QuantType.QUInt8,
            TensorsData(CalibrationMethod.MinMax, ranges),
            nodes,
            [],
            list(cal.get("op_types", OP_TYPES)),
            {},
        )
        q.quantize_model()
        q.model.save_model_to_file(str(out), False)
        atomic_replace(out, dst)
