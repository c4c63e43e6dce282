"""Training data: caption pairs + labelled images (as prompt pairs) → one table of (image, text) pairs.

Images and texts are de-duplicated (an image with five captions is one image; the prompt
"a photo of a dog." shared by many images is one text), so the loss can tell true duplicates from
negatives. Validation is carved out by IMAGE, never by caption, so no validation photo is ever
seen in training under another caption. Bad rows are skipped and counted, never fatal.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cliplab.data.datasets import read_labels, read_pairs
from cliplab.errors import DataError
from cliplab.train.config import TrainConfig, TrainError


@dataclass
class PairData:
    images: list[str]  # unique image paths
    texts: list[str]  # unique texts
    pair_image: np.ndarray  # (P,) index into images
    pair_text: np.ndarray  # (P,) index into texts
    from_pairs: np.ndarray  # (len(images),) True for images that came with captions
    skipped: Counter = field(default_factory=Counter)  # reason → rows skipped
    pair_caption: np.ndarray | None = None  # (P,) True where the text is a caption, False: a label prompt

    @property
    def n_pairs(self) -> int:
        return int(len(self.pair_image))

    def summary(self, pairs: np.ndarray | None = None) -> dict:
        """Counts over all pairs, or over the pair indices `pairs` (e.g. the training part)."""
        sel = np.arange(self.n_pairs) if pairs is None else np.asarray(pairs)
        return {
            "images": int(len(np.unique(self.pair_image[sel]))),
            "texts": int(len(np.unique(self.pair_text[sel]))),
            "pairs": int(len(sel)),
        }


def _clean_label(s: str) -> str:
    return " ".join(str(s).replace("_", " ").split())


def _pairs_frame(cfg: TrainConfig) -> tuple[pd.DataFrame, Counter]:
    """All caption rows (+ a `val` flag when the validation split is a named split)."""
    frames, skipped = [], Counter()
    val_name = None if _fraction(cfg.val_split) is not None else cfg.val_split
    for src in cfg.pairs:
        df = read_pairs(src)
        has_split = df["split"].astype(str).str.len().gt(0).all()
        split = cfg.split
        if split == "auto":
            split = "train" if has_split and (df["split"] == "train").any() else None
        df["val"] = False
        if val_name:
            if not has_split or not (df["split"] == val_name).any():
                raise TrainError(f"{src}: --val-split {val_name!r} is not a split of this file")
            df["val"] = df["split"] == val_name
        if split:
            if not has_split:
                raise TrainError(f"{src}: --split {split!r} given but the file has no split column")
            df = df[(df["split"] == split) | df["val"]]
            if df.empty:
                raise TrainError(f"{src}: no rows with split == {split!r}")
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["path", "caption", "val"]), skipped
    df = pd.concat(frames, ignore_index=True)
    empty = df["caption"].astype(str).str.strip().eq("")
    skipped["empty caption"] += int(empty.sum())
    return df[~empty], skipped


def _fraction(v: str) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def load_pairs(cfg: TrainConfig) -> tuple[PairData, np.ndarray]:
    """Read every source → (all pairs, per-image validation mask). Split by image, seeded."""
    cap, skipped = _pairs_frame(cfg)
    rows = [(p, str(c).strip(), True, bool(v)) for p, c, v in zip(cap["path"], cap["caption"], cap["val"])]
    for src in cfg.labels:
        try:
            lab = read_labels(src, label_column=cfg.label_column)
        except DataError as e:
            raise TrainError(str(e)) from None
        for p, label in zip(lab["path"], lab["label"]):
            rows.extend((p, t.format(_clean_label(label)), False, False) for t in cfg.label_templates)
    exists: dict[str, bool] = {}
    kept = []
    for r in rows:
        if r[0] not in exists:
            exists[r[0]] = os.path.isfile(r[0])
        if exists[r[0]]:
            kept.append(r)
        else:
            skipped["missing image"] += 1
    if not kept:
        raise TrainError(f"no usable training pairs (skipped: {dict(skipped) or 'none'})")
    frame = pd.DataFrame(kept, columns=["path", "text", "from_pairs", "val"]).drop_duplicates(["path", "text"])
    images, pair_image = np.unique(frame["path"].to_numpy(str), return_inverse=True)
    texts, pair_text = np.unique(frame["text"].to_numpy(str), return_inverse=True)
    from_pairs = np.zeros(len(images), bool)
    from_pairs[pair_image[frame["from_pairs"].to_numpy()]] = True
    named_val = np.zeros(len(images), bool)
    named_val[pair_image[frame["val"].to_numpy()]] = True
    data = PairData(
        images.tolist(),
        texts.tolist(),
        pair_image.astype(np.int64),
        pair_text.astype(np.int64),
        from_pairs,
        skipped,
        frame["from_pairs"].to_numpy(bool),
    )
    return data, _val_mask(data, cfg, named_val)


def _val_mask(data: PairData, cfg: TrainConfig, named_val: np.ndarray) -> np.ndarray:
    frac = _fraction(cfg.val_split)
    if frac is None:
        return named_val
    # Validate on captions when there are any (that is what retrieval is for), else on labelled images.
    pool = np.flatnonzero(data.from_pairs) if data.from_pairs.any() else np.arange(len(data.images))
    n_val = int(round(frac * len(pool)))
    if frac > 0 and len(pool) >= 4:
        n_val = max(2, n_val)
    mask = np.zeros(len(data.images), bool)
    if n_val:
        rng = np.random.default_rng([cfg.seed, 1234])  # independent of the training order's stream
        mask[rng.choice(pool, size=n_val, replace=False)] = True
    if mask.all():
        raise TrainError("the validation split leaves no training images")
    return mask
