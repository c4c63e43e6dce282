"""Metrics against hand-computed cases and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, balanced_accuracy_score, confusion_matrix, top_k_accuracy_score

from cliplab.eval.metrics import (
    EvalError,
    classification_metrics,
    instance_metrics,
    label_ground_truth,
    masks_from_lists,
    ranking_metrics,
    retrieval_metrics,
    revisited_ground_truth,
)

# 2 images, 4 captions: captions 0, 1 belong to image 0; captions 2, 3 to image 1.
IMAGES = np.array([[1.0, 0.0], [0.0, 1.0]])
TEXTS = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]])
T2I = np.array([0, 0, 1, 1])


def test_retrieval_hand_computed_text_to_image():
    r = retrieval_metrics(IMAGES, TEXTS, T2I, ks=(1, 5))
    t = r["text_to_image"]
    # ranks of the right image per caption: 1, 2, 1, 2
    assert t["R@1"] == pytest.approx(0.5)
    assert t["R@5"] == pytest.approx(1.0)  # K clamped to the 2 images
    assert t["P@1"] == pytest.approx(0.5)
    assert t["recall@1"] == pytest.approx(0.5)  # one relevant image: recall@K == R@K
    assert t["mAP"] == pytest.approx((1 + 0.5 + 1 + 0.5) / 4)
    assert t["median_rank"] == pytest.approx(1.5)
    assert (r["n_images"], r["n_texts"]) == (2, 4)


def test_retrieval_hand_computed_image_to_text_several_captions():
    i = retrieval_metrics(IMAGES, TEXTS, T2I, ks=(1, 2, 5))["image_to_text"]
    # image 0 ranks t0 t3 t2 t1 → its captions at 1, 4; image 1 ranks t1 t2 t3 t0 → at 2, 3
    assert i["R@1"] == pytest.approx(0.5)  # any caption in the top 1
    assert i["R@2"] == pytest.approx(1.0)
    assert i["P@1"] == pytest.approx(0.5)
    assert i["P@2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert i["recall@1"] == pytest.approx((1 / 2 + 0) / 2)
    assert i["recall@2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert i["P@5"] == pytest.approx(2 / 5)  # all 4 texts in the top 5, 2 relevant, / K
    ap0, ap1 = (1 / 1 + 2 / 4) / 2, (1 / 2 + 2 / 3) / 2
    assert i["mAP"] == pytest.approx((ap0 + ap1) / 2)
    assert i["median_rank"] == pytest.approx(1.5)  # first caption at rank 1 and 2
    assert i["n_queries"] == 2


def test_retrieval_is_cosine_and_validates():
    r1 = retrieval_metrics(IMAGES * 3, TEXTS * 0.1, T2I)
    r2 = retrieval_metrics(IMAGES, TEXTS, T2I)
    assert r1 == r2
    with pytest.raises(EvalError):
        retrieval_metrics(IMAGES, TEXTS, T2I[:3])
    with pytest.raises(EvalError):
        retrieval_metrics(IMAGES, TEXTS, np.array([0, 0, 1, 2]))


def test_ties_count_against_the_model():
    s = np.zeros((3, 4))
    rel = np.eye(3, 4, dtype=bool)
    m = ranking_metrics(s, rel, ks=(1, 4))
    assert m["R@1"] == 0.0 and m["R@4"] == 1.0
    assert m["median_rank"] == 4.0 and m["mAP"] == pytest.approx(0.25)
    # a relevant item tied with one irrelevant ranks second, whatever the index order
    for scores in ([0.9, 0.9, 0.1], [0.1, 0.9, 0.9]):
        rel = np.array([[False, True, False]])
        assert ranking_metrics(np.array([scores]), rel, ks=(1,))["median_rank"] == 2.0
    # several tied relevant: the first one ranks right after all tied irrelevant ones
    r = ranking_metrics(np.zeros((1, 5)), np.array([[1, 0, 1, 0, 0]], bool))
    assert r["median_rank"] == 4.0
    assert r["mAP"] == pytest.approx((1 / 4 + 2 / 5) / 2)


def test_constant_embeddings_score_zero():
    r = retrieval_metrics(np.ones((3, 2)), np.ones((6, 2)), np.array([0, 0, 1, 1, 2, 2]), ks=(1,))
    assert r["text_to_image"]["R@1"] == 0.0 and r["image_to_text"]["R@1"] == 0.0


def test_queries_without_relevant_items_are_left_out():
    s = np.array([[0.9, 0.1], [0.5, 0.4]])
    rel = np.array([[True, False], [False, False]])
    r = ranking_metrics(s, rel, ks=(1,))
    assert r["n_queries"] == 1 and r["mAP"] == 1.0
    with pytest.raises(EvalError):
        ranking_metrics(s, np.zeros_like(rel), ks=(1,))


@pytest.mark.parametrize("seed", range(5))
def test_map_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(40, 30))
    rel = rng.random((40, 30)) < 0.2
    rel[:, 0] = True  # every query has a relevant item
    expect = np.mean([average_precision_score(rel[q], s[q]) for q in range(40)])
    assert ranking_metrics(s, rel)["mAP"] == pytest.approx(expect, abs=1e-12)


def test_chunked_equals_unchunked(monkeypatch):
    from cliplab.eval import metrics

    rng = np.random.default_rng(0)
    s, rel = rng.normal(size=(50, 20)), rng.random((50, 20)) < 0.3
    full = ranking_metrics(s, rel)
    monkeypatch.setattr(metrics, "CHUNK", 7)
    assert ranking_metrics(s, rel) == pytest.approx(full)


def test_junk_is_removed_from_the_ranking():
    # ranking: a (junk), b (pos), c (neg), d (pos)
    s = np.array([[0.9, 0.8, 0.7, 0.6]])
    rel = np.array([[False, True, False, True]])
    junk = np.array([[True, False, False, False]])
    assert ranking_metrics(s, rel)["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    r = ranking_metrics(s, rel, ignore=junk, ks=(1,))
    assert r["mAP"] == pytest.approx((1 + 2 / 3) / 2)
    assert r["R@1"] == 1.0 and r["median_rank"] == 1.0
    # revisitop compute_ap: positives at 0-based ranks 0 and 2 of 2 → 1/2 + (1/2 + 2/3)/4
    assert ranking_metrics(s, rel, ignore=junk, ap="trapezoid")["mAP"] == pytest.approx(19 / 24)
    # an item both relevant and junk counts as junk
    assert ranking_metrics(s, rel | junk, ignore=junk)["mAP"] == pytest.approx(r["mAP"])


def _revisitop_map(ranks, gnd):
    """A line-by-line port of revisitop's compute_map (ranks: (n_db, n_q) sorted db indices)."""
    aps = []
    for i, g in enumerate(gnd):
        ok = np.array(g["ok"])
        if not len(ok):
            continue
        pos = np.arange(ranks.shape[0])[np.isin(ranks[:, i], ok)]
        junk = np.arange(ranks.shape[0])[np.isin(ranks[:, i], np.array(g["junk"]))]
        k = ij = 0
        for ip in range(len(pos)):
            while ij < len(junk) and pos[ip] > junk[ij]:
                k += 1
                ij += 1
            pos[ip] -= k
        ap = 0.0
        for j, rank in enumerate(pos):
            p0 = 1.0 if rank == 0 else j / rank
            p1 = (j + 1) / (rank + 1)
            ap += (p0 + p1) / len(ok) / 2
        aps.append(ap)
    return float(np.mean(aps))


