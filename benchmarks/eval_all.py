"""Every offline model on every shared dataset → one markdown section for docs/benchmarks.md.

    HF_HUB_OFFLINE=1 python benchmarks/eval_all.py [--out section.md] [--templates single|clip80]
                                                  [--models lite,conse,preclip] [--limit N]

- CIFAR-10-dev (2,000) and FER2013-dev (957): zero-shot (top-1, top-5, mean per-class recall) and a
  16-shot linear probe (logistic regression, 5 draws, stratified 50/50 split, seed 0) on the same
  image embeddings.
- ImageNet samples (1,000 images, one per class): zero-shot over the 1,000 classes with CLIP's clean
  class names (`name` column, keyed by wnid).
- Flickr8k-1k test split (200 images × 5 captions): text→image and image→text retrieval.
Templates: "a photo of a {}." by default (`--templates clip80` for CLIP's 80; slow on a CPU).
`--limit N` keeps the first N images per dataset (a smoke run, not for the docs).
A model whose towers and settings equal an already evaluated one (`lite` while no trained heads
ship is ConSE) is not run again; its rows are copied and marked.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from cliplab.data.shared import shared_path  # noqa: E402
from cliplab.eval import evaluate_retrieval, evaluate_zeroshot  # noqa: E402
from cliplab.eval.probe import probe_accuracies, train_test_indices  # noqa: E402
from cliplab.eval.report import markdown  # noqa: E402
from cliplab.models import load_encoder  # noqa: E402

CLASSIFICATION = {"CIFAR-10-dev": "cifar10-dev", "FER2013-dev": "fer2013-dev"}


def labelled(folder: str, limit: int | None, label_column: str = "label") -> pd.DataFrame:
    root = shared_path("data", folder)
    if root is None:
        sys.exit(f"shared data folder data/{folder} not found (set CLIPLAB_SHARED)")
    df = pd.read_csv(root / "labels.csv")
    df["path"] = [str(root / p) for p in df["path"]]
    df["label"] = df[label_column].astype(str)
    if limit and df["label"].nunique() * 2 <= limit:  # a stratified head, so every class stays in
        df = df.groupby("label", sort=False).head(limit // df["label"].nunique())
    elif limit:
        df = df.head(limit)
    return df.reset_index(drop=True)


def probe16(zs: dict, seed: int = 0) -> dict:
    """16-shot probe on the zero-shot run's own image embeddings (no second embedding pass)."""
    a = zs["arrays"]
    labels = np.asarray(a["y"])
    train, test, _ = train_test_indices(labels, seed=seed)
    ((mean, std),) = probe_accuracies(a["vectors"], labels, train, test, ["16"], draws=5, seed=seed).values()
    return {"acc": mean, "std": std}


def same_model(a, b) -> bool:
    da, db = dict(a.describe()), dict(b.describe())
    da.pop("model"), db.pop("model")
    return type(a) is type(b) and da == db


def run(models: list[str], templates: str, limit: int | None) -> tuple[dict, dict]:
    rows, notes = {}, {}
    done = {}
    for spec in models:
        enc = load_encoder(spec)
        twin = next((name for name, e in done.items() if same_model(enc, e)), None)
        if twin:
            rows[spec], notes[spec] = rows[twin], f"identical to {twin} (same towers and settings); not re-run"
            continue
        done[spec] = enc
        r, t0 = {}, time.time()
        for title, folder in CLASSIFICATION.items():
            zs = evaluate_zeroshot(enc, labelled(folder, limit), templates=templates)
            r[title] = {"zs": zs, "probe": probe16(zs)}
            print(f"  {spec} {title}: top1 {zs['top1']:.4f}, 16-shot {r[title]['probe']['acc']:.4f}", file=sys.stderr)
        inet = labelled("imagenet-samples", limit, label_column="wnid")
        names = dict(zip(inet["label"], inet["name"]))  # wnid → CLIP's clean class name
        r["ImageNet"] = {"zs": evaluate_zeroshot(enc, inet[["path", "label"]], templates=templates, classnames=names)}
        print(f"  {spec} ImageNet: top1 {r['ImageNet']['zs']['top1']:.4f}", file=sys.stderr)
        caps = shared_path("data", "flickr8k-1k", "captions.csv")
        r["Flickr8k"] = evaluate_retrieval(enc, caps, split="test", max_images=limit)
        print(f"  {spec} Flickr8k: t2i R@1 {r['Flickr8k']['text_to_image']['R@1']:.4f}", file=sys.stderr)
        r["seconds"] = time.time() - t0
        rows[spec] = r
    return rows, notes


