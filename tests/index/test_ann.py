"""ANN vs exact: with the tuned parameters, recall@10 ≥ 0.95 on 100k random unit vectors."""

from __future__ import annotations

import numpy as np

from cliplab.index.vectors import ANN_THRESHOLD, VectorIndex, exact_knn, recall_at_k


def unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_ivf_recall_on_100k_random_vectors():
    # uniform random vectors are the hardest case for IVF (no clusters); real embeddings are easier
    rng = np.random.default_rng(7)
    n, d = 100_000, 64
    data = unit(rng, n, d)
    ids = np.arange(n, dtype=np.int64) * 3 + 11  # catalog ids are not positions
    index = VectorIndex.build(ids, data)
    assert n >= ANN_THRESHOLD and index.kind == "ivf"
    queries = unit(rng, 300, d)  # fresh queries, not members
    truth = ids[exact_knn(queries, data, 10)[1]]
    found = np.concatenate([index.search(q, 10)[1] for q in queries])  # one query at a time, like users
    assert recall_at_k(found, truth) >= 0.95

    # deltas: removed ids never come back, re-added ones are found
    gone = ids[:5000]
    index.apply(np.zeros(0, np.int64), np.zeros((0, d), np.float32), gone)
    assert index.ntotal == n - 5000
    assert not np.isin(index.search(data[:50], 10)[1], gone).any()
    index.apply(ids[:10], data[:10], np.zeros(0, np.int64))
    assert (index.search(data[:10], 1)[1][:, 0] == ids[:10]).all()
    # a filter restricts results to the allowed ids
    allowed = ids[60000:60100]
    assert np.isin(index.search(queries[:5], 10, allowed)[1], allowed).all()


def test_flat_below_threshold_is_exact(tmp_path):
    rng = np.random.default_rng(3)
    data = unit(rng, 2000, 32)
    ids = np.arange(2000, dtype=np.int64) + 100
    index = VectorIndex.build(ids, data)
    assert index.kind == "flat"
    q = unit(rng, 20, 32)
    assert recall_at_k(index.search(q, 10)[1], ids[exact_knn(q, data, 10)[1]]) == 1.0
    index.save(tmp_path / "a.faiss")
    again = VectorIndex.load(tmp_path / "a.faiss")
    assert again.ntotal == 2000 and (again.search(q, 10)[1] == index.search(q, 10)[1]).all()
