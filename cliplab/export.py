"""Writers for embedding runs: vectors (.npy) + a metadata table (CSV) + a small JSON manifest.

Files are written to a temp name and renamed, so an interrupted run never leaves a half file that
looks complete.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from cliplab.pipeline import EmbedResult


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_npy(path: Path, arr: np.ndarray) -> None:
    def w(tmp):
        with open(tmp, "wb") as f:
            np.save(f, arr)

    _atomic(path, w)


def save_csv(path: Path, df: pd.DataFrame) -> None:
    _atomic(path, lambda tmp: df.to_csv(tmp, index=False))


def write_manifest(out: Path, kind: str, model: dict, count: int, extra: dict) -> dict:
    m = {
        "kind": kind,
        "model": model.get("model"),
        "model_info": model,
        "dim": model.get("dim"),
        "count": count,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "dtype": "float32",
        "normalized": True,
        **extra,
    }
    _atomic(out / f"{kind}_manifest.json", lambda tmp: Path(tmp).write_text(json.dumps(m, indent=2)))
    return m


def image_metadata(result: EmbedResult) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "index": range(len(result.paths)),
            "path": result.paths,
            "status": result.status,
            "row": result.rows,
            "error": result.errors,
        }
    )


def write_image_embeddings(out: str | Path, result: EmbedResult) -> dict:
    """image_embeddings.npy (rows = successfully embedded images, in input order) +
    image_metadata.csv (every input; `row` points into the array, -1 when failed) + manifest."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_npy(out / "image_embeddings.npy", result.vectors.astype(np.float32))
    save_csv(out / "image_metadata.csv", image_metadata(result))
    return write_manifest(
        out,
        "image",
        result.model,
        result.n_ok,
        {"failed": len(result.failures), "files": ["image_embeddings.npy", "image_metadata.csv"]},
    )


def write_text_embeddings(out: str | Path, texts: Sequence[str], vectors: np.ndarray, model: dict) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_npy(out / "text_embeddings.npy", vectors.astype(np.float32))
    save_csv(out / "text_metadata.csv", pd.DataFrame({"index": range(len(texts)), "text": list(texts)}))
    return write_manifest(out, "text", model, len(texts), {"files": ["text_embeddings.npy", "text_metadata.csv"]})


def write_similarity(path: str | Path, sim: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str]) -> None:
    """Images × texts cosine matrix as a labelled CSV (rows = image paths, columns = texts)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(sim, index=list(row_labels), columns=list(col_labels))
    df.index.name = "image"
    _atomic(path, lambda tmp: df.to_csv(tmp, float_format="%.6f"))
