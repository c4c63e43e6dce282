"""Comparison tables (rows = models) as markdown / CSV, and the plots `--out` writes (Agg backend)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from cliplab.jsonable import jsonable


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _zeroshot_table(results: dict) -> tuple[list[str], list[list]]:
    ks = [k for k in next(iter(results.values())) if k.startswith("top")]
    cols = ["model", *ks, "mean_per_class_recall", "n", "failed"]
    return cols, [
        [name, *[r[k] for k in ks], r["mean_per_class_recall"], r["n"], r["n_failed"]] for name, r in results.items()
    ]


def _retrieval_table(results: dict) -> tuple[list[str], list[list]]:
    first = next(iter(results.values()))["text_to_image"]
    ks = [k for k in first if k.startswith("R@")]
    cols = [
        "model",
        *[f"t2i {k}" for k in ks],
        "t2i mAP",
        "t2i median rank",
        *[f"i2t {k}" for k in ks],
        "i2t mAP",
        "i2t median rank",
        "images",
        "texts",
        "failed",
    ]
    rows = []
    for name, r in results.items():
        row = [name]
        for d in ("text_to_image", "image_to_text"):
            row += [r[d][k] for k in ks] + [r[d]["mAP"], r[d]["median_rank"]]
        rows.append(row + [r["n_images"], r["n_texts"], r["n_failed"]])
    return cols, rows


def _probe_table(results: dict) -> tuple[list[str], list[list]]:
    shots = list(next(iter(results.values()))["accuracy"])
    cols = ["model", *[s if s == "all" else f"{s}-shot" for s in shots], "train", "test", "failed"]
    return cols, [
        [name, *[r["accuracy"][s] for s in shots], r["n_train"], r["n_test"], r["n_failed"]]
        for name, r in results.items()
    ]


def _instance_table(results: dict) -> tuple[list[str], list[list]]:
    protos = list(next(iter(results.values()))["protocols"])
    pk = [k for k in next(iter(results.values()))["protocols"][protos[0]] if k.startswith("P@")][-1:]
    suffix = (lambda p: "") if protos == ["labels"] else (lambda p: f" {p}")
    cols = ["model", *[f"{m}{suffix(p)}" for p in protos for m in ("mAP", *pk)], "queries", "db", "failed"]
    rows = []
    for name, r in results.items():
        vals = [r["protocols"][p][m] for p in protos for m in ("mAP", *pk)]
        rows.append([name, *vals, r["n_queries"], r["n_db"], r["n_failed"]])
    return cols, rows


TABLES = {
    "zeroshot": _zeroshot_table,
    "retrieval": _retrieval_table,
    "probe": _probe_table,
    "instance": _instance_table,
}


def comparison_table(task: str, results: dict) -> tuple[list[str], list[list]]:
    """(columns, rows) for one task's {model: result} — the same table in terminal, md and CSV."""
    if task not in TABLES:
        raise ValueError(f"unknown task {task!r} (have: {', '.join(TABLES)})")
    return TABLES[task](results)


