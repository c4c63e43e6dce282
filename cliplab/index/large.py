"""An ANN index built from embedding shards (clip-retrieval's layout), never holding all vectors at once.

Exact (flat) below `ANN_THRESHOLD` vectors; above, IVF with fp16 vectors when they fit the memory
budget, else IVF-PQ (d/8 bytes a vector) whose candidates are re-scored exactly from the shard files
(memory-mapped). The coarse quantizer (and PQ) is trained on a uniform sample, then shards are added
one by one. `nprobe` is the smallest that reaches the recall@10 target against exact search (streamed
over the shards) on held-out queries — vectors outside the training sample and midpoints of two,
as `vectors.py` tunes collections. Ids are global row numbers over (folder, shard, row), so a hit
leads back to its metadata row; failed rows (zero vectors) are left out.

FAISS directly, not autofaiss: autofaiss picks search parameters for a latency budget, not for a
recall target against exact search; its numpy<2 pin breaks pyarrow (Ray Data, parquet); and it does
not know our status column or model identity. What it would add (index choice by memory, training
on a sample, shard-wise adding) is the few lines below.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from cliplab.data.atomic import atomic_path, atomic_write_json
from cliplab.data.shards import EmbeddingShard, list_shards, read_manifest
from cliplab.errors import CliplabError, DataError
from cliplab.index import captions
from cliplab.index.vectors import _NPROBES, ANN_THRESHOLD, TARGET_RECALL, ideal_nlist, recall_at_k

INDEX_FILE = "index.faiss"
INFO_FILE = "index.json"
TUNE_K = 10
TUNE_QUERIES = 256
RERANKS = (10, 30, 100)  # IVF-PQ: re-score RERANK × k candidates exactly (the smallest that reaches the target)
TRAIN_PER_LIST = 48  # k-means sample: 48 vectors per inverted list (FAISS warns below 39)
DEFAULT_BUDGET = 0.25  # fraction of RAM the fp16 vectors may take before PQ is used


class ShardTable:
    """Global id ↔ (shard, row) over the shards of several embedding folders."""

    def __init__(self, shards: list[EmbeddingShard], rows: list[int]):
        self.shards = shards
        self.rows = np.asarray(rows, np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.rows)]).astype(np.int64)
        self._mmaps: dict[int, np.ndarray] = {}

    def locate(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(shard position, row in shard) for global ids."""
        ids = np.asarray(ids, np.int64)
        pos = np.searchsorted(self.offsets, ids, side="right") - 1
        return pos, ids - self.offsets[pos]

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """float32 vectors for global ids, read from the memory-mapped shard files."""
        ids = np.asarray(ids, np.int64)
        out = np.zeros((len(ids), self.dim), np.float32)
        pos, row = self.locate(ids)
        for p in np.unique(pos):
            sel = pos == p
            if p not in self._mmaps:
                self._mmaps[p] = self.shards[p].vectors(mmap=True)
            r = row[sel]
            order = np.argsort(r)
            got = np.empty((len(r), self.dim), np.float32)
            got[order] = self._mmaps[p][r[order]]
            out[sel] = got
        return out

    @functools.cached_property
    def dim(self) -> int:
        return int(self.shards[0].vectors().shape[1])

    def as_json(self) -> list:
        return [[str(s.dir), s.id, int(n)] for s, n in zip(self.shards, self.rows)]

    @classmethod
    def from_json(cls, rows: list) -> ShardTable:
        return cls([EmbeddingShard(Path(d), int(i)) for d, i, _ in rows], [int(n) for _, _, n in rows])


def read_sources(dirs: Sequence[str | Path]) -> tuple[dict, ShardTable]:
    """(model facts, shard table) of embedding folders; they must agree on model and dimension."""
    if not dirs:
        raise CliplabError("give at least one embeddings folder (--from-embeddings DIR)")
    facts, shards, rows = None, [], []
    for d in dirs:
        found = list_shards(d)
        man = read_manifest(d) or {}
        mine = {"model": man.get("model"), "model_info": man.get("model_info"), "dim": int(found[0].vectors().shape[1])}
        if facts is None:
            facts = mine
        elif mine != facts:
            raise DataError(
                f"{d}: made with {mine['model']} ({mine['dim']}-d), but {dirs[0]} with "
                f"{facts['model']} ({facts['dim']}-d): one index needs one model"
            )
        for s in found:
            v = s.vectors()
            if v.ndim != 2 or v.shape[1] != facts["dim"]:
                raise DataError(f"{s.paths['img']}: shape {v.shape}, expected (n, {facts['dim']})")
            shards.append(s)
            rows.append(v.shape[0])
    return facts, ShardTable(shards, rows)


