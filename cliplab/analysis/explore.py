"""A collection as a map: one 2-D point per photo, k-means clusters named by zero-shot, and what is
in the folder — computed once per model and cached with the index.

- Map: UMAP (cosine, seed 0) when `umap-learn` imports and there are at least `UMAP_MIN` photos, else
  PCA; scaled so the map spans [-1, 1] on its longer side. Video frames are not points: a video is
  one point (its file vector).
- Clusters: k-means on the unit vectors' first 32 principal components (6× faster than on 768-d
  vectors, for the same silhouette); k is the one with the best cosine silhouette (measured on the
  full vectors) over k = 2 … min(24, ⌊√(n/2)⌋), each tried on a random sample of at most 2,000
  photos (MiniBatchKMeans for the final fit above 20,000 photos). Names: `naming.py`.
- Cache: `INDEX_DIR/map/<method>.npz` + `.json`, keyed by the catalog's generation. When the
  collection changes, photos added or re-embedded since are placed at the similarity-weighted mean
  of their 10 nearest mapped photos and join the cluster whose centre is nearest; removed ones are
  dropped. Once the photos added, changed and removed since the last full computation pass 5 % of
  the photos it mapped, the map is computed again (`serve` does that in the background and keeps
  serving the old map, marked stale).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from cliplab.errors import CliplabError

METHODS = ("auto", "umap", "pca")
UMAP_MIN = 30  # fewer photos: PCA (UMAP's neighbour graph means little on a handful of points)
K_MAX = 24
SILHOUETTE_SAMPLE = 2000
KMEANS_DIMS = 32  # principal components k-means runs on
MINIBATCH_ABOVE = 20_000
NEIGHBOURS = 10  # mapped neighbours that place a new photo
RECOMPUTE_SHARE = 0.05  # changes since the last full computation, as a share of the photos it mapped
SEED = 0
VERSION = 1  # of the cached files' layout

Progress = Callable[[float, str], None]


@dataclass
class ExploreMap:
    method: str  # "umap" | "pca"
    gen: int  # the catalog generation this map reflects
    ids: np.ndarray  # int64, ascending
    xy: np.ndarray  # float32 (n, 2)
    cluster: np.ndarray  # int32 (n,)
    closeness: np.ndarray  # float32 (n,): cosine to its cluster's centre (representatives, member order)
    centers: np.ndarray  # float32 (k, dim), unit
    names: list  # per cluster: [(name, score)] × ≤ 3
    rule: str
    base_count: int  # photos of the last full computation
    drift: int = 0  # photos added, changed or removed since then
    stale: bool = False  # an older map served while a new one is computed
    info: dict = field(default_factory=dict)  # silhouette per k, timings

    @property
    def k(self) -> int:
        return len(self.centers)

    def bounds(self) -> list[float]:
        if not len(self.xy):
            return [0.0, 0.0, 0.0, 0.0]
        lo, hi = self.xy.min(axis=0), self.xy.max(axis=0)
        return [round(float(v), 4) for v in (lo[0], lo[1], hi[0], hi[1])]


# --- computing --------------------------------------------------------------------------------


def resolve_method(method: str, n: int) -> str:
    from cliplab.analysis.plots import umap_available

    if method not in METHODS:
        raise CliplabError(f"unknown map method {method!r}: use {', '.join(METHODS)}")
    if method == "umap" and not umap_available():
        raise CliplabError(
            "--method umap needs umap-learn (pip install 'cliplab[explore]'); --method pca works without"
        )
    if method == "auto":
        return "umap" if n >= UMAP_MIN and umap_available() else "pca"
    return method


def project(vecs: np.ndarray, method: str, seed: int = SEED) -> np.ndarray:
    """(n, d) unit vectors → (n, 2) float32, centred, the longer side spanning [-1, 1]."""
    n = len(vecs)
    if n < 2:
        return np.zeros((n, 2), np.float32)
    if method == "umap":
        import umap  # the caller checked it imports

        z = umap.UMAP(
            n_components=2, metric="cosine", random_state=seed, n_neighbors=max(2, min(15, n - 1)), n_jobs=1
        )  # a seed makes UMAP single-threaded anyway: said here, not warned
        xy = z.fit_transform(vecs)
    else:
        from sklearn.decomposition import PCA

        # float32 in, float32 out: a million 512-d vectors would be 2 GB more as float64
        xy = PCA(n_components=min(2, vecs.shape[1]), random_state=seed).fit_transform(vecs)
        xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
    xy = np.asarray(xy, np.float32)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    return ((xy - (lo + hi) / 2) / max(float((hi - lo).max()) / 2, 1e-9)).astype(np.float32)


def k_range(n: int) -> range:
    return range(2, min(K_MAX, max(2, math.isqrt(n // 2))) + 1) if n >= 3 else range(1, 2)


def reduce(vecs: np.ndarray, seed: int = SEED) -> np.ndarray:
    """The vectors' first KMEANS_DIMS principal components (what k-means runs on)."""
    from sklearn.decomposition import PCA

    d = min(KMEANS_DIMS, *vecs.shape)
    if d >= vecs.shape[1] or len(vecs) < 3:
        return vecs
    return PCA(n_components=d, random_state=seed).fit_transform(vecs).astype(np.float32)


