"""Image–text retrieval benchmark (Flickr/COCO style): captions file → R@K, mAP, median rank."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from cliplab.errors import DataError
from cliplab.eval.common import dataset_name, embed_paths, resolve_encoder
from cliplab.eval.metrics import retrieval_metrics
from cliplab.models import Encoder
from cliplab.pipeline import embed_texts


def read_captions(
    pairs,
    split: str | None = None,
    caption_column: str | None = None,
    path_column: str | None = None,
    max_images: int | None = None,
) -> pd.DataFrame:
    """captions file (CSV/JSONL, one row per caption) or DataFrame[path, caption] → DataFrame.
    `max_images` keeps the captions of the first N distinct images (in file order)."""
    if isinstance(pairs, pd.DataFrame):
        if not {"path", "caption"} <= set(pairs.columns):
            raise DataError("a DataFrame of pairs needs path and caption columns")
        df = pairs.reset_index(drop=True)
        if split:
            df = df[df["split"].astype(str) == split].reset_index(drop=True)
    else:
        from cliplab.data.datasets import read_pairs

        df = read_pairs(pairs, split=split, caption_column=caption_column, path_column=path_column)
    if max_images:
        keep = pd.unique(df["path"])[:max_images]
        df = df[df["path"].isin(set(keep))].reset_index(drop=True)
    if df.empty:
        raise DataError(f"{dataset_name(pairs)}: no image–caption pairs")
    return df


def evaluate_retrieval(
    encoder: Encoder | str,
    pairs,
    split: str | None = None,
    ks: Sequence[int] = (1, 5, 10),
    caption_column: str | None = None,
    path_column: str | None = None,
    max_images: int | None = None,
    batch_size: int | None = None,
    progress: bool = False,
) -> dict:
    """Text→image and image→text retrieval of one model over the images of a captions file.

    Every distinct image is in the gallery once; each caption's one correct image is its row's
    image; an image's relevant texts are all of its captions. Images that cannot be read are
    listed under `failed` and their captions dropped. See `metrics.retrieval_metrics`.
    `arrays` holds each direction's first-relevant ranks (for recall@K curves).
    """
    enc = resolve_encoder(encoder)
    df = read_captions(pairs, split, caption_column, path_column, max_images)
    images = list(pd.unique(df["path"]))
    img_vecs, ok, failed = embed_paths(enc, images, batch_size, progress)
    row = {p: i for i, p in enumerate(np.asarray(images)[ok])}
    df = df[df["path"].isin(row)]
    txt_vecs = embed_texts(enc, df["caption"].tolist(), progress=progress)
    t2i = df["path"].map(row).to_numpy()
    m = retrieval_metrics(img_vecs, txt_vecs, t2i, ks=ks, return_ranks=True)
    ranks = {d: m[d].pop("first_rank") for d in ("text_to_image", "image_to_text")}
    m.update(
        {
            "n_failed": len(failed),
            "dataset": dataset_name(pairs),
            "split": split or "all",
            "model": enc.describe(),
            "failed": failed,
            "arrays": {"first_rank": ranks},
        }
    )
    return m
