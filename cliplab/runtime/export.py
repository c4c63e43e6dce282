"""Tower → ONNX graph, checked against torch before anyone may use it.

The classic TorchScript-based exporter (`dynamo=False`) is used: it needs no onnxscript and, at
opset 17, reproduces the `lite` and CLIP towers to ~1e-6 (docs/measurements). The batch axis is
dynamic, and so is the sequence axis of text inputs (they are padded to the longest in a batch).
A tower may trace an equivalent `export_module` and ask for ONNX Runtime's transformer fusion
(`onnx_fusion`, fuse.py); the final graph is what gets checked against `torch_module`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from cliplab.data.atomic import atomic_path, atomic_replace
from cliplab.errors import CliplabError

DEFAULT_OPSET = 17
EXPORT_VERSION = 3  # bump when this module changes what it writes (part of the cache key)
MAX_ABS_DIFF = 1e-4  # on L2-normalised outputs, ONNX vs torch


class ExportError(CliplabError):
    """A tower that cannot be exported, or whose graph disagrees with torch."""


def _normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _dynamic_axes(names: list[str], output: str, text: bool) -> dict:
    axes = {n: ({0: "batch", 1: "sequence"} if text else {0: "batch"}) for n in names}
    axes[output] = {0: "batch"}
    return axes


def torch_outputs(tower, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """What the tower's torch module returns for these named inputs, as float32 numpy."""
    import torch

    module = tower.torch_module()
    with torch.inference_mode():
        out = module(*[torch.from_numpy(np.ascontiguousarray(v)) for v in inputs.values()])
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out.detach().float().cpu().numpy()


def check_graph(path: Path, tower, inputs: dict[str, np.ndarray], tol: float = MAX_ABS_DIFF) -> float:
    """Max |diff| of L2-normalised ONNX vs torch outputs; raises ExportError above `tol`."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    got = sess.run([tower.output_name], {k: v for k, v in inputs.items()})[0]
    want = torch_outputs(tower, inputs)
    if got.shape != want.shape:
        raise ExportError(f"{tower.name}: ONNX output shape {got.shape} != torch {want.shape}")
    diff = float(np.abs(_normalize(got) - _normalize(want)).max())
    if not np.isfinite(diff) or diff > tol:
        raise ExportError(
            f"{tower.name} ({tower.modality}): ONNX graph differs from torch "
            f"(max |diff| {diff:.2e} > {tol:.0e}); not using it"
        )
    return diff


def export_checked(tower, path: Path, opset: int = DEFAULT_OPSET) -> float:
    """Trace `tower.torch_module()` into `path` (atomically), then check it against torch on the
    example inputs of two batch sizes (a shape baked into the graph shows up as a mismatch).
    Returns the max |diff| found."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = tower.modality == "text"
    example = tower.example_inputs(2)
    names = list(example)
    module = tower.export_module().eval()
    try:
        with atomic_path(path, fsync=False) as tmp:  # a cache entry's manifest (written last) commits it
            with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module,
                    tuple(torch.from_numpy(np.ascontiguousarray(v)) for v in example.values()),
                    tmp,
                    input_names=names,
                    output_names=[tower.output_name],
                    dynamic_axes=_dynamic_axes(names, tower.output_name, text),
                    opset_version=opset,
                    do_constant_folding=True,
                    dynamo=False,
                )
            diff = max(check_graph(Path(tmp), tower, tower.example_inputs(n)) for n in (2, 3))
            diff = _fuse(tower, Path(tmp), diff)
    except ExportError:
        raise
    except Exception as e:  # noqa: BLE001 the exporter raises anything; the user needs one line
        msg = " ".join(str(e).split())[:300]
        raise ExportError(f"cannot export the {tower.modality} tower {tower.name!r} to ONNX: {msg}") from None
    return diff


def _fuse(tower, graph: Path, diff: float) -> float:
    """Replace `graph` by its ORT-fused form when the tower asks for one and the fused graph passes
    the same check; otherwise keep it as exported (fusion is only a speed-up)."""
    hints = tower.onnx_fusion()
    if not hints:
        return diff
    from cliplab.runtime.fuse import fuse_transformer

    fused = graph.with_name(graph.name + ".fused")
    try:
        if not fuse_transformer(graph, fused, **hints):
            return diff
        fused_diff = max(check_graph(fused, tower, tower.example_inputs(n)) for n in (2, 3))
        atomic_replace(fused, graph)
        return fused_diff
    except Exception:  # noqa: BLE001 an optimizer that cannot handle a graph leaves it unfused
        return diff
    finally:
        fused.unlink(missing_ok=True)
