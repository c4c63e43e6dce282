"""The recipe behind the shipped `lite` model:  python tools/lite_recipe.py

Frozen EfficientNet-Lite0 (ImageNet) + frozen MiniLM + small trained heads, fused with ConSE:
1. heads trained (as before) on all Flickr8k-1k *train* captions (800 photos × 5) and on the
   ImageNet sample photos of 750 classes, each paired with its class prompt and with prompts of
   its nearest WordNet ancestors ("a photo of a truck." for the moving van); plus the declared
   supervised part of FER2013-dev (30 % of each emotion, 4 captions per face: "a photo of a happy
   face.", "a happy person.", "a face that looks happy.", "a photo of a happy."), so FER is *not*
   zero-shot for `lite`;
2. the heads' vectors fused with ConSE's in one unit vector (heads.py, "conse_fusion"): images
   with ConSE share w = FUSION_WEIGHT, texts with a share w_t that rises with the text's closeness
   to an ImageNet class prompt (TEXT_RAMP), so cosine = √(w·w_t)·cos_ConSE + √((1−w)(1−w_t))·cos_heads.
w and the other choices were made on validation splits only (benchmarks/lite_select.py: 160
Flickr8k *train* photos and 150 ImageNet-sample classes held out of training, and FER's validation
part, with 150 ImageNet-sample classes also named by their WordNet parent). Never read: Flickr8k test, CIFAR-10-dev, FER's reporting part, and the 250 ImageNet-sample
classes of the breadth check (`breadth_mask`). The checkpoint (heads + config; the towers come from
their installed packages) goes to cliplab/models/weights/lite/, where `--model lite` finds it; an
unchanged result leaves the folder untouched.
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

import numpy as np
import pandas as pd
import torch

from cliplab.data.shared import shared_dir
from cliplab.errors import CliplabError
from cliplab.models.core.imagenet import imagenet_hypernyms
from cliplab.models.trained.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    build_encoder,
    read_config,
    save_checkpoint,
)
from cliplab.train.config import TrainConfig
from cliplab.train.loop import train
from cliplab.train.state import METRICS_FILE, PLOT_FILE

COMMAND = "python tools/lite_recipe.py"
HYPERNYM_FILE = "imagenet-hypernyms.csv"
# Ancestors at most 3 steps above the class and at least 7 below WordNet's root: "truck", "horse",
# "cat", "bird family" words, not "artifact" or "organism" (depth 4-5), which name everything.
HYPERNYM_MIN_DEPTH, HYPERNYM_MAX_UP = 7, 3
FUSION_WEIGHT = 0.3  # images' ConSE share; chosen by benchmarks/lite_select.py (validation splits only)
# Texts' ConSE share: 0.05 for texts far from every ImageNet class prompt (best cosine ≤ 0.6),
# rising to 0.95 for a class's own name (≥ 0.9); chosen with FUSION_WEIGHT (heads.py module doc).
TEXT_RAMP = {"lo": 0.05, "hi": 0.95, "from": 0.6, "to": 0.9}
N_BREADTH, BREADTH_SEED = 250, 99  # the draw the earlier held-out-class benchmark used
FER_TRAIN, FER_VAL, FER_SEED = 0.3, 0.2, 15  # per emotion; the remaining 50 % is the reporting part
# FER's labels as adjectives, and the captions each training face gets (the last one uses the label
# itself, the form zero-shot evaluation asks with).
FER_ADJECTIVES = {
    "angry": "angry",
    "disgust": "disgusted",
    "fear": "scared",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprise": "surprised",
}
FER_CAPTIONS = ("a photo of a {adj} face.", "a {adj} person.", "a face that looks {adj}.", "a photo of a {label}.")


# --- the splits (shared with the benchmarks, so reporting sets stay out of training) ----------
def breadth_mask(n: int = 1000) -> np.ndarray:
    """True for the ImageNet-sample rows of the breadth check (never trained on)."""
    mask = np.zeros(n, bool)
    mask[np.random.default_rng(BREADTH_SEED).choice(n, min(N_BREADTH, n // 4), replace=False)] = True
    return mask


def fer_parts(labels: pd.Series) -> np.ndarray:
    """'train' / 'val' / 'report' for each FER row: seeded, per emotion."""
    rng = np.random.default_rng(FER_SEED)
    parts = np.full(len(labels), "report", object)
    values = labels.astype(str).to_numpy()
    for label in sorted(set(values)):
        idx = rng.permutation(np.flatnonzero(values == label))
        a, b = int(round(FER_TRAIN * len(idx))), int(round((FER_TRAIN + FER_VAL) * len(idx)))
        parts[idx[:a]], parts[idx[a:b]] = "train", "val"
    return parts


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


def _absolute(df: pd.DataFrame, root: Path) -> pd.DataFrame:
    df = df.copy()
    df["path"] = [str((root / p).resolve()) for p in df["path"]]
    return df


def prepare(
    shared: Path,
    tmp: Path,
    limit: int | None = None,
    exclude_images: set | None = None,
    exclude_classes: np.ndarray | None = None,
) -> dict:
    """Write the training tables into `tmp` → {"captions", "imagenet", "hypernyms": path}.

    `limit` keeps the first rows of each source (tests); `exclude_*` hold out more (model selection)."""
    data = shared / "data"
    caps = _absolute(pd.read_csv(data / "flickr8k-1k" / "captions.csv"), data / "flickr8k-1k")
    caps = caps[caps["split"] == "train"]
    im = _absolute(pd.read_csv(data / "imagenet-samples" / "labels.csv"), data / "imagenet-samples")
    keep = ~breadth_mask(len(im)) & (True if exclude_classes is None else ~exclude_classes)
    im = im[keep]
    fer = _absolute(pd.read_csv(data / "fer2013-dev" / "labels.csv"), data / "fer2013-dev")
    fer = fer[fer_parts(fer["label"]) == "train"]
    if exclude_images:
        caps = caps[~caps["path"].isin(exclude_images)]
    if limit:
        caps = caps[caps["path"].isin(list(dict.fromkeys(caps["path"]))[:limit])]
        im, fer = im.head(limit), fer.groupby("label").head(max(1, limit // len(FER_ADJECTIVES)))
    faces = [
        (p, t.format(adj=FER_ADJECTIVES[lab], label=lab), "train")
        for p, lab in zip(fer["path"], fer["label"])
        for t in FER_CAPTIONS
    ]
    caps = pd.concat([caps[["path", "caption", "split"]], pd.DataFrame(faces, columns=["path", "caption", "split"])])
    files = {"captions": tmp / "captions.csv", "imagenet": tmp / "imagenet.csv", "hypernyms": tmp / HYPERNYM_FILE}
    caps.to_csv(files["captions"], index=False)
    im.to_csv(files["imagenet"], index=False)
    hypernym_labels(files["imagenet"], files["hypernyms"])
    return files


def lite_config(files: dict, cache_dir: str | None = None, seed: int = 0) -> TrainConfig:
    """Choices (see docs/benchmarks.md): image = linear map of [pooled, ImageNet logits, ConSE vector]
    into MiniLM's space; text = MiniLM through a linear head that starts as the identity (so the
    text space keeps what MiniLM knows about words never seen in training); flips and 32-px
    low-resolution copies as cached views; caption batches apart from label batches; a short
    fixed schedule on all training photos (no hold-out: with 3 cosine epochs the last one is the
    one a validation split would pick, and 10% more photos help more)."""
    return TrainConfig(
        pairs=[str(files["captions"])],
        split="train",
        val_split="0",
        labels=[str(files["imagenet"]), str(files["hypernyms"])],
        label_column="name",
        label_templates=["a photo of a {}."],
        image_tower="efficientnet-lite0",
        text_tower="minilm",
        image_inputs=["pooled", "logits", "conse"],
        image_head="linear",
        text_head="linear",
        text_head_init="identity",
        dim=None,
        epochs=3,
        batch_size=256,
        batch_by_source=True,
        lr=1e-3,
        weight_decay=0.05,
        warmup=0.05,
        patience=0,
        seed=seed,
        augment=["flip", "lowres"],
        cache_dir=cache_dir,
    )


def fused(run_dir: Path, weight: float = FUSION_WEIGHT, ramp: dict | None = TEXT_RAMP):
    """The trained run's heads with ConSE fusion switched on (a TrainedEncoder ready to save)."""
    from safetensors.torch import load_file

    cfg = read_config(run_dir)
    for side in ("image_side", "text_side"):
        cfg[side]["head"]["conse_fusion"] = float(weight)
    if ramp:
        cfg["text_side"]["head"]["conse_fusion_ramp"] = dict(ramp)
    enc = build_encoder(cfg, name="lite", init_class_emb=False)
    sd = {k[len("heads.") :]: v for k, v in load_file(str(run_dir / WEIGHTS_FILE)).items()}
    res = enc.heads.load_state_dict(sd, strict=False)
    added = ("fusion_weight", "text.class_emb")
    if res.unexpected_keys or any(not k.endswith(added) for k in res.missing_keys):
        raise CliplabError(f"{run_dir}: heads do not fit the fused config ({res})")
    if ramp:
        enc.heads.text.class_emb.copy_(enc.heads.image.class_emb)
    enc.refresh_scale()
    return enc


