"""The recipe behind the shipped `lite` model:  python -m cliplab.train.lite_recipe

Frozen EfficientNet-Lite0 (ImageNet) + frozen MiniLM, small trained heads, from the shared data:
- all Flickr8k-1k *train* captions (800 photos × 5);
- the ImageNet sample images (one per class), each paired with its class prompt and with prompts
  of its nearest WordNet ancestors ("a photo of a truck." for the moving van).
The test split of Flickr8k, CIFAR-10-dev and FER2013-dev are never read. The final checkpoint
(heads + config only: the towers come from their installed packages) is written to
cliplab/models/weights/lite/, where `--model lite` finds it.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from cliplab.data.shared import shared_dir
from cliplab.errors import CliplabError
from cliplab.models.checkpoint import CONFIG_FILE, WEIGHTS_FILE, atomic_write_json
from cliplab.models.imagenet import imagenet_hypernyms
from cliplab.train.config import TrainConfig
from cliplab.train.loop import METRICS_FILE, PLOT_FILE, train

COMMAND = "python -m cliplab.train.lite_recipe"
HYPERNYM_FILE = "imagenet-hypernyms.csv"
# Ancestors at most 3 steps above the class and at least 7 below WordNet's root: "truck", "horse",
# "cat", "bird family" words, not "artifact" or "organism" (depth 4-5), which name everything.
HYPERNYM_MIN_DEPTH, HYPERNYM_MAX_UP = 7, 3


def hypernym_labels(labels_csv: Path, out_csv: Path) -> int:
    """Write (path, name) rows pairing each ImageNet sample with its WordNet ancestors; → row count."""
    lab = pd.read_csv(labels_csv)
    n = 0
    with open(out_csv, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "name"])
        for path, wnid, name in zip(lab["path"], lab["wnid"], lab["name"]):
            for parent in imagenet_hypernyms(wnid, HYPERNYM_MIN_DEPTH, HYPERNYM_MAX_UP):
                if parent.lower() != str(name).lower():
                    w.writerow([str((labels_csv.parent / path).resolve()), parent])
                    n += 1
    return n


def lite_config(shared: Path, hypernyms_csv: Path, cache_dir: str | None = None, seed: int = 0) -> TrainConfig:
    """Choices (see docs/benchmarks.md): image = linear map of [pooled, ImageNet logits, ConSE vector]
    into MiniLM's space; text = MiniLM through a linear head that starts as the identity (so the
    text space keeps what MiniLM knows about words never seen in training); flips and 32-px
    low-resolution copies as cached views; caption batches apart from label batches; a short
    fixed schedule on all training photos (no hold-out: with 3 cosine epochs the last one is the
    one a validation split would pick, and 10% more photos help more)."""
    data = shared / "data"
    return TrainConfig(
        pairs=[str(data / "flickr8k-1k" / "captions.csv")], split="train", val_split="0",
        labels=[str(data / "imagenet-samples" / "labels.csv"), str(hypernyms_csv)], label_column="name",
        label_templates=["a photo of a {}."],
        image_tower="efficientnet-lite0", text_tower="minilm",
        image_inputs=["pooled", "logits", "conse"], image_head="linear",
        text_head="linear", text_head_init="identity", dim=None,
        epochs=3, batch_size=256, batch_by_source=True, lr=1e-3, weight_decay=0.05, warmup=0.05,
        patience=0, seed=seed, augment=["flip", "lowres"], cache_dir=cache_dir)


def _relative_to_shared(paths: list[str], shared: Path) -> list[str]:
    out = []
    for p in paths:
        try:
            out.append("../shared/" + str(Path(p).resolve().relative_to(shared.resolve())))
        except ValueError:
            out.append(p)
    return out


def export(run_dir: Path, dest: Path, shared: Path, recipe: dict) -> Path:
    """Copy the loadable part of a run (no optimizer state) into `dest`, replacing it whole."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".lite-"))
    try:
        for name in (WEIGHTS_FILE, METRICS_FILE, PLOT_FILE):
            shutil.copyfile(run_dir / name, tmp / name)
        cfg = json.loads((run_dir / CONFIG_FILE).read_text())
        tc = cfg["training"]["config"]
        tc["pairs"], tc["labels"] = _relative_to_shared(tc["pairs"], shared), _relative_to_shared(tc["labels"], shared)
        tc["labels"] = [f"{HYPERNYM_FILE}: made by cliplab.train.lite_recipe.hypernym_labels"
                        if p.endswith(HYPERNYM_FILE) else p for p in tc["labels"]]
        tc["cache_dir"] = None
        cfg["recipe"] = recipe
        atomic_write_json(tmp / CONFIG_FILE, cfg)
        os.chmod(tmp, 0o755)
        old = dest.with_name(dest.name + ".old")
        if dest.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def main(argv: list[str] | None = None) -> int:
    from cliplab.models.registry import lite_checkpoint_dir

    ap = argparse.ArgumentParser(prog=COMMAND, description="Train and ship the offline `lite` model.")
    ap.add_argument("--out", type=Path, default=lite_checkpoint_dir(), help="Where the checkpoint goes.")
    ap.add_argument("--run-dir", type=Path, help="Keep the full training run here (default: a temp folder).")
    ap.add_argument("--cache-dir", help="Feature cache (default ~/.cache/cliplab/features).")
    ap.add_argument("--seed", type=int, default=0, help="The shipped model uses 0; others measure the spread.")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    shared = shared_dir()
    if shared is None:
        print("error: the shared data folder is missing (../shared or $CLIPLAB_SHARED)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    with tempfile.TemporaryDirectory(prefix="lite-run-") as tmp:
        run_dir = args.run_dir or Path(tmp) / "run"
        hyper = Path(tmp) / HYPERNYM_FILE
        n = hypernym_labels(shared / "data" / "imagenet-samples" / "labels.csv", hyper)
        log(f"{n} WordNet-ancestor prompts for the ImageNet samples")
        try:
            res = train(lite_config(shared, hyper, args.cache_dir, args.seed), run_dir, progress=not args.quiet, log=log)
        except CliplabError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        recipe = {"command": COMMAND, "seconds": round(time.perf_counter() - t0, 1),
                  "setup_seconds": round(res.setup_seconds, 1), "train_seconds": round(res.seconds, 1),
                  "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
                             f"({torch.get_num_threads()} threads)"}
        dest = export(run_dir, args.out, shared, recipe)
    print(f"lite model → {dest}  ({res.epoch} epochs, final train loss "
          f"{res.history[-1].get('train_loss', float('nan')):.3f}; {recipe['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