def choose_k(vecs: np.ndarray, space: np.ndarray | None = None, seed: int = SEED) -> tuple[int, dict[int, float]]:
    """(k, {k: silhouette}) — the k with the best cosine silhouette on a sample (module docstring);
    k-means runs on `space` (the reduced vectors; None: the vectors themselves)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from threadpoolctl import threadpool_limits

    space = vecs if space is None else space
    ks = k_range(len(vecs))
    if len(ks) == 1 and ks[0] == 1:
        return 1, {}
    rng = np.random.default_rng(seed)
    pick = (
        np.arange(len(vecs))
        if len(vecs) <= SILHOUETTE_SAMPLE
        else rng.choice(len(vecs), SILHOUETTE_SAMPLE, replace=False)
    )
    sample = _unit(vecs[pick])
    dist = np.clip(1.0 - sample @ sample.T, 0.0, 2.0)  # cosine distances, once for every k
    np.fill_diagonal(dist, 0.0)
    scores: dict[int, float] = {}
    # one thread: on a 2,000-point sample OpenMP's start-up costs more than it saves (7× slower on a busy 2-core box)
    with threadpool_limits(1):
        for k in ks:
            if k >= len(pick):
                break
            labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(space[pick])
            if len(set(labels.tolist())) > 1:
                scores[k] = round(float(silhouette_score(dist, labels, metric="precomputed")), 4)
    if not scores:
        return 1, {}
    return max(scores, key=lambda k: (scores[k], -k)), scores


def cluster(
    vecs: np.ndarray, k: int, space: np.ndarray | None = None, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray]:
    """(labels int32, unit centres of the vectors) of k-means with `k` clusters on `space` (None: the vectors)."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    space = vecs if space is None else space
    if k <= 1 or len(vecs) < 2:
        labels = np.zeros(len(vecs), np.int32)
    elif len(vecs) > MINIBATCH_ABOVE:
        labels = MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=4096, random_state=seed).fit_predict(space)
    else:
        labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(space)
    labels = np.asarray(labels, np.int32)
    centers = np.zeros((int(labels.max(initial=0)) + 1, vecs.shape[1]), np.float32)
    for c in np.unique(labels):  # a cluster mini-batch k-means left empty keeps a zero centre
        centers[c] = vecs[labels == c].mean(axis=0)
    return labels, _unit(centers)


def compute(
    ids: np.ndarray,
    vecs: np.ndarray,
    method: str,
    encoder=None,
    words=None,
    gen: int = 0,
    progress: Progress | None = None,
) -> ExploreMap:
    """The map of these vectors: points, clusters, names (`encoder`'s text tower; None: unnamed)."""
    from cliplab.analysis.naming import top_names

    say = progress or (lambda f, s: None)
    t0 = time.perf_counter()
    vecs = _unit(np.asarray(vecs, np.float32))
    method = resolve_method(method, len(vecs))
    say(0.05, f"projecting {len(vecs)} photos ({method})")
    xy = project(vecs, method)
    t1 = time.perf_counter()
    say(0.6, "choosing k (silhouette)")
    space = reduce(vecs)
    k, scores = choose_k(vecs, space)
    say(0.75, f"k-means, k={k}")
    labels, centers = cluster(vecs, k, space)
    t2 = time.perf_counter()
    say(0.9, "naming the clusters")
    names = top_names(centers, encoder, 3, words) if encoder is not None else [[] for _ in centers]
    closeness = np.einsum("ij,ij->i", vecs, centers[labels]) if len(vecs) else np.zeros(0, np.float32)
    say(1.0, "done")
    info = {"silhouette": scores, "project_s": round(t1 - t0, 3), "cluster_s": round(t2 - t1, 3)}
    return ExploreMap(
        method, gen, np.asarray(ids, np.int64), xy, labels, closeness.astype(np.float32),
        centers.astype(np.float32), names, rule_text(len(vecs), k, scores), len(ids), 0, False, info,
    )  # fmt: skip


