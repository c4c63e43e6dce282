"""What every task runner shares: resolving the model, embedding with failures kept, result plumbing."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from cliplab.errors import DataError
from cliplab.models import Encoder
from cliplab.pipeline import embed_images
from cliplab.runtime import load_encoder


def resolve_encoder(encoder: Encoder | str) -> Encoder:
    """A spec string → a loaded encoder; a fitted baseline → an unfitted shallow copy."""
    enc = load_encoder(encoder) if isinstance(encoder, str) else encoder
    return enc.unfitted()  # every evaluation fits baselines on its own dataset


def dataset_name(data) -> str:
    """A short name for a dataset argument: a file with its folder ("flickr8k/captions.csv"; just the
    file name when given without a folder), or the folder's name."""
    if isinstance(data, pd.DataFrame):
        return "dataframe"
    p = Path(str(data)).expanduser()
    if p.is_file():
        return f"{p.parent.name}/{p.name}" if p.parent.name else p.name
    return p.name or p.resolve().name


def embed_paths(
    encoder: Encoder, paths: Sequence[str], batch_size: int | None = None, progress: bool = False
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(vectors of the usable images, bool mask over `paths`, failures [{path, reason}])."""
    res = embed_images(encoder, list(paths), batch_size=batch_size, progress=progress)
    ok = np.array([s == "ok" for s in res.status], bool)
    failed = [{"path": p, "reason": e} for p, e in res.failures]
    if not ok.any():
        first = f" (first: {failed[0]['path']}: {failed[0]['reason']})" if failed else ""
        raise DataError(f"none of the {len(paths)} images could be read{first}")
    return res.vectors, ok, failed


def read_labelled(data, label_column: str | None = None, path_column: str | None = None) -> pd.DataFrame:
    """labels.csv / ImageFolder / DataFrame[path, label(, split)] → DataFrame[path, label(, split)]."""
    if isinstance(data, pd.DataFrame):
        if not {"path", "label"} <= set(data.columns):
            raise DataError("a DataFrame dataset needs path and label columns")
        cols = [c for c in ("path", "label", "split") if c in data.columns]
        df = data[cols].astype(str).reset_index(drop=True)
    else:
        from cliplab.data.datasets import read_labels

        df = read_labels(data, label_column=label_column, path_column=path_column)
    if df.empty:
        raise DataError(f"{dataset_name(data)}: no images")
    return df


def split_off_arrays(result: dict) -> tuple[dict, dict]:
    """(JSON-ready copy of a result without its `arrays`, the arrays) — for --json and files."""
    clean = {k: v for k, v in result.items() if k != "arrays"}
    return clean, result.get("arrays", {})
