"""Evaluation metrics as pure functions: arrays in, plain dicts of floats out.

Tie rule, everywhere: ties count against the model. When scores are equal, relevant items (or the
true class) are ranked after the irrelevant ones they tie with, and otherwise by index. A model that
gives every item the same score therefore gets R@1 = 0 and top1 = 0, never credit for input order.

Every fraction is in [0, 1]; ranks (`median_rank`, `mean_rank`) are 1-based positions.
Queries with no relevant item are left out of the averages (`n_queries` counts the ones kept).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from cliplab.errors import EvalError  # noqa: F401  (defined with the other errors; importable from here)

CHUNK = 512  # query rows ranked at once; bounds memory at CHUNK × n_items


def _l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise EvalError(f"expected a 2-D array of vectors, got shape {x.shape}")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def pessimistic_order(scores: np.ndarray, relevant: np.ndarray, ignore: np.ndarray | None = None) -> np.ndarray:
    """(Q, M) item indices per query, best first: by score descending; among equal scores the
    irrelevant items first; ignored items last of all (so they drop out of every position)."""
    keys = [np.asarray(relevant, bool), -np.asarray(scores, np.float64)]
    if ignore is not None:
        keys.append(np.asarray(ignore, bool))
    return np.lexsort(keys, axis=-1)  # last key is the primary one; lexsort is stable


def _ranked(scores, relevant, ignore):
    """Relevance of each ranked position (Q, M) with ignored items removed from the count."""
    relevant = np.asarray(relevant, bool)
    if ignore is not None:
        relevant = relevant & ~np.asarray(ignore, bool)
    order = pessimistic_order(scores, relevant, ignore)
    return np.take_along_axis(relevant, order, axis=1)


def ranking_metrics(
    scores: np.ndarray,
    relevant: np.ndarray,
    ks: Sequence[int] = (1, 5, 10),
    ignore: np.ndarray | None = None,
    ap: str = "standard",
    return_ranks: bool = False,
) -> dict:
    """Rank M items for each of Q queries and score the ranking.

    scores (Q, M): higher is better. relevant (Q, M) bool. ignore (Q, M) bool: items that are
    neither relevant nor irrelevant (junk) and are removed from the ranking.

    - `R@K`: fraction of queries with at least one relevant item in the top K (CLIP's recall@K).
    - `P@K`: mean over queries of (#relevant in top K) / K.
    - `recall@K`: mean over queries of (#relevant in top K) / (#relevant).
    - `mAP`: mean average precision. `ap="standard"`: AP = mean over relevant items of the
      precision at their rank (= sklearn's average_precision_score without ties).
      `ap="trapezoid"`: the Revisited Oxford/Paris formula (revisitop `compute_ap`), which averages
      the precision just before and at each relevant item.
    - `median_rank`, `mean_rank`: 1-based rank of the first relevant item.
    K larger than the number of items is clamped to it (the key keeps the asked K).
    `return_ranks=True` adds `first_rank`: the (n_queries,) array behind median_rank (for curves).
    """
    scores = np.asarray(scores)
    relevant = np.asarray(relevant, bool)
    if scores.ndim != 2 or scores.shape != relevant.shape:
        raise EvalError(f"scores {scores.shape} and relevant {relevant.shape} must be the same (Q, M) shape")
    if ignore is not None and np.shape(ignore) != scores.shape:
        raise EvalError(f"ignore {np.shape(ignore)} must have the shape of scores {scores.shape}")
    if ap not in ("standard", "trapezoid"):
        raise EvalError(f"ap must be 'standard' or 'trapezoid', not {ap!r}")
    ks = [int(k) for k in ks]
    if any(k < 1 for k in ks):
        raise EvalError(f"every K must be >= 1 (got {ks})")
    q, m = scores.shape
    hits = {k: [] for k in ks}
    prec = {k: [] for k in ks}
    rec = {k: [] for k in ks}
    aps, first = [], []
    for s in range(0, q, CHUNK):
        ign = None if ignore is None else np.asarray(ignore[s : s + CHUNK], bool)
        rel = _ranked(scores[s : s + CHUNK], relevant[s : s + CHUNK], ign)
        n_rel = rel.sum(axis=1)
        keep = n_rel > 0
        rel, n_rel = rel[keep], n_rel[keep]
        if not len(rel):
            continue
        cum = np.cumsum(rel, axis=1)
        pos = np.arange(1, m + 1)
        for k in ks:
            kk = min(k, m)
            at_k = cum[:, kk - 1]
            hits[k].append(at_k > 0)
            prec[k].append(at_k / k)
            rec[k].append(at_k / n_rel)
        p_at = cum / pos  # precision at each position, counting that position
        if ap == "standard":
            aps.append((p_at * rel).sum(axis=1) / n_rel)
        else:
            before = np.where(pos > 1, (cum - 1) / np.maximum(pos - 1, 1), 1.0)  # precision just before
            aps.append((((before + p_at) / 2) * rel).sum(axis=1) / n_rel)
        first.append(rel.argmax(axis=1) + 1)
    if not aps:
        raise EvalError("no query has a relevant item: nothing to evaluate")
    cat = np.concatenate
    out: dict = {}
    for k in ks:
        out[f"R@{k}"] = float(cat(hits[k]).mean())
    for k in ks:
        out[f"P@{k}"] = float(cat(prec[k]).mean())
    for k in ks:
        out[f"recall@{k}"] = float(cat(rec[k]).mean())
    ranks = cat(first)
    out.update(
        {
            "mAP": float(cat(aps).mean()),
            "median_rank": float(np.median(ranks)),
            "mean_rank": float(ranks.mean()),
            "n_queries": int(len(ranks)),
        }
    )
    if return_ranks:
        out["first_rank"] = ranks
    return out


def retrieval_metrics(
    image_emb: np.ndarray, text_emb: np.ndarray, text_to_image: np.ndarray, ks=(1, 5, 10), return_ranks: bool = False
) -> dict:
    """Cross-modal retrieval, both directions, by cosine similarity.

    text_to_image[j] is the row in `image_emb` of caption j's image (several captions per image
    allowed). text→image: each caption has exactly one correct image. image→text: every caption of
    the image is relevant, so `R@K` = any of its captions in the top K, `P@K` = (#its captions in
    top K) / K, `recall@K` = (#its captions in top K) / (#its captions), mAP over all its captions.
    Images without captions are not image→text queries (they stay in the gallery for text→image).
    See `ranking_metrics` for the definitions and the tie rule (ties count against the model).
    median_rank is a 1-based rank, every other value a fraction in [0, 1].
    """
    img, txt = _l2(image_emb), _l2(text_emb)
    t2i = np.asarray(text_to_image).astype(np.int64, copy=False).ravel()
    if len(t2i) != len(txt):
        raise EvalError(f"text_to_image has {len(t2i)} entries for {len(txt)} texts")
    if len(img) == 0 or len(txt) == 0:
        raise EvalError("retrieval needs at least one image and one text")
    if img.shape[1] != txt.shape[1]:
        raise EvalError(f"image dim {img.shape[1]} != text dim {txt.shape[1]}")
    if t2i.min() < 0 or t2i.max() >= len(img):
        raise EvalError(f"text_to_image values must be in [0, {len(img)})")
    sim = txt @ img.T  # (texts, images)
    rel = t2i[:, None] == np.arange(len(img))[None, :]
    return {
        "text_to_image": ranking_metrics(sim, rel, ks, return_ranks=return_ranks),
        "image_to_text": ranking_metrics(sim.T, rel.T, ks, return_ranks=return_ranks),
        "n_images": int(len(img)),
        "n_texts": int(len(txt)),
    }


def classification_metrics(
    scores: np.ndarray, y_true: np.ndarray, ks=(1, 5), classnames: Sequence[str] | None = None
) -> dict:
    """Zero-shot / any classifier. scores (N, C), higher = more likely; y_true (N,) class indices.

    - `top1`, `top5`, …: fraction of samples whose true class ranks within K (ties count against
      the model: the true class goes after every class with an equal score). K is clamped to C.
    - `mean_per_class_recall`: recall averaged over the classes present in y_true
      (= sklearn's balanced_accuracy_score).
    - `per_class_accuracy`: {class: recall}, classes present in y_true only.
    - `confusion_matrix`: (C, C) counts, rows = true class, columns = predicted (top-1) class.
    """
    scores = np.asarray(scores, np.float64)
    y = np.asarray(y_true).astype(np.int64, copy=False).ravel()
    if scores.ndim != 2 or len(scores) != len(y):
        raise EvalError(f"scores {scores.shape} must be (N, C) with N = len(y_true) = {len(y)}")
    n, c = scores.shape
    if n == 0:
        raise EvalError("no samples to evaluate")
    if y.min() < 0 or y.max() >= c:
        raise EvalError(f"y_true values must be in [0, {c})")
    names = list(classnames) if classnames is not None else [str(i) for i in range(c)]
    if len(names) != c:
        raise EvalError(f"{len(names)} class names for {c} score columns")
    true_score = scores[np.arange(n), y][:, None]
    is_true = np.zeros_like(scores, bool)
    is_true[np.arange(n), y] = True
    rank = (scores > true_score).sum(axis=1) + ((scores == true_score) & ~is_true).sum(axis=1) + 1
    pred = pessimistic_order(scores, is_true)[:, 0]
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y, pred, labels=np.arange(c))
    support = cm.sum(axis=1)
    present = support > 0
    recall = np.diag(cm)[present] / support[present]
    out = {f"top{k}": float((rank <= min(int(k), c)).mean()) for k in ks}
    out.update(
        {
            "mean_per_class_recall": float(recall.mean()),
            "per_class_accuracy": {names[i]: float(r) for i, r in zip(np.flatnonzero(present), recall)},
            "confusion_matrix": cm,
            "classes": names,
            "n": int(n),
        }
    )
    return out


def revisited_ground_truth(gnd: Sequence[dict], protocol: str) -> tuple[list[list[int]], list[list[int]]]:
    """Revisited Oxford/Paris: per query, (positive indices, ignored indices) for one protocol.

    easy: positives = easy; ignored = junk + hard. medium: positives = easy + hard; ignored = junk.
    hard: positives = hard; ignored = junk + easy.
    """
    if protocol not in ("easy", "medium", "hard"):
        raise EvalError(f"protocol must be easy, medium or hard, not {protocol!r}")
    pos_keys = {"easy": ("easy",), "medium": ("easy", "hard"), "hard": ("hard",)}[protocol]
    ign_keys = {"easy": ("junk", "hard"), "medium": ("junk",), "hard": ("junk", "easy")}[protocol]
    pos = [sorted({int(i) for key in pos_keys for i in g.get(key, [])}) for g in gnd]
    ign = [sorted({int(i) for key in ign_keys for i in g.get(key, [])}) for g in gnd]
    return pos, ign


def masks_from_lists(n_items: int, lists: Sequence[Sequence[int]]) -> np.ndarray:
    """Index lists per query → (Q, n_items) bool mask."""
    m = np.zeros((len(lists), n_items), bool)
    for q, idx in enumerate(lists):
        if len(idx):
            m[q, np.asarray(idx, np.int64)] = True
    return m


def instance_metrics(
    query_emb: np.ndarray,
    db_emb: np.ndarray,
    relevant: np.ndarray,
    ignore: np.ndarray | None = None,
    ks=(1, 5, 10),
    ap: str = "standard",
    return_ranks: bool = False,
) -> dict:
    """Instance retrieval: queries rank the database by cosine similarity; mAP and P@K.
    relevant / ignore: (Q, N_db) bool. For the Revisited protocol pass ap="trapezoid"."""
    q, d = _l2(query_emb), _l2(db_emb)
    if q.shape[1] != d.shape[1]:
        raise EvalError(f"query dim {q.shape[1]} != database dim {d.shape[1]}")
    return ranking_metrics(q @ d.T, relevant, ks, ignore=ignore, ap=ap, return_ranks=return_ranks)


def label_ground_truth(labels: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Each image queries all the others: relevant = same label, the query itself ignored."""
    lab = np.asarray([str(x) for x in labels])
    rel = lab[:, None] == lab[None, :]
    self_mask = np.eye(len(lab), dtype=bool)
    return rel & ~self_mask, self_mask