def _ok_ids(table: ShardTable) -> list[np.ndarray]:
    """Per shard, the global ids of rows with a real vector."""
    return [table.offsets[p] + np.flatnonzero(s.ok_mask()) for p, s in enumerate(table.shards)]


def choose_kind(n: int, dim: int, memory_bytes: int | None = None) -> str:
    if n < ANN_THRESHOLD:
        return "flat"
    budget = memory_bytes if memory_bytes is not None else DEFAULT_BUDGET * _ram_bytes()
    return "ivf" if n * dim * 2 <= budget else "ivfpq"


def _ram_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def pq_bytes(dim: int) -> int:
    """Sub-quantizers: d/4 (one byte per 4 dimensions: 8× smaller than fp16 vectors; d/8 measured
    too coarse for recall@10 ≥ 0.95 even with re-scoring), the largest divisor of d not above it."""
    m = max(1, dim // 4)
    while dim % m:
        m -= 1
    return m


def coarse_lists(n: int) -> int:
    """About √n inverted lists (a power of two), a quarter of what collections use: k-means costs
    ∝ nlist² and adding ∝ n·nlist, which dominate a build from millions of vectors, while a query
    scans only nprobe lists of ~√n vectors (measured in benchmarks/ann_1m.py)."""
    return max(16, ideal_nlist(n) // 4)


def new_index(kind: str, dim: int, n: int, seed: int = 0):
    import faiss

    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    nlist = coarse_lists(n)
    quantizer = faiss.IndexFlatIP(dim)
    if kind == "ivf":
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, nlist, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
        )
    elif kind == "ivfpq":
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_bytes(dim), 8, faiss.METRIC_INNER_PRODUCT)
        index.do_polysemous_training = False  # Hamming pre-filters we do not use
        index.pq.cp.niter = 10  # sub-quantizer k-means: d/4 of them, cheap enough at 10
        index.pq.cp.max_points_per_centroid = 64  # …on ≤ 16k points, not the coarse sample (measured: minutes)
    else:
        raise CliplabError(f"unknown index kind {kind!r}: flat, ivf or ivfpq")
    index.cp.niter = 10
    index.cp.seed = seed
    return index


