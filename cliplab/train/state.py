"""What a training run keeps in its folder besides the checkpoint: the resumable state and the metrics.

`train_state.pt` holds the last weights + optimizer, scheduler, RNG and history (everything
`--resume` needs to continue bit-for-bit); `metrics.jsonl` one line per epoch, `metrics.png` its plot.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from cliplab.data.atomic import atomic_write_bytes
from cliplab.train.config import TrainError

STATE_FILE = "train_state.pt"
METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "metrics.png"


def save_state(out: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(out / STATE_FILE, buf.getvalue())


def write_metrics(out: Path, history: list[dict]) -> None:
    from cliplab.train.plots import plot_metrics

    atomic_write_bytes(out / METRICS_FILE, "".join(json.dumps(h) + "\n" for h in history).encode())
    plot_metrics(history, out / PLOT_FILE)


def load_state(out: Path) -> dict:
    f = out / STATE_FILE
    if not f.is_file():
        raise TrainError(f"cannot resume {out}: no {STATE_FILE} (not a training run, or it was exported)")
    try:
        return torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 truncated or foreign file
        raise TrainError(f"cannot resume {out}: unreadable {STATE_FILE} ({type(e).__name__}: {e})") from None
