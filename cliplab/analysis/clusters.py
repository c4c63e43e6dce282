"""k-means on image embeddings, scored against the dataset's categories, and a contact sheet."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from cliplab.errors import CliplabError


def purity(true_labels: Sequence, clusters: Sequence[int]) -> float:
    """Fraction of items that belong to their cluster's majority category."""
    true_labels, clusters = np.asarray(true_labels), np.asarray(clusters)
    if not len(true_labels):
        return float("nan")
    hits = 0
    for c in np.unique(clusters):
        _, counts = np.unique(true_labels[clusters == c], return_counts=True)
        hits += counts.max()
    return float(hits / len(true_labels))


def kmeans(vectors: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    from sklearn.cluster import KMeans

    k = int(k)
    if k < 1:
        raise CliplabError(f"number of clusters must be >= 1, got {k}")
    k = min(k, len(vectors))
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(np.asarray(vectors, np.float64))


def cluster_scores(vectors: np.ndarray, categories: Sequence[str], k: int | None = None, seed: int = 0) -> dict:
    """k-means (k = number of categories unless given) + purity / NMI / ARI against the categories,
    and the silhouette of the categories themselves (cosine; how well the space separates them
    before any clustering). Scores are None when there are fewer than two categories."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

    cats = np.asarray(categories).astype(str)
    n_cat = len(set(cats.tolist()))
    k = n_cat if k is None else int(k)
    out: dict = {"k": None, "labels": None, "purity": None, "nmi": None, "ari": None, "silhouette": None}
    if len(vectors) < 2 or k < 2:
        return out
    labels = kmeans(vectors, k, seed)
    out.update(k=int(labels.max()) + 1, labels=labels)
    if n_cat >= 2:
        out.update(
            purity=purity(cats, labels),
            nmi=float(normalized_mutual_info_score(cats, labels)),
            ari=float(adjusted_rand_score(cats, labels)),
        )
        if n_cat < len(vectors):
            out["silhouette"] = float(silhouette_score(vectors, cats, metric="cosine"))
    return out


def _thumb(path: str, size: int) -> Image.Image:
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            return ImageOps.fit(im, (size, size))
    except Exception:  # noqa: BLE001 a broken file gets a grey tile, the sheet still renders
        return Image.new("RGB", (size, size), (200, 200, 200))


def typical_members(vectors: np.ndarray, members: np.ndarray, n: int) -> np.ndarray:
    """The `n` members nearest their cluster's centroid (cosine), most typical first; ties by index."""
    v = np.asarray(vectors, np.float64)[members]
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    centroid = v.mean(axis=0)
    order = np.lexsort((members, -(v @ centroid)))
    return members[order[:n]]


def contact_sheet(
    paths: Sequence[str],
    clusters: Sequence[int],
    categories: Sequence[str],
    out_png: str | Path,
    per_cluster: int = 8,
    thumb: int = 72,
    max_clusters: int = 40,
    vectors: np.ndarray | None = None,
) -> Path:
    """One row per cluster: its size and majority category, then up to `per_cluster` thumbnails:
    its most typical members (nearest the centroid) when `vectors` are given, else the first ones."""
    paths, clusters, categories = list(paths), np.asarray(clusters), np.asarray(categories).astype(str)
    ids = sorted(np.unique(clusters).tolist(), key=lambda c: -int((clusters == c).sum()))[:max_clusters]
    label_w, pad = 190, 4
    width = label_w + per_cluster * (thumb + pad) + pad
    height = len(ids) * (thumb + pad) + pad
    sheet = Image.new("RGB", (width, max(height, thumb)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, c in enumerate(ids):
        members = np.flatnonzero(clusters == c)
        cats, counts = np.unique(categories[members], return_counts=True)
        top = cats[counts.argmax()]
        y = pad + row * (thumb + pad)
        draw.text((pad, y + 4), f"cluster {c}  (n={len(members)})", fill="black")
        draw.text((pad, y + 20), f"{top[:24]}", fill="black")
        draw.text((pad, y + 36), f"{counts.max() / len(members):.0%} majority", fill=(90, 90, 90))
        shown = typical_members(vectors, members, per_cluster) if vectors is not None else members[:per_cluster]
        for j, i in enumerate(shown):
            sheet.paste(_thumb(paths[i], thumb), (label_w + pad + j * (thumb + pad), y))
    out_png = Path(out_png)
    sheet.save(out_png)
    return out_png