_DERIVED = {
    "captions.csv": "flickr8k-1k/captions.csv (train split) + fer2013-dev/labels.csv, the 'train' part "
    "(lite_recipe.fer_parts), as FER_CAPTIONS",
    "imagenet.csv": "imagenet-samples/labels.csv without the breadth classes (lite_recipe.breadth_mask)",
    HYPERNYM_FILE: "WordNet ancestors of those (lite_recipe.hypernym_labels)",
}


def _write(enc, run_dir: Path, tmp: Path, recipe: dict) -> None:
    cfg = read_config(run_dir)
    tc = cfg["training"]["config"]
    tc["pairs"] = [_DERIVED.get(Path(p).name, p) for p in tc["pairs"]]
    tc["labels"] = [_DERIVED.get(Path(p).name, p) for p in tc["labels"]]
    tc["cache_dir"] = None
    save_checkpoint(enc, tmp, {"training": cfg["training"], "recipe": recipe})
    for name in (METRICS_FILE, PLOT_FILE):
        shutil.copyfile(run_dir / name, tmp / name)


def _same(a: Path, b: Path) -> bool:
    """Same weights and same model config? (The training and recipe records hold timings: ignored.)"""
    try:
        if (a / WEIGHTS_FILE).read_bytes() != (b / WEIGHTS_FILE).read_bytes():
            return False
        ca, cb = (json.loads((d / CONFIG_FILE).read_text()) for d in (a, b))
    except (OSError, ValueError):
        return False
    drop = ("recipe", "training", "int8")  # int8: added after training by tools/lite_int8_calibrate.py
    return {k: v for k, v in ca.items() if k not in drop} == {k: v for k, v in cb.items() if k not in drop}


