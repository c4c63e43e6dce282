"""`--device auto|cpu|cuda` → ONNX Runtime execution providers or a torch device.

`auto` takes the GPU when the runtime can use one (ORT's CUDAExecutionProvider is installed and
usable / torch sees CUDA), else the CPU. `cuda` without one is a one-line error, not a silent CPU run.
"""

from __future__ import annotations

import os

from cliplab.errors import CliplabError

DEVICES = ("auto", "cpu", "cuda")


def check_device(device: str | None) -> str:
    d = (device or "auto").strip().lower()
    if d not in DEVICES:
        raise CliplabError(f"unknown device {device!r}: use auto, cpu or cuda")
    return d


def ort_device(device: str | None) -> str:
    """'cpu' or 'cuda' for ONNX Runtime."""
    import onnxruntime as ort

    d = check_device(device)
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if d == "cuda" and not has_cuda:
        raise CliplabError(
            "--device cuda: ONNX Runtime has no CUDA provider here (no GPU, or the CPU-only "
            "onnxruntime package; install onnxruntime-gpu), use --device cpu"
        )
    return "cuda" if d == "cuda" or (d == "auto" and has_cuda) else "cpu"


def ort_providers(device: str | None) -> list:
    if ort_device(device) == "cuda":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def torch_device(device: str | None) -> str:
    """'cpu' or 'cuda' for torch."""
    d = check_device(device)
    if d == "cpu":
        return "cpu"
    import torch

    has_cuda = bool(torch.cuda.is_available())
    if d == "cuda" and not has_cuda:
        raise CliplabError("--device cuda: torch sees no CUDA GPU here, use --device cpu")
    return "cuda" if has_cuda else "cpu"


def cpu_threads() -> int:
    """Threads for the model's math: $CLIPLAB_THREADS, else the cores this process may use."""
    from cliplab.settings import settings

    n = settings().threads  # SettingsError (a CliplabError) names a bad value
    if n:
        return n
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def batch_parallelism(threads: int) -> tuple[int, int]:
    """(callers, threads per call) for throughput on `threads` cores: a batch is split across up to 4
    concurrent calls of one session. Measured on 2 cores: 2 calls × 1 thread embed 1–10 % more images/s
    than 1 call × 2 threads for the int8 ViT-B/32 across runs (its many small ops scale poorly inside
    one call), 0–5 % for the `lite` CNN (benchmarks/int8_vit.py); both calls share one session, so no memory
    is duplicated."""
    callers = max(1, min(4, threads))
    return callers, max(1, threads // callers)
