"""Near-duplicate groups: pairs at least `threshold` similar (and confirmed, when a `confirm` callback
is given), joined into connected components."""

from __future__ import annotations

from typing import Callable

import numpy as np

EXACT_FILTER_MAX = 50_000  # up to this many vectors: exact (flat range search); above: ANN neighbours
CHUNK = 2048


def duplicate_groups(
    ids: np.ndarray,
    vecs: np.ndarray,
    threshold: float,
    ann: Callable | None = None,
    filtered: bool = False,
    max_neighbours: int = 32,
    confirm: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> list[tuple[list[int], float, float]]:
    """[(member ids, weakest link, strongest link)] of every group of two or more (A~B and B~C group
    A, B, C). `ann` (a callable giving the collection's FAISS index) is used for large sets: each
    vector's `max_neighbours` nearest, restricted to `ids` when `filtered`; else an exact search.
    `confirm(a, b)` (arrays of ids → bool per pair) sees each candidate pair once, before the groups
    are joined: only pairs it keeps link images."""
    import faiss
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(ids)
    rows, cols, vals = [], [], []
    if ann is None:
        flat = faiss.IndexFlatIP(vecs.shape[1])
        flat.add(vecs)
        for s in range(0, n, CHUNK):
            lims, d, j = flat.range_search(vecs[s : s + CHUNK], float(threshold) - 1e-6)
            rows.append(np.repeat(np.arange(s, min(s + CHUNK, n)), np.diff(lims).astype(np.int64)))
            cols.append(j)
            vals.append(d)
    else:
        pos = {int(i): p for p, i in enumerate(ids)}
        index = ann()
        allowed = ids if filtered else None
        for s in range(0, n, CHUNK):
            d, j = index.search(vecs[s : s + CHUNK], max_neighbours + 1, allowed)
            keep = (j >= 0) & (d >= threshold)
            rows.append(np.repeat(np.arange(s, min(s + CHUNK, n))[:, None], j.shape[1], 1)[keep])
            cols.append(np.array([pos.get(int(x), -1) for x in j[keep]], dtype=np.int64))
            vals.append(d[keep])
    r, c, v = (np.concatenate(x) for x in (rows, cols, vals))
    keep = (c >= 0) & (r != c)
    r, c, v = r[keep], c[keep], v[keep]
    if confirm is not None and len(r):
        pairs, first = np.unique(np.stack([np.minimum(r, c), np.maximum(r, c)], 1), axis=0, return_index=True)
        ok = np.asarray(confirm(ids[pairs[:, 0]], ids[pairs[:, 1]]), bool)
        r, c, v = pairs[ok, 0], pairs[ok, 1], v[first][ok]
    n_groups, label = connected_components(coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n)), directed=False)
    out = []
    for g in np.flatnonzero(np.bincount(label, minlength=n_groups) >= 2):
        edge = label[r] == g
        out.append(
            (
                [int(ids[m]) for m in np.flatnonzero(label == g)],
                round(float(v[edge].min()), 6),
                round(float(v[edge].max()), 6),
            )
        )
    return out