def publish(new: Path, dest: Path) -> bool:
    """Replace `dest` by `new` whole, unless they hold the same model → True if replaced."""
    if dest.exists() and _same(new, dest):
        return False
    os.chmod(new, 0o755)
    old = dest.with_name(dest.name + ".old")
    if dest.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
    os.replace(new, dest)
    shutil.rmtree(old, ignore_errors=True)
    return True


def build(
    shared: Path,
    dest: Path,
    cache_dir: str | None = None,
    seed: int = 0,
    limit: int | None = None,
    run_dir: Path | None = None,
    progress: bool = True,
    log=lambda s: None,
) -> tuple[Path, bool, dict]:
    """Train, fuse and publish → (dest, whether it changed, recipe record)."""
    t0 = time.perf_counter()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lite-run-") as tmp:
        tmp = Path(tmp)
        files = prepare(shared, tmp, limit)
        run = run_dir or tmp / "run"
        res = train(lite_config(files, cache_dir, seed), run, progress=progress, log=log)
        recipe = {
            "command": COMMAND,
            "conse_fusion": FUSION_WEIGHT,
            "conse_fusion_ramp": TEXT_RAMP,
            "seconds": round(time.perf_counter() - t0, 1),
            "setup_seconds": round(res.setup_seconds, 1),
            "train_seconds": round(res.seconds, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)",
        }
        new = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".lite-"))
        try:
            _write(fused(run), run, new, recipe)
            changed = publish(new, dest)
        finally:
            shutil.rmtree(new, ignore_errors=True)
    return dest, changed, {**recipe, "epochs": res.epoch, "train_loss": res.history[-1].get("train_loss", float("nan"))}


def main(argv: list[str] | None = None) -> int:
    from cliplab.models.specs import lite_dir as lite_checkpoint_dir

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
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    try:
        dest, changed, rec = build(
            shared, args.out, args.cache_dir, args.seed, run_dir=args.run_dir, progress=not args.quiet, log=log
        )
    except CliplabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"lite model → {dest}  ({'updated' if changed else 'unchanged: same weights, left as it was'}; "
        f"{rec['epochs']} epochs, final train loss {rec['train_loss']:.3f}; {rec['seconds']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