def exact_topk(table: ShardTable, ok: list[np.ndarray], queries: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k global ids, one shard in memory at a time (running merge of per-shard top-k)."""
    import faiss

    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_i = np.zeros((len(queries), 0), np.int64)
    for p, ids in enumerate(ok):
        if not len(ids):
            continue
        v = np.asarray(table.shards[p].vectors(), np.float32)[ids - table.offsets[p]]
        s, j = faiss.knn(queries, v, min(k, len(ids)), metric=faiss.METRIC_INNER_PRODUCT)
        best_s = np.concatenate([best_s, s], 1)
        best_i = np.concatenate([best_i, ids[j]], 1)
        keep = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    return best_i


def build_from_embeddings(
    dirs: Sequence[str | Path],
    index_dir: str | Path,
    kind: str | None = None,
    target_recall: float = TARGET_RECALL,
    memory_bytes: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Build `index_dir/index.faiss` + `index.json` from embedding folders; returns the info dict."""
    import faiss

    from cliplab.progress import progress_bar

    t0 = time.perf_counter()
    facts, table = read_sources(dirs)
    ok = _ok_ids(table)
    n, dim = int(sum(len(x) for x in ok)), facts["dim"]
    if n == 0:
        raise DataError("the embeddings hold no successfully embedded image")
    kind = kind or choose_kind(n, dim, memory_bytes)
    index = new_index(kind, dim, n, seed)
    rng = np.random.default_rng(seed)
    all_ok = np.concatenate(ok)
    train_ids = np.array([], np.int64)
    if kind != "flat":
        ivf = faiss.extract_index_ivf(index)
        want = max(TRAIN_PER_LIST * ivf.nlist, 256 * 40 if kind == "ivfpq" else 0)
        train_ids = np.sort(rng.choice(all_ok, min(n, want), replace=False))
        index.train(table.vectors(train_ids))
    with progress_bar(len(table.shards), "adding shards", enabled=progress) as advance:
        for p, ids in enumerate(ok):
            if len(ids):
                v = np.asarray(table.shards[p].vectors(), np.float32)[ids - table.offsets[p]]
                index.add_with_ids(np.ascontiguousarray(v), ids)
            advance(1)
    info = {
        "format": "cliplab-shards-index",
        "version": 1,
        "kind": kind,
        "count": n,
        "dim": dim,
        "model": facts["model"],
        "model_info": facts["model_info"],
        "metric": "inner product (cosine)",
        "shards": table.as_json(),
        "rerank": RERANKS[0] if kind == "ivfpq" else 0,
    }
    out = Path(index_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    if kind != "flat":
        ivf = faiss.extract_index_ivf(index)
        held = np.setdiff1d(all_ok, train_ids) if len(all_ok) > len(train_ids) + TUNE_QUERIES else all_ok
        nprobe, recall = tune(index, info, table, ok, held, target_recall, rng)
        info.update(
            nlist=int(ivf.nlist),
            nprobe=nprobe,
            tuned_recall_at_10=round(recall, 4),
            target_recall_at_10=target_recall,
            pq_bytes=pq_bytes(dim) if kind == "ivfpq" else None,
        )
        ivf.nprobe = nprobe
    info["captions"] = captions.build(out, table, ok)  # the keyword index of the captions (captions.py)
    info["build_seconds"] = round(time.perf_counter() - t0, 2)
    with atomic_path(out / INDEX_FILE) as tmp:
        faiss.write_index(index, str(tmp))
    info["index_bytes"] = (out / INDEX_FILE).stat().st_size
    atomic_write_json(out / INFO_FILE, info)
    return info


def tune(
    index,
    info: dict,
    table: ShardTable,
    ok: list[np.ndarray],
    held: np.ndarray,
    target: float,
    rng: np.random.Generator,
) -> tuple[int, float]:
    """Smallest nprobe with recall@10 ≥ target on held-out members (self excluded) and midpoints."""
    import faiss

    m = min(TUNE_QUERIES // 2, len(held))
    pick = rng.choice(held, m, replace=False)
    members = table.vectors(pick)
    mids = table.vectors(rng.choice(held, m))
    mids = members + mids
    mids /= np.maximum(np.linalg.norm(mids, axis=1, keepdims=True), 1e-12)
    truth_m = _drop_self(exact_topk(table, ok, members, TUNE_K + 1), pick, TUNE_K)
    truth_x = exact_topk(table, ok, mids, TUNE_K)
    search = functools.partial(raw_search, index, info, table)  # sees the `rerank` set below
    ivf = faiss.extract_index_ivf(index)
    recall, nprobe = 0.0, 1
    for rerank in RERANKS if info.get("rerank") else (0,):
        info["rerank"] = rerank
        for nprobe in [p for p in _NPROBES if p < ivf.nlist] + [ivf.nlist]:
            found_m = _drop_self(search(members, TUNE_K + 1, nprobe)[1], pick, TUNE_K)
            found_x = search(mids, TUNE_K, nprobe)[1]
            recall = min(recall_at_k(found_m, truth_m), recall_at_k(found_x, truth_x))
            if recall >= target:
                return int(nprobe), float(recall)
    return int(nprobe), float(recall)


def _drop_self(found: np.ndarray, me: np.ndarray, k: int) -> np.ndarray:
    out = np.empty((len(found), k), np.int64)
    for i, (row, q) in enumerate(zip(found, me)):
        out[i] = [x for x in row if x != q][:k] if q in row else row[:k]
    return out


def raw_search(
    index, info: dict, table: ShardTable, queries: np.ndarray, k: int, nprobe: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, global ids), each (nq, k). IVF: nprobe scaled up for k > 10 (it was tuned for 10);
    IVF-PQ: RERANK × k candidates re-scored exactly from the shard files."""
    import faiss

    q = np.ascontiguousarray(np.atleast_2d(queries), np.float32)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None:
        return index.search(q, k)
    base = nprobe or int(info.get("nprobe") or ivf.nprobe)
    params = faiss.SearchParametersIVF(nprobe=int(min(ivf.nlist, base * max(1, -(-k // TUNE_K)))))
    rerank = int(info.get("rerank") or 0)
    if not rerank:
        return index.search(q, k, params=params)
    _, cand = index.search(q, k * rerank, params=params)
    scores = np.full((len(q), k), -np.inf, np.float32)
    ids = np.full((len(q), k), -1, np.int64)
    for r, (qv, c) in enumerate(zip(q, cand)):
        c = c[c >= 0]
        if not len(c):
            continue
        exact = table.vectors(c) @ qv
        top = np.argsort(-exact, kind="stable")[:k]
        scores[r, : len(top)], ids[r, : len(top)] = exact[top], c[top]
    return scores, ids
