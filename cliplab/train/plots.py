"""Training curves (loss; R@1/5/10 in both directions) as one PNG, with matplotlib's Agg backend."""

from __future__ import annotations

import io
from pathlib import Path


def plot_metrics(history: list[dict], path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from cliplab.data.atomic import atomic_write_bytes

    validated = any("t2i_R@1" in h for h in history)
    fig = Figure(figsize=(11, 4) if validated else (5, 4))
    ax_loss, ax_t2i, ax_i2t = fig.subplots(1, 3) if validated else (fig.subplots(1, 1), None, None)
    epochs = [h["epoch"] for h in history]
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        pts = [(h["epoch"], h[key]) for h in history if h.get(key) is not None]
        if pts:
            ax_loss.plot(*zip(*pts), marker=".", label=label)
    ax_loss.set(title="loss" if validated else "loss (no validation split)", xlabel="epoch")
    for ax, direction, title in ((ax_t2i, "t2i", "text → image"), (ax_i2t, "i2t", "image → text")):
        if ax is None:
            continue
        for k in (1, 5, 10):
            key = f"{direction}_R@{k}"
            if any(key in h for h in history):
                ax.plot(epochs, [h.get(key, float("nan")) for h in history], marker=".", label=f"R@{k}")
        ax.set(title=f"validation {title}", xlabel="epoch", ylim=(0, 1))
    for ax in (ax_loss, ax_t2i, ax_i2t):
        if ax is not None and ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)
