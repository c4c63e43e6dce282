"""Intermediate-layer image features of a model (`cliplab features`): extract and write them.

The layer maps and their pooling are model-level (`cliplab.models.features.layer_features.LayerFeatures`,
shared with `eval instance`); this module runs them over files and writes the outputs.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from cliplab.models.core.base import Encoder
from cliplab.models.features.layer_features import LayerFeatures
from cliplab.pipeline import EmbedResult, embed_images


def extract_features(
    encoder: Encoder,
    paths: Sequence[str],
    layer="head",
    pooling: str = "gem",
    pca=None,
    whiten: bool = False,
    gem_p: float = 3.0,
    batch_size: int | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, EmbedResult]:
    """Pooled (optionally PCA-reduced) layer features of `paths`.

    Returns (features (n_ok, dim) float32, the EmbedResult whose `vectors` they are: per-input status,
    errors and rows, as from `embed_images`). `pca` is a target dimension (fitted on these images)
    or an already fitted sklearn PCA (e.g. the database's, for queries).
    """
    fx = (
        encoder
        if isinstance(encoder, LayerFeatures)
        else LayerFeatures(encoder, layer, pooling, pca=pca, whiten=whiten, gem_p=gem_p)
    )
    res = embed_images(fx, list(paths), batch_size=batch_size, progress=progress)
    res.model = fx.describe()
    return res.vectors, res


def write_features(out, result: EmbedResult) -> dict:
    """features.npy (rows = readable images, in input order) + features_metadata.csv (every input;
    `row` points into the array, -1 when failed) + features_manifest.json, like `embed` output."""
    from pathlib import Path

    from cliplab.data import writers as export

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    export.save_npy(out / "features.npy", result.vectors.astype(np.float32))
    export.save_csv(out / "features_metadata.csv", export.image_metadata(result))
    files = ["features.npy", "features_metadata.csv"]
    return export.write_run_manifest(
        out,
        "features",
        result.model,
        result.n_ok,  # same manifest as embed's
        {"failed": len(result.failures), "files": files},
    )