def markdown(columns: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def csv_text(columns: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(columns)
    w.writerows([[_fmt(v) for v in r] for r in rows])
    return buf.getvalue()


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _plt().close(fig)
    return path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def plot_confusion(cm: np.ndarray, names: list[str], path: Path, title: str) -> Path:
    plt = _plt()
    c = len(names)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = min(4 + 0.35 * c, 14)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if c <= 40:  # beyond that, labels are unreadable anyway
        ax.set_xticks(range(c), names, rotation=90, fontsize=8)
        ax.set_yticks(range(c), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class")
    return _save(fig, path)


def plot_per_class(per_class: dict[str, dict[str, float]], path: Path, title: str) -> Path:
    """{model: {class: accuracy}} → grouped bars (≤ 40 classes) or sorted curves (more)."""
    plt = _plt()
    classes = sorted({c for d in per_class.values() for c in d})
    fig, ax = plt.subplots(figsize=(max(6, min(0.5 * len(classes) * max(1, len(per_class) / 2), 18)), 4.5))
    if len(classes) <= 40:
        width = 0.8 / len(per_class)
        for i, (model, acc) in enumerate(per_class.items()):
            ax.bar(np.arange(len(classes)) + i * width, [acc.get(c, np.nan) for c in classes], width, label=model)
        ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2, classes, rotation=60, ha="right", fontsize=8)
    else:
        for model, acc in per_class.items():
            ax.plot(sorted(acc.values(), reverse=True), label=model)
        ax.set_xlabel("classes, sorted by accuracy")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def plot_recall_curves(first_ranks: dict[str, dict[str, np.ndarray]], path: Path, title: str) -> Path:
    """{model: {direction: first-relevant ranks}} → R@K against K (log scale), one panel per direction."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, d in zip(axes, ("text_to_image", "image_to_text")):
        for model, ranks in first_ranks.items():
            r = np.sort(np.asarray(ranks[d]))
            k = np.arange(1, int(r.max()) + 1)
            ax.plot(k, np.searchsorted(r, k, side="right") / len(r), drawstyle="steps-post", label=model)
        ax.set_xscale("log")
        ax.set_xlabel("K")
        ax.set_title(d.replace("_", " → ").replace(" → to → ", " → "))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("R@K")
    axes[0].set_ylim(0, 1)
    axes[1].legend()
    fig.suptitle(title)
    return _save(fig, path)


def plot_probe(results: dict, path: Path, title: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, r in results.items():
        shots = list(r["accuracy"])
        ax.errorbar(
            range(len(shots)),
            [r["accuracy"][s] for s in shots],
            yerr=[r["std"][s] for s in shots],
            marker="o",
            capsize=3,
            label=model,
        )
        ax.set_xticks(range(len(shots)), shots)
    ax.set_xlabel("shots per class")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def write_report(out_dir: str | Path, payload: dict, arrays: dict[str, dict]) -> list[Path]:
    """results.json, table.md, table.csv and the task's plots into `out_dir`; returns the paths."""
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    task, results = payload["task"], payload["results"]
    cols, rows = comparison_table(task, results)
    title = f"{task} on {payload.get('dataset', '')}"
    written = [out / "results.json", out / "table.md", out / "table.csv"]
    written[0].write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=jsonable) + "\n")
    written[1].write_text(f"### {title}\n\n" + markdown(cols, rows))
    written[2].write_text(csv_text(cols, rows))
    plots = PLOTS.get(task)
    if plots is not None:
        written += plots(out, title, results, arrays)
    return written


def _zeroshot_plots(out: Path, title: str, results: dict, arrays: dict) -> list[Path]:
    written = []
    for model, a in arrays.items():
        written.append(
            plot_confusion(
                a["confusion_matrix"], a["names"], out / f"confusion_{_safe(model)}.png", f"{model}: {title}"
            )
        )
        np.savetxt(out / f"confusion_{_safe(model)}.csv", a["confusion_matrix"], fmt="%d", delimiter=",")
    per_class = {m: {_name(arrays[m], c): v for c, v in r["per_class_accuracy"].items()} for m, r in results.items()}
    return written + [plot_per_class(per_class, out / "per_class_accuracy.png", title)]


def _retrieval_plots(out: Path, title: str, results: dict, arrays: dict) -> list[Path]:
    return [plot_recall_curves({m: a["first_rank"] for m, a in arrays.items()}, out / "recall_at_k.png", title)]


def _probe_plots(out: Path, title: str, results: dict, arrays: dict) -> list[Path]:
    return [plot_probe(results, out / "probe_accuracy.png", title)]


# What `--out` draws per task (instance retrieval has its table only).
PLOTS = {"zeroshot": _zeroshot_plots, "retrieval": _retrieval_plots, "probe": _probe_plots}


def _name(a: dict, label: str) -> str:
    """Display name of a label (its prompt name when one was mapped, e.g. a wnid → 'tench')."""
    names = dict(zip(a.get("labels", []), a.get("names", [])))
    n = names.get(label, label)
    return n if n == label else f"{n} ({label})"