def rule_text(n: int, k: int, scores: dict[int, float]) -> str:
    ks = k_range(n)
    if not scores:
        return f"one group: {n} photo(s) are too few to split (k-means needs 3 or more)"
    return (
        f"k-means on the unit image vectors (their first {KMEANS_DIMS} principal components); k = {k}, the best cosine silhouette ({scores[k]:.3f}) over "
        f"k = {ks.start}…{ks.stop - 1} (the most is min({K_MAX}, √(n/2)) for n = {n} photos), each k tried "
        f"on a random sample of at most {SILHOUETTE_SAMPLE} photos"
    )


def place(m: ExploreMap, base_vecs: np.ndarray, new_ids: np.ndarray, new_vecs: np.ndarray) -> ExploreMap:
    """`m` (whose points have `base_vecs`) with `new_ids` placed: at the similarity-weighted mean of
    their nearest mapped photos, in the cluster whose centre is nearest."""
    if not len(new_ids):
        return m
    new_vecs = _unit(np.asarray(new_vecs, np.float32))
    xy = np.zeros((len(new_ids), 2), np.float32)
    if len(m.ids):
        base = _unit(np.asarray(base_vecs, np.float32))
        nn = min(NEIGHBOURS, len(base))
        for s in range(0, len(new_vecs), 1024):  # 1024 × n similarities at a time
            sims = new_vecs[s : s + 1024] @ base.T
            top = np.argpartition(-sims, nn - 1, axis=1)[:, :nn]
            w = np.maximum(np.take_along_axis(sims, top, axis=1), 0) + 1e-6
            xy[s : s + 1024] = (w[..., None] * m.xy[top]).sum(axis=1) / w.sum(axis=1, keepdims=True)
    to_c = new_vecs @ m.centers.T if m.k else np.zeros((len(new_ids), 1), np.float32)
    labels = to_c.argmax(axis=1).astype(np.int32)
    ids = np.concatenate([m.ids, new_ids])
    order = np.argsort(ids, kind="stable")
    return ExploreMap(
        m.method, m.gen, ids[order], np.concatenate([m.xy, xy])[order],
        np.concatenate([m.cluster, labels])[order],
        np.concatenate([m.closeness, to_c.max(axis=1).astype(np.float32)])[order],
        m.centers, m.names, m.rule, m.base_count, m.drift, m.stale, m.info,
    )  # fmt: skip


def keep(m: ExploreMap, ids: np.ndarray, stale: bool | None = None) -> ExploreMap:
    """`m` with only the points whose ids are in `ids`."""
    mask = np.isin(m.ids, ids)
    return ExploreMap(
        m.method, m.gen, m.ids[mask], m.xy[mask], m.cluster[mask], m.closeness[mask], m.centers, m.names,
        m.rule, m.base_count, m.drift, m.stale if stale is None else stale, m.info,
    )  # fmt: skip


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


# --- a collection's map, cached with its index -------------------------------------------------


def map_dir(col) -> Path:
    return Path(col.index_dir) / "map"


