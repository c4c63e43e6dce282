"""Retrieval evaluation on an indexed folder's own captions: text→image and image→text R@K of the
folder's model, from the vectors its index already holds (images are never embedded again; only
the captions go through the model's text tower). Metrics: `metrics.retrieval_metrics`.

Captions, first found: a `captions.csv` / `captions.jsonl` in the folder (rows path, caption, paths
relative to the folder; read by `retrieval.read_captions`, as `cliplab eval retrieval` reads them),
else the sidecar `.txt` beside each photo (`index/keywords.sidecar_caption`, one caption per photo).
The gallery is every captioned photo the index holds; captions of other files are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from cliplab.errors import DataError

CAPTION_FILES = ("captions.csv", "captions.jsonl")
SIDECAR = "sidecar .txt"  # the `captions` name of captions read beside the photos


class NoCaptionsError(DataError):
    """The folder has no captions, or none of a photo its index holds (a server answers 404)."""


def find_captions(folder: str | Path) -> Path | None:
    """The folder's captions file, if it has one."""
    return next((Path(folder) / n for n in CAPTION_FILES if (Path(folder) / n).is_file()), None)


def folder_captions(col) -> tuple[str, pd.DataFrame]:
    """(where the captions came from, DataFrame[path, caption] with paths relative to the folder and
    only the photos the index holds). NoCaptionsError when the folder has none, or none of an indexed photo."""
    from cliplab.eval.retrieval import read_captions

    folder = Path(col.folder)
    file = find_captions(folder)
    indexed = col.catalog.paths(col.catalog.ids_matching(col.scope, None))
    if file is not None:
        df = read_captions(file)
        root = folder.resolve()
        df["path"] = [_relative(p, root) for p in df["path"]]
        source = file.name
    else:
        from cliplab.index.keywords import sidecar_caption

        rows = [(p, sidecar_caption(folder / p)) for p in indexed.values()]
        df = pd.DataFrame([r for r in rows if r[1]], columns=["path", "caption"])
        source = SIDECAR
        if df.empty:
            raise NoCaptionsError(
                f"{folder} has no captions: put a {' or '.join(CAPTION_FILES)} (rows path,caption) in the "
                "folder, or a .txt beside each photo"
            )
    known = set(indexed.values())
    df = df[df["path"].isin(known) & (df["caption"].astype(str).str.strip() != "")].reset_index(drop=True)
    if df.empty:
        raise NoCaptionsError(
            f"{folder} has no captions of its {col.model} index's photos: no row of {source} names one"
        )
    return source, df[["path", "caption"]]


def _relative(path: str, root: Path) -> str | None:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:  # a caption of a file outside the folder: not in its index
        return None


def evaluate_collection(
    col,
    encoder=None,
    ks: Sequence[int] = (1, 5, 10),
    batch_size: int = 256,
    progress: bool = False,
    captions: tuple[str, pd.DataFrame] | None = None,
) -> dict:
    """R@K both ways of `col`'s model on the folder's captions (see the module's note) →
    {"captions", "model", "images", "captions_count", "R@1"…, "image_R@1"…, "median_rank",
    "image_median_rank"}. encoder: the model's (default `col.encoder()`; a server passes its loaded
    one, so thousands of captions bypass its query cache). captions: `folder_captions(col)`, when
    the caller has read them already."""
    from cliplab.eval.metrics import retrieval_metrics
    from cliplab.pipeline import embed_texts

    source, df = captions if captions is not None else folder_captions(col)
    images = list(dict.fromkeys(df["path"]))
    ids = col.catalog.ids_of(images)
    got, vecs = col.catalog.vectors(ids=[ids[p] for p in images])
    by_id = {int(i): v for i, v in zip(got, vecs)}
    row = {p: n for n, p in enumerate(images)}
    img = np.stack([by_id[ids[p]] for p in images])
    txt = embed_texts(encoder or col.encoder(), df["caption"].tolist(), batch_size, progress)
    m = retrieval_metrics(img, txt, df["path"].map(row).to_numpy(), ks=ks)
    t2i, i2t = m["text_to_image"], m["image_to_text"]
    out = {"captions": source, "model": col.model, "images": len(images), "captions_count": len(df)}
    out |= {f"R@{k}": round(t2i[f"R@{k}"], 4) for k in ks}
    out |= {f"image_R@{k}": round(i2t[f"R@{k}"], 4) for k in ks}
    return out | {"median_rank": t2i["median_rank"], "image_median_rank": i2t["median_rank"]}
