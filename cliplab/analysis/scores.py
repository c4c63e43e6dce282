"""Numbers behind the comparison report: pure functions of a similarity matrix and a relevance mask.

sim (n_images, n_captions) cosine; rel (n_images, n_captions) bool, True where the caption describes
the image. Retrieval uses `cliplab.eval.metrics.ranking_metrics`, so ties count against the model
there as everywhere else.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cliplab.eval.metrics import ranking_metrics


def _mean_sd(x: np.ndarray) -> tuple[float, float]:
    if x.size == 0:
        return float("nan"), float("nan")
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0


def similarity_stats(sim: np.ndarray, rel: np.ndarray, img_cat=None, cap_cat=None) -> dict:
    """Matched vs mismatched caption similarity: means, sds, the gap and the gap in pooled sds.

    Captions that describe no image in `sim` (their image failed to load) are left out.
    With categories, mismatched pairs are also split into same-category / other-category.
    """
    keep = rel.any(axis=0)
    s, r = sim[:, keep], rel[:, keep]
    matched, mismatched = s[r], s[~r]
    m_mean, m_sd = _mean_sd(matched)
    x_mean, x_sd = _mean_sd(mismatched)
    pooled = float(np.sqrt((m_sd**2 + x_sd**2) / 2)) if matched.size and mismatched.size else float("nan")
    gap = m_mean - x_mean
    out = {
        "matched_mean": m_mean,
        "matched_sd": m_sd,
        "matched_n": int(matched.size),
        "mismatched_mean": x_mean,
        "mismatched_sd": x_sd,
        "mismatched_n": int(mismatched.size),
        "gap": gap,
        "gap_in_sd": gap / pooled if pooled and pooled > 0 else float("nan"),
    }
    if img_cat is not None and cap_cat is not None:
        same = np.asarray(img_cat)[:, None] == np.asarray(cap_cat)[keep][None, :]
        out["mismatched_same_category_mean"] = _mean_sd(s[~r & same])[0]
        out["mismatched_other_category_mean"] = _mean_sd(s[~r & ~same])[0]
    return out


def retrieval_scores(sim: np.ndarray, rel: np.ndarray) -> dict:
    """image→caption and caption→image top-1 / top-5, with chance levels for the reading."""
    i2t = ranking_metrics(sim, rel, ks=(1, 5))
    t2i = ranking_metrics(sim.T, rel.T, ks=(1, 5))
    n_img, n_cap = sim.shape
    with np.errstate(invalid="ignore", divide="ignore"):
        i2t_chance = float(np.mean(rel.sum(axis=1)[rel.any(axis=1)] / n_cap))
        t2i_chance = float(np.mean(rel.sum(axis=0)[rel.any(axis=0)] / n_img))
    return {
        "i2t_top1": i2t["R@1"],
        "i2t_top5": i2t["R@5"],
        "t2i_top1": t2i["R@1"],
        "t2i_top5": t2i["R@5"],
        "i2t_chance": i2t_chance,
        "t2i_chance": t2i_chance,
        "i2t_median_rank": i2t["median_rank"],
        "t2i_median_rank": t2i["median_rank"],
    }


def category_top1(sim: np.ndarray, img_cat, cap_cat) -> np.ndarray:
    """Per image: is its most similar caption one of its own category? (bool array)"""
    best = np.argmax(sim, axis=1)
    return np.asarray(cap_cat)[best] == np.asarray(img_cat)


def per_category(sim: np.ndarray, rel: np.ndarray, img_cat, cap_cat) -> pd.DataFrame:
    """One row per category: images, image→caption top-1, category top-1, matched / mismatched mean."""
    img_cat = np.asarray(img_cat)
    cat_hit = category_top1(sim, img_cat, cap_cat)
    rows = []
    for c in sorted(set(img_cat.tolist())):
        m = img_cat == c
        sub_sim, sub_rel = sim[m], rel[m]
        has = sub_rel.any(axis=1)
        i2t = ranking_metrics(sub_sim[has], sub_rel[has], ks=(1,))["R@1"] if has.any() else float("nan")
        rows.append(
            {
                "category": c,
                "images": int(m.sum()),
                "i2t_top1": i2t,
                "category_top1": float(cat_hit[m].mean()),
                "matched_mean": _mean_sd(sub_sim[sub_rel])[0],
                "mismatched_mean": _mean_sd(sub_sim[~sub_rel])[0],
            }
        )
    return pd.DataFrame(rows)


def modality_gap(image_vectors: np.ndarray, text_vectors: np.ndarray) -> float:
    """Distance between the image centroid and the caption centroid (Liang et al., 2022)."""
    if not len(image_vectors) or not len(text_vectors):
        return float("nan")
    return float(np.linalg.norm(image_vectors.mean(axis=0) - text_vectors.mean(axis=0)))