def file_vectors(col, ids=None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of the collection's files (below its scope); a video counts once, not per frame."""
    if ids is not None:
        return col.catalog.vectors(ids=ids)
    got, vecs = col.catalog.vectors(under=col.scope)
    from cliplab.index.migrate import FRAME_ID_BASE

    mask = got < FRAME_ID_BASE
    return got[mask], vecs[mask]


def load(col, method: str) -> ExploreMap | None:
    """The map on disk for `method` ("umap" | "pca"), as it was saved; None when none or unreadable."""
    d = map_dir(col)
    try:
        meta = json.loads((d / f"{method}.json").read_text(encoding="utf-8"))
        with np.load(d / f"{method}.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if meta.get("version") != VERSION or int(arrays["gen"]) != meta["gen"] or meta.get("scope") != col.scope:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, torn or from another layout: computed again
    names = [[(n, s) for n, s in row] for row in meta["names"]]
    return ExploreMap(
        meta["method"], meta["gen"], arrays["ids"], arrays["xy"], arrays["cluster"], arrays["closeness"],
        arrays["centers"], names, meta["rule"], meta["base_count"], meta.get("drift", 0), False, meta.get("info", {}),
    )  # fmt: skip


def save(col, m: ExploreMap) -> None:
    """npz then json, each atomically (`load` checks that their generations agree). A read-only
    index only loses the cache."""
    from cliplab.data.atomic import atomic_path, atomic_write_json

    d = map_dir(col)
    try:
        with atomic_path(d / f"{m.method}.npz", fsync=False) as tmp, open(tmp, "wb") as f:
            np.savez(
                f, ids=m.ids, xy=m.xy, cluster=m.cluster, closeness=m.closeness, centers=m.centers, gen=np.int64(m.gen)
            )
        meta = {"version": VERSION, "method": m.method, "gen": m.gen, "scope": col.scope, "model": col.model}
        meta |= {"rule": m.rule, "names": m.names, "base_count": m.base_count, "drift": m.drift, "info": m.info}
        atomic_write_json(d / f"{m.method}.json", meta)
    except OSError:
        pass


@dataclass
class Change:
    added: np.ndarray  # ids new since the map (or re-embedded: placed again)
    removed: np.ndarray  # ids gone (and re-embedded ones, dropped before being placed again)
    current: np.ndarray  # every id the collection has now

    @property
    def count(self) -> int:
        return len(self.added) + len(self.removed)


def change_since(col, m: ExploreMap) -> Change:
    cur = np.sort(col.catalog.ids_matching(col.scope, None))
    changed = np.intersect1d(col.catalog.written_after(m.gen), m.ids)
    added = np.union1d(np.setdiff1d(cur, m.ids), np.intersect1d(changed, cur))
    removed = np.union1d(np.setdiff1d(m.ids, cur), changed)
    return Change(added, removed, cur)


def status(col, method: str) -> tuple[str, ExploreMap | None]:
    """("fresh" | "update" | "recompute" | "missing", the map on disk). update: a few photos changed
    (placed incrementally); recompute: past the 5 % rule (module docstring)."""
    m = load(col, method)
    if m is None:
        return "missing", None
    if m.gen == col.catalog.gen:
        return "fresh", m
    ch = change_since(col, m)
    if not ch.count:
        return "update", m  # the generation moved (metadata, another folder of the index): nothing to place
    if m.drift + ch.count > RECOMPUTE_SHARE * max(m.base_count, 1):
        return "recompute", m
    return "update", m


def update(col, m: ExploreMap) -> ExploreMap:
    """`m` brought up to the catalog's generation incrementally, and saved."""
    gen = col.catalog.gen
    ch = change_since(col, m)
    kept = keep(m, np.setdiff1d(m.ids, ch.removed))
    if len(ch.added):
        _, base_vecs = file_vectors(col, kept.ids)
        new_ids, new_vecs = file_vectors(col, ch.added)
        kept = place(kept, base_vecs, new_ids, new_vecs)
    kept.gen, kept.drift, kept.stale = gen, m.drift + ch.count, False
    save(col, kept)
    return kept


def stale_view(col, m: ExploreMap) -> ExploreMap:
    """An old map as it can be shown now: its points that still exist, marked stale."""
    return keep(m, col.catalog.ids_matching(col.scope, None), stale=True)


def build(col, method: str = "auto", encoder=None, words=None, progress: Progress | None = None) -> ExploreMap:
    """A full computation of `col`'s map (`encoder`: the text tower for names; None: the collection's
    model), saved with the index."""
    gen = col.catalog.gen
    ids, vecs = file_vectors(col)
    if not len(ids):
        raise CliplabError(f"nothing to map: the index of {col.folder} holds no images (run cliplab index first)")
    enc = encoder if encoder is not None else col.encoder()
    m = compute(ids, vecs, method, enc, words, gen, progress)
    save(col, m)
    return m


def get(col, method: str = "auto", encoder=None, words=None, progress: Progress | None = None) -> ExploreMap:
    """`col`'s map, up to date: the cached one, updated incrementally, or computed (the 5 % rule)."""
    want = resolve_method(method, col.catalog.count_vectors())
    state, m = status(col, want)
    if state == "fresh":
        return m
    if state == "update":
        return update(col, m)
    return build(col, want, encoder, words, progress)
