"""Writers of cliplab's output layouts, side by side, every file through `atomic.py`.

Our layout (`cliplab embed --out DIR`):
    DIR/image_embeddings.npy   (N, D) float32, L2-normalised, rows = embedded images in input order
    DIR/image_metadata.csv     every input: index, path, status, row (-1 when failed), error
    DIR/image_manifest.json    model, model_info, dim, count, created, cliplab_version, files
    DIR/text_*                 the same for texts (`--texts`)
clip-retrieval's layout (`--layout clip-retrieval`, the Ray engine), read back by `shards.py`:
    DIR/img_emb/img_emb_{i}.npy, DIR/text_emb/text_emb_{i}.npy, DIR/metadata/metadata_{i}.parquet,
    DIR/manifest.json
A shard's metadata is written last, so a shard counts as finished exactly when it exists.
One folder holds one layout: `check_out_dir` refuses to mix them (or clears the other with `overwrite`).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from cliplab.data.atomic import atomic_path, atomic_write_json
from cliplab.data.shards import EMB_DTYPE, MANIFEST, shard_paths
from cliplab.errors import OutputError

LAYOUTS = {
    "cliplab": (
        "image_embeddings.npy",
        "image_metadata.csv",
        "image_manifest.json",
        "text_embeddings.npy",
        "text_metadata.csv",
        "text_manifest.json",
    ),
    "clip-retrieval": ("img_emb", "text_emb", "metadata", MANIFEST),
}


def version() -> str:
    from cliplab import __version__

    return __version__


# --- one folder, one layout -----------------------------------------------------------------------
def check_out_dir(out: str | Path, layout: str, overwrite: bool = False) -> None:
    """Refuse to write `layout` into a folder holding the other layout's files (a mix that no
    reader can use); with `overwrite`, remove those files (only them) first."""
    out = Path(out)
    for other, names in LAYOUTS.items():
        if other == layout:
            continue
        found = [n for n in names if (out / n).exists()]
        if not found:
            continue
        if not overwrite:
            raise OutputError(
                f"--out {out}: holds output in the {other} layout ({', '.join(found[:3])}); "
                f"give another folder, or --overwrite to replace it"
            )
        for n in found:
            p = out / n
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


# --- our layout -----------------------------------------------------------------------------------
def save_npy(path: str | Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, arr)


def save_csv(path: str | Path, df, **kw) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, **({"index": False} | kw))


def write_run_manifest(out: Path, kind: str, model: dict, count: int, extra: dict) -> dict:
    m = {
        "kind": kind,
        "model": model.get("model"),
        "model_info": model,
        "dim": model.get("dim"),
        "count": count,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cliplab_version": version(),
        "dtype": "float32",
        "normalized": True,
        **extra,
    }
    atomic_write_json(out / f"{kind}_manifest.json", m, default=str)
    return m


def image_metadata(result):
    """The metadata table of an embedding run (`pipeline.EmbedResult`): every input, one row."""
    import pandas as pd

    return pd.DataFrame(
        {
            "index": range(len(result.paths)),
            "path": result.paths,
            "status": result.status,
            "row": result.rows,
            "error": result.errors,
        }
    )


def write_image_embeddings(out: str | Path, result) -> dict:
    """image_embeddings.npy (rows = successfully embedded images, in input order) +
    image_metadata.csv (every input; `row` points into the array, -1 when failed) + manifest."""
    out = Path(out)
    save_npy(out / "image_embeddings.npy", result.vectors.astype(np.float32))
    save_csv(out / "image_metadata.csv", image_metadata(result))
    files = ["image_embeddings.npy", "image_metadata.csv"]
    return write_run_manifest(out, "image", result.model, result.n_ok, {"failed": len(result.failures), "files": files})


def write_text_embeddings(out: str | Path, texts: Sequence[str], vectors: np.ndarray, model: dict) -> dict:
    import pandas as pd

    out = Path(out)
    save_npy(out / "text_embeddings.npy", vectors.astype(np.float32))
    save_csv(out / "text_metadata.csv", pd.DataFrame({"index": range(len(texts)), "text": list(texts)}))
    return write_run_manifest(out, "text", model, len(texts), {"files": ["text_embeddings.npy", "text_metadata.csv"]})


def write_similarity(path: str | Path, sim: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str]) -> None:
    """Images × texts cosine matrix as a labelled CSV (rows = image paths, columns = texts)."""
    import pandas as pd

    df = pd.DataFrame(sim, index=list(row_labels), columns=list(col_labels))
    df.index.name = "image"
    save_csv(path, df, index=True, float_format="%.6f")


# --- clip-retrieval's layout ----------------------------------------------------------------------
def write_shard(
    out: str | Path,
    i: int,
    vectors: np.ndarray,
    metadata,
    text_vectors: np.ndarray | None = None,
    dtype: str = EMB_DTYPE,
) -> None:
    """One shard, exactly once: vectors first, metadata (the commit mark) last, each renamed into place.
    `metadata` is a pandas DataFrame with one row per vector, in the same order."""
    if len(metadata) != len(vectors):
        raise ValueError(f"shard {i}: {len(vectors)} vectors but {len(metadata)} metadata rows")
    p = shard_paths(out, i)
    save_npy(p["img"], np.asarray(vectors).astype(dtype))
    if text_vectors is not None:
        save_npy(p["text"], np.asarray(text_vectors).astype(dtype))
    with atomic_path(p["meta"]) as tmp:
        metadata.to_parquet(tmp, index=False)


def write_shards_manifest(out: str | Path, manifest: dict) -> None:
    atomic_write_json(Path(out) / MANIFEST, {**manifest, "cliplab_version": version()}, default=str)