@pytest.mark.parametrize("protocol", ["easy", "medium", "hard"])
def test_revisited_protocol_matches_official_code(protocol):
    rng = np.random.default_rng(1)
    n_db, n_q = 60, 8
    gnd = []
    for _ in range(n_q):
        perm = rng.permutation(n_db)
        gnd.append({"easy": perm[:5].tolist(), "hard": perm[5:9].tolist(), "junk": perm[9:14].tolist()})
    q, db = rng.normal(size=(n_q, 16)), rng.normal(size=(n_db, 16))
    pos, ign = revisited_ground_truth(gnd, protocol)
    got = instance_metrics(q, db, masks_from_lists(n_db, pos), masks_from_lists(n_db, ign), ap="trapezoid")
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    dn = db / np.linalg.norm(db, axis=1, keepdims=True)
    ranks = np.argsort(-(dn @ qn.T), axis=0)
    expect = _revisitop_map(ranks, [{"ok": p, "junk": j} for p, j in zip(pos, ign)])
    assert got["mAP"] == pytest.approx(expect, abs=1e-12)


def test_revisited_ground_truth_protocols():
    gnd = [{"easy": [0], "hard": [1], "junk": [2]}]
    assert revisited_ground_truth(gnd, "easy") == ([[0]], [[1, 2]])
    assert revisited_ground_truth(gnd, "medium") == ([[0, 1]], [[2]])
    assert revisited_ground_truth(gnd, "hard") == ([[1]], [[0, 2]])
    with pytest.raises(EvalError):
        revisited_ground_truth(gnd, "extreme")


