"""PNG figures for the analysis report. matplotlib's object API with the Agg canvas: no pyplot
state, no display needed, safe to call from anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

MAX_TSNE_POINTS = 3000  # t-SNE is quadratic-ish; beyond this a fixed random subset is drawn
MAX_TICK_GROUPS = 30  # more categories than this: boundaries only, no names


def _save(fig: Figure, path: str | Path) -> Path:
    FigureCanvasAgg(fig)
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def category_colors(categories: Sequence[str]) -> dict:
    from matplotlib import colormaps

    cats = sorted(set(map(str, categories)))
    cmap = colormaps["tab10" if len(cats) <= 10 else "tab20" if len(cats) <= 20 else "hsv"]
    n = max(len(cats), 1)
    return {c: cmap(i if len(cats) <= 20 else i / n) for i, c in enumerate(cats)}


def _groups(labels: np.ndarray) -> list[tuple[str, int, int]]:
    """Runs of equal labels in an already grouped array → (label, start, end)."""
    out, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            out.append((str(labels[start]), start, i))
            start = i
    return out


def similarity_heatmap(
    sim: np.ndarray, img_cat: Sequence[str], cap_cat: Sequence[str], path: str | Path, title: str
) -> Path:
    """Images × captions cosine, both axes grouped by category, with category boundaries drawn."""
    img_cat, cap_cat = np.asarray(img_cat).astype(str), np.asarray(cap_cat).astype(str)
    ri, ci = np.argsort(img_cat, kind="stable"), np.argsort(cap_cat, kind="stable")
    s, img_cat, cap_cat = sim[ri][:, ci], img_cat[ri], cap_cat[ci]
    w = min(14.0, 4.0 + 0.04 * s.shape[1])
    h = min(12.0, 3.0 + 0.04 * s.shape[0])
    fig = Figure(figsize=(max(w, 6), max(h, 4.5)))
    ax = fig.add_subplot()
    im = ax.imshow(s, aspect="auto", cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax, label="cosine similarity")
    for axis, groups, line in ((ax.yaxis, _groups(img_cat), ax.axhline), (ax.xaxis, _groups(cap_cat), ax.axvline)):
        for _, _, end in groups[:-1]:
            line(end - 0.5, color="white", lw=0.8)
        if len(groups) <= MAX_TICK_GROUPS:
            axis.set_ticks([(a + b - 1) / 2 for _, a, b in groups])
            axis.set_ticklabels([g[:20] for g, _, _ in groups], fontsize=7)
        else:
            axis.set_ticks([])
    ax.tick_params(axis="x", labelrotation=45)
    ax.set_xlabel(f"captions ({s.shape[1]})")
    ax.set_ylabel(f"images ({s.shape[0]})")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def project_2d(vectors: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """(N, D) → (N, 2) by pca, tsne or umap (umap only when umap-learn is importable)."""
    x = np.asarray(vectors, np.float64)
    if method == "pca":
        from sklearn.decomposition import PCA

        z = PCA(n_components=min(2, *x.shape), random_state=seed).fit_transform(x)
        return np.pad(z, ((0, 0), (0, 2 - z.shape[1])))
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
        # 500 iterations (250 of them early exaggeration) settle a map of this size; the default
        # 1000 doubles the cost of the slowest figure for no visible change.
        return TSNE(
            n_components=2, perplexity=perplexity, init="pca", metric="cosine", max_iter=500, random_state=seed
        ).fit_transform(x)
    if method == "umap":
        import umap  # optional dependency; callers check umap_available() first

        return umap.UMAP(
            n_components=2, metric="cosine", random_state=seed, n_neighbors=max(2, min(15, len(x) - 1))
        ).fit_transform(x)
    raise ValueError(f"unknown projection {method!r}")


def umap_available() -> bool:
    try:
        import umap  # noqa: F401
    except Exception:  # noqa: BLE001 a broken install counts as absent
        return False
    return True


def joint_projection(
    image_vectors: np.ndarray,
    text_vectors: np.ndarray,
    img_cat: Sequence[str],
    cap_cat: Sequence[str],
    method: str,
    path: str | Path,
    title: str,
    seed: int = 0,
) -> Path | None:
    """Images and captions in one 2-D map: colour = category, marker = modality, plus both centroids
    joined by a line, so the modality gap and the category structure show at a glance."""
    x = np.concatenate([image_vectors, text_vectors]).astype(np.float64)
    is_img = np.r_[np.ones(len(image_vectors), bool), np.zeros(len(text_vectors), bool)]
    cats = np.r_[np.asarray(img_cat).astype(str), np.asarray(cap_cat).astype(str)]
    if len(x) < (5 if method != "pca" else 2):
        return None
    note = ""
    if method == "tsne" and len(x) > MAX_TSNE_POINTS:
        note = f" (random {MAX_TSNE_POINTS} of {len(x)} points)"
        keep = np.sort(np.random.default_rng(seed).choice(len(x), MAX_TSNE_POINTS, replace=False))
        x, is_img, cats = x[keep], is_img[keep], cats[keep]
    z = project_2d(x, method, seed)
    colors = category_colors(cats)
    fig = Figure(figsize=(7.5, 6))
    ax = fig.add_subplot()
    for modality, mask, marker, size in (("caption", ~is_img, "^", 22), ("image", is_img, "o", 26)):
        if mask.any():
            ax.scatter(
                z[mask, 0],
                z[mask, 1],
                c=[colors[c] for c in cats[mask]],
                marker=marker,
                s=size,
                alpha=0.75,
                edgecolors="black" if modality == "image" else "none",
                linewidths=0.3,
            )
    if is_img.any() and (~is_img).any():
        ci, ct = z[is_img].mean(axis=0), z[~is_img].mean(axis=0)
        ax.plot([ci[0], ct[0]], [ci[1], ct[1]], "k--", lw=1)
        ax.scatter(*ci, marker="X", s=160, c="black", zorder=5)
        ax.scatter(*ct, marker="P", s=160, c="black", zorder=5)
    handles = [
        Line2D([], [], ls="", marker="o", color="grey", markeredgecolor="black", label="image"),
        Line2D([], [], ls="", marker="^", color="grey", label="caption"),
        Line2D([], [], ls="", marker="X", color="black", label="image centroid"),
        Line2D([], [], ls="", marker="P", color="black", label="caption centroid"),
    ]
    handles += [Line2D([], [], ls="", marker="s", color=col, label=c[:24]) for c, col in list(colors.items())[:20]]
    ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.set_title(f"{title}{note}", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    return _save(fig, path)


def comparison_bars(summary: dict, path: str | Path) -> Path:
    """One group of bars per score, one bar per model (the report's overview figure)."""
    keys = [
        ("gap", "matched −\nmismatched"),
        ("i2t_top1", "image→caption\ntop-1"),
        ("t2i_top1", "caption→image\ntop-1"),
        ("category_top1", "category\ntop-1"),
        ("nmi", "k-means\nNMI"),
        ("ari", "k-means\nARI"),
        ("silhouette", "category\nsilhouette"),
    ]
    models = list(summary)
    fig = Figure(figsize=(9, 4))
    ax = fig.add_subplot()
    width = 0.8 / max(len(models), 1)
    for j, m in enumerate(models):
        vals = [summary[m].get(k) for k, _ in keys]
        vals = [float(v) if v is not None and np.isfinite(v) else 0.0 for v in vals]
        ax.bar(np.arange(len(keys)) + j * width - 0.4 + width / 2, vals, width, label=m)
    ax.set_xticks(np.arange(len(keys)))
    ax.set_xticklabels([lab for _, lab in keys], fontsize=8)
    ax.axhline(0, color="black", lw=0.6)
    ax.legend(fontsize=8)
    ax.set_title("models side by side (higher is better)", fontsize=10)
    return _save(fig, path)