def section(rows: dict, notes: dict, templates: str, limit: int | None, seconds: float) -> str:
    cmd = "HF_HUB_OFFLINE=1 python benchmarks/eval_all.py" + (
        f" --templates {templates}" if templates != "single" else ""
    )
    cls_cols = ["model"] + [f"{d} {m}" for d in (*CLASSIFICATION, "ImageNet") for m in ("top1", "top5", "mpcr")]
    cls_rows = [
        [m] + [r[d]["zs"][k] for d in (*CLASSIFICATION, "ImageNet") for k in ("top1", "top5", "mean_per_class_recall")]
        for m, r in rows.items()
    ]
    probe_cols = ["model"] + [f"{d} 16-shot" for d in CLASSIFICATION]
    probe_rows = [
        [m] + [f"{r[d]['probe']['acc']:.4f} ± {r[d]['probe']['std']:.4f}" for d in CLASSIFICATION]
        for m, r in rows.items()
    ]
    ret_cols = [
        "model",
        "t2i R@1",
        "t2i R@5",
        "t2i R@10",
        "t2i mAP",
        "t2i MdR",
        "i2t R@1",
        "i2t R@5",
        "i2t R@10",
        "i2t mAP",
        "i2t MdR",
    ]
    ret_rows = [
        [m]
        + [
            r["Flickr8k"][d][k]
            for d in ("text_to_image", "image_to_text")
            for k in ("R@1", "R@5", "R@10", "mAP", "median_rank")
        ]
        for m, r in rows.items()
    ]
    any_r = next(iter(rows.values()))
    sizes = {d: any_r[d]["zs"]["n"] for d in (*CLASSIFICATION, "ImageNet")}
    fl = any_r["Flickr8k"]
    tmpl = "CLIP's 80 ImageNet templates" if templates == "clip80" else f"templates: {templates} ('a photo of a {{}}.')"
    out = [
        "## Evaluation of the offline models",
        "",
        f"`{cmd}` — {platform.machine()}, {os.cpu_count()} CPU cores, {seconds / 60:.1f} min in all"
        + (f"; **smoke run, --limit {limit}**" if limit else "")
        + ".",
        "",
        f"### Zero-shot classification ({tmpl})",
        "",
        f"Images: CIFAR-10-dev {sizes['CIFAR-10-dev']}, FER2013-dev {sizes['FER2013-dev']}, ImageNet samples "
        f"{sizes['ImageNet']} ({any_r['ImageNet']['zs']['n_classes']} classes, CLIP's clean names). "
        "top1/top5 are fractions; mpcr = mean "
        "per-class recall. Ties count against the model.",
        "",
        markdown(cls_cols, cls_rows),
        "### 16-shot linear probe",
        "",
        "Logistic regression (C = 10) on the frozen image embeddings; stratified 50/50 train/test split "
        "(seed 0); 16 training images per class drawn 5 times (mean ± std of test accuracy).",
        "",
        markdown(probe_cols, probe_rows),
        f"### Retrieval, Flickr8k-1k test split ({fl['n_images']} images, {fl['n_texts']} captions)",
        "",
        "R@K: fraction of queries with a correct item in the top K (image→text: any of its 5 captions); "
        "MdR: median rank of the first correct item (1 = best).",
        "",
        markdown(ret_cols, ret_rows),
    ]
    for m, r in rows.items():  # unreadable images are skipped by the runners; say so here
        failed = {d: r[d]["zs"]["n_failed"] for d in (*CLASSIFICATION, "ImageNet")}
        failed["Flickr8k"] = r["Flickr8k"]["n_failed"]
        if any(failed.values()) and m not in notes:
            notes[m] = "skipped unreadable images: " + ", ".join(f"{d} {n}" for d, n in failed.items() if n)
    if notes:
        out += [""] + [f"- `{m}`: {n}." for m, n in notes.items()]
    out += [
        "",
        "`preclip` fits each modality's PCA on the data being evaluated and never aligns the two "
        "spaces: its cross-modal numbers are the chance-level floor the other models must beat.",
    ]
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, help="write the markdown section here (default: stdout)")
    ap.add_argument("--models", default="lite,conse,preclip")
    ap.add_argument("--templates", default="single", help="single or clip80")
    ap.add_argument("--limit", type=int, default=None, help="first N images per dataset (smoke run)")
    args = ap.parse_args()
    t0 = time.time()
    rows, notes = run([m.strip() for m in args.models.split(",") if m.strip()], args.templates, args.limit)
    text = section(rows, notes, args.templates, args.limit, time.time() - t0)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
