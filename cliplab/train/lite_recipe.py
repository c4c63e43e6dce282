"""The recipe behind the shipped `lite` model:  python -m cliplab.train.lite_recipe

Frozen EfficientNet-Lite0 (ImageNet) + frozen MiniLM, small trained heads, from the shared data:
- Flickr8k-1k *train* split captions (a 10% validation split by image picks the best epoch);
- the ImageNet sample images (one per class) with class prompts.
The test split of Flickr8k, CIFAR-10-dev and FER2013-dev are never read. The best checkpoint
(heads + config only: the towers come from their installed packages) is written to
cliplab/models/weights/lite/, where `--model lite` finds it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from cliplab.data.shared import shared_dir
from cliplab.errors import CliplabError
from cliplab.models.checkpoint import CONFIG_FILE, WEIGHTS_FILE, atomic_write_json
from cliplab.train.config import TrainConfig
from cliplab.train.loop import METRICS_FILE, PLOT_FILE, train

COMMAND = "python -m cliplab.train.lite_recipe"


def lite_config(shared: Path, cache_dir: str | None = None) -> TrainConfig:
    """Choices (see docs/benchmarks.md): image = linear map of [pooled, ImageNet logits, ConSE vector]
    into MiniLM's space; text = MiniLM through a linear head that starts as the identity (so the
    text space keeps what MiniLM knows about words never seen in training); flips and 32-px
    low-resolution copies as cached views; a few epochs, the best by validation recall."""
    data = shared / "data"
    return TrainConfig(
        pairs=[str(data / "flickr8k-1k" / "captions.csv")], split="train", val_split="0.1",
        labels=[str(data / "imagenet-samples" / "labels.csv")], label_column="name",
        label_templates=["a photo of a {}."],
        image_tower="efficientnet-lite0", text_tower="minilm",
        image_inputs=["pooled", "logits", "conse"], image_head="linear",
        text_head="linear", text_head_init="identity", dim=None,
        epochs=6, batch_size=256, lr=1e-3, weight_decay=0.05, warmup=0.05, patience=3, seed=0,
        augment=["flip", "lowres"], cache_dir=cache_dir)


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
        try:
            res = train(lite_config(shared, args.cache_dir), run_dir, progress=not args.quiet, log=log)
        except CliplabError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        recipe = {"command": COMMAND, "seconds": round(time.perf_counter() - t0, 1),
                  "setup_seconds": round(res.setup_seconds, 1), "train_seconds": round(res.seconds, 1),
                  "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
                             f"({torch.get_num_threads()} threads)"}
        dest = export(run_dir, args.out, shared, recipe)
    b = res.best
    print(f"lite model → {dest}  (best epoch {res.best_epoch}/{res.epoch}; validation t→i R@1/5/10 "
          f"{100 * b.get('t2i_R@1', 0):.1f}/{100 * b.get('t2i_R@5', 0):.1f}/{100 * b.get('t2i_R@10', 0):.1f}; "
          f"{recipe['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