def test_label_ground_truth_excludes_the_query_itself():
    rel, ign = label_ground_truth(["a", "b", "a"])
    assert rel.tolist() == [[False, False, True], [False, False, False], [True, False, False]]
    emb = np.array([[1.0, 0], [0, 1.0], [0.9, 0.1]])
    r = instance_metrics(emb, emb, rel, ign, ks=(1,))
    assert r["n_queries"] == 2 and r["R@1"] == 1.0 and r["mAP"] == 1.0


def test_classification_hand_computed():
    scores = np.array(
        [
            [0.9, 0.05, 0.05],  # true 0, right
            [0.2, 0.7, 0.1],  # true 0, predicted 1, true at rank 2
            [0.1, 0.3, 0.6],  # true 2, right
            [0.5, 0.3, 0.2],
        ]
    )  # true 1, predicted 0, rank 2
    y = np.array([0, 0, 2, 1])
    m = classification_metrics(scores, y, ks=(1, 2, 5), classnames=["cat", "dog", "car"])
    assert m["top1"] == 0.5 and m["top2"] == 1.0 and m["top5"] == 1.0
    assert m["per_class_accuracy"] == {"cat": 0.5, "dog": 0.0, "car": 1.0}
    assert m["mean_per_class_recall"] == pytest.approx(0.5)
    assert m["confusion_matrix"].tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 1]]
    assert m["n"] == 4


def test_classification_ties_and_absent_classes():
    m = classification_metrics(np.zeros((2, 3)), np.array([0, 2]), ks=(1, 3))
    assert m["top1"] == 0.0 and m["top3"] == 1.0
    assert m["confusion_matrix"].tolist() == [[0, 1, 0], [0, 0, 0], [1, 0, 0]]  # never predicts the true class
    assert set(m["per_class_accuracy"]) == {"0", "2"}  # class 1 has no samples: left out


@pytest.mark.parametrize("seed", range(3))
def test_classification_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    s, y = rng.normal(size=(200, 7)), rng.integers(0, 7, 200)
    m = classification_metrics(s, y)
    assert m["top1"] == pytest.approx(top_k_accuracy_score(y, s, k=1, labels=range(7)))
    assert m["top5"] == pytest.approx(top_k_accuracy_score(y, s, k=5, labels=range(7)))
    assert m["mean_per_class_recall"] == pytest.approx(balanced_accuracy_score(y, s.argmax(1)))
    assert (m["confusion_matrix"] == confusion_matrix(y, s.argmax(1), labels=range(7))).all()


def test_classification_validates():
    with pytest.raises(EvalError):
        classification_metrics(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(EvalError):
        classification_metrics(np.zeros((0, 3)), np.array([], int))
