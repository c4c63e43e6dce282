"""Querying an index built from embedding shards (`cliplab index --from-embeddings`): the same kind of
methods as `Collection` — `search(text)`, `search_image` (the query image itself left out),
`search_vector`, `encoder()`, `count`, `describe()`, `status()` — and `lookup(id)` for a row's
metadata (path or tar key, caption, status) read from the shard files; `keyword_search(text)` for
the rows whose captions hold its words (`captions.py`).

    idx = ShardsIndex("runs/idx")
    idx.search("a red car", k=10)      # [ShardHit(rank, score, id, path, key, caption), …]
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from cliplab.errors import CliplabError, IndexMismatchError, IndexNotFoundError
from cliplab.index import captions
from cliplab.index.large import INDEX_FILE, INFO_FILE, ShardTable, _ok_ids, raw_search
from cliplab.models.core.base import Encoder, l2_normalize
from cliplab.models.specs import vector_identity

META_CACHE = 16  # shards whose metadata tables stay in memory (a query's hits share few shards)


def is_shards_index(path: str | Path) -> bool:
    p = Path(path).expanduser()
    return (p / INFO_FILE).is_file() and (p / INDEX_FILE).is_file()


@dataclass
class ShardHit:
    rank: int
    score: float
    id: int  # global row id (folder, shard, row)
    path: str  # image_path from the metadata: a file, URL or shard.tar#key
    key: str | None
    caption: str | None

    def as_dict(self) -> dict:
        return asdict(self)


class ShardsIndex:
    def __init__(
        self, index_dir: str | Path, encoder: Encoder | None = None, loader: Callable[[str], Encoder] | None = None
    ):
        import faiss

        self.index_dir = Path(index_dir).expanduser().resolve()
        if not is_shards_index(self.index_dir):
            raise IndexNotFoundError(
                f"no shards index in {self.index_dir} (expected {INFO_FILE} + {INDEX_FILE}; "
                "build one with: cliplab index --from-embeddings DIR --index IDX)"
            )
        self.info = json.loads((self.index_dir / INFO_FILE).read_text())
        self.index = faiss.read_index(str(self.index_dir / INDEX_FILE))
        self.table = ShardTable.from_json(self.info["shards"])
        self._encoder, self._loader = encoder, loader
        self._meta: OrderedDict = OrderedDict()
        self._meta_lock = threading.Lock()  # the cache is shared by server threads (search runs outside their lock)
        self._captions: int | None = None  # captions in the keyword index, once known
        self._captions_lock = threading.Lock()

    # --- facts ------------------------------------------------------------------------------------
    @property
    def model(self) -> str:
        return self.info.get("model") or "lite"

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.info["dim"])

    def describe(self) -> dict:
        keys = (
            "kind",
            "count",
            "dim",
            "model",
            "nlist",
            "nprobe",
            "tuned_recall_at_10",
            "rerank",
            "build_seconds",
            "index_bytes",
        )
        out = {
            "index_dir": str(self.index_dir),
            **{k: self.info[k] for k in keys if k in self.info},
            "sources": sorted({d for d, _, _ in self.info["shards"]}),
        }
        if self._encoder is not None:  # the runtime that searched in this process
            from cliplab.runtime import runtime_of

            out.update(runtime_of(self._encoder))
        return out

    def status(self) -> dict:
        """What `Collection.status` reports, where it applies (no folder, so nothing pending)."""
        from cliplab.index.listing import iso_time

        rows, size = int(self.table.offsets[-1]), sum(p.stat().st_size for p in self.index_dir.iterdir() if p.is_file())
        kind = self.info.get("kind")
        search = {"flat": "exact (flat)", "ivf": "approximate (IVF, tuned)", "ivfpq": "approximate (IVF-PQ, re-scored)"}
        return {
            "kind": "shards",
            "folder": None,
            "sources": self.describe()["sources"],
            "scope": None,
            "id": self.index_dir.name,
            "index_dir": str(self.index_dir),
            "model": self.model,
            "dim": self.dim,
            "indexed": self.count,
            "failed": rows - self.count,  # failed rows are zero vectors, left out of the index
            "failure_reasons": {},
            "failures": [],
            "size_bytes": size,
            "bytes_per_image": round(size / self.count) if self.count else None,
            "search": search.get(kind, str(kind)),
            "updated_at": iso_time((self.index_dir / INFO_FILE).stat().st_mtime),
        }

    def encoder(self) -> Encoder:
        """The model the vectors were made with (checked against the stored fingerprint)."""
        if self._encoder is None:
            if self._loader is not None:
                self._encoder = self._loader(self.model)
            else:
                from cliplab.runtime import load_encoder

                self._encoder = load_encoder(self.model)
        enc = self._encoder
        if enc.dim != self.dim:
            raise IndexMismatchError(
                f"model {enc.name!r} gives {enc.dim}-d vectors but the index holds "
                f"{self.dim}-d ones (made with {self.model!r})"
            )
        stored = self.info.get("model_info")
        stored = vector_identity(stored) if stored else stored
        now = vector_identity(enc.describe())
        if stored and stored != now:
            raise IndexMismatchError(
                f"model {enc.name!r} is not the one the embeddings were made with "
                f"(then: {json.dumps(stored)}; now: {json.dumps(now)})"
            )
        return enc

    # --- search -----------------------------------------------------------------------------------
    def search(self, text: str, k: int = 10, threshold: float | None = None) -> list[ShardHit]:
        if not str(text).strip():
            raise CliplabError("empty query: give some text (or search by --image)")
        return self.search_vector(self.encoder().encode_texts([str(text)])[0], k, threshold)

    def search_image(self, image: str | Path, k: int = 10, threshold: float | None = None) -> list[ShardHit]:
        """Image → the k most similar other images: rows of the query file itself are left out."""
        return self.search_vector(self.image_vector(image), k, threshold, exclude_files=[str(image)])

    def image_vector(self, image: str | Path) -> np.ndarray:
        from cliplab.data.images import load_image

        return self.encoder().encode_images([load_image(image)])[0]

    def search_vector(
        self, vector: np.ndarray, k: int = 10, threshold: float | None = None, exclude_files: Sequence[str] = ()
    ) -> list[ShardHit]:
        """The k best rows for `vector`; rows of the files in `exclude_files` (the query's own images,
        matched as the same file on disk or the same URL) are left out."""
        if k < 1:
            raise CliplabError("top-k must be at least 1")
        q = l2_normalize(np.asarray(vector, np.float32).reshape(1, -1))
        if q.shape[1] != self.dim:
            raise IndexMismatchError(f"query vector has {q.shape[1]} dims, the index {self.dim}")
        if not self.count:
            return []
        same = [_same_file(f) for f in exclude_files]
        want = min(k + len(same), self.count)
        while True:
            hits = self._rows(q, want, threshold)
            keep = [h for h in hits if not any(s(h.path) for s in same)]
            if len(keep) >= k or len(hits) < want or want >= self.count:
                return [replace(h, rank=r) for r, h in enumerate(keep[:k], 1)]
            want = min(want * 2, self.count)  # a query file is in the index more than once

    def _rows(self, q: np.ndarray, k: int, threshold: float | None) -> list[ShardHit]:
        scores, ids = self.raw_search(q, k)
        keep = [
            (float(s), int(i)) for s, i in zip(scores[0], ids[0]) if i >= 0 and (threshold is None or s >= threshold)
        ]
        meta = self.lookup_many([i for _, i in keep])
        return [
            ShardHit(r, round(s, 6), i, meta[i]["image_path"], meta[i].get("key"), meta[i].get("caption"))
            for r, (s, i) in enumerate(keep, 1)
        ]

    def keyword_search(self, text: str, k: int = 10) -> list[ShardHit]:
        """The k rows whose captions hold the words of `text` best (`score`: -BM25, higher is better).
        An index built before captions were indexed gets its caption index now, once, in place."""
        if k < 1:
            raise CliplabError("top-k must be at least 1")
        ids, scores = self.keyword_ids(text, k)
        return self.hits(ids.tolist(), scores.tolist())

    def hits(self, ids: Sequence[int], scores: Sequence[float], exclude_files: Sequence[str] = ()) -> list[ShardHit]:
        """`ShardHit`s of these global ids, ranked in their order, leaving out the rows of `exclude_files`."""
        meta = self.lookup_many([int(i) for i in ids])
        same = [_same_file(f) for f in exclude_files]
        keep = [(int(i), float(s)) for i, s in zip(ids, scores) if not any(f(meta[int(i)]["image_path"]) for f in same)]
        return [
            ShardHit(r, round(s, 6), i, meta[i]["image_path"], meta[i].get("key"), meta[i].get("caption"))
            for r, (i, s) in enumerate(keep, 1)
        ]

    def keyword_ids(self, text: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(global ids, -BM25 scores) of `keyword_search`, without reading metadata."""
        self.ensure_captions()
        return captions.search(self.index_dir, text, k)

    def ensure_captions(self) -> int:
        """Build the caption keyword index when this index has none yet; returns how many captions it holds."""
        with self._captions_lock:
            if self._captions is None:
                if not captions.exists(self.index_dir):
                    try:
                        captions.build(self.index_dir, self.table, _ok_ids(self.table))
                    except (OSError, sqlite3.Error) as e:
                        raise CliplabError(f"cannot write the caption index into {self.index_dir}: {e}") from None
                self._captions = captions.count(self.index_dir)
            return self._captions

    def raw_search(self, queries: np.ndarray, k: int, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, global ids), each (nq, k): see `large.raw_search`."""
        return raw_search(self.index, self.info, self.table, queries, k, nprobe)

    # --- metadata ---------------------------------------------------------------------------------
    def lookup(self, id: int) -> dict:
        """The metadata row of a global id: image_path, key, caption, status, error, shard, row, dir."""
        return self.lookup_many([id])[int(id)]

    def lookup_many(self, ids: list[int]) -> dict[int, dict]:
        if not ids:
            return {}
        arr = np.asarray(ids, np.int64)
        if arr.min() < 0 or arr.max() >= self.table.offsets[-1]:
            raise CliplabError(f"no such id in this index (0 … {int(self.table.offsets[-1]) - 1})")
        pos, row = self.table.locate(arr)
        out = {}
        for i, p, r in zip(arr.tolist(), pos.tolist(), row.tolist()):
            rec = {k: (None if _isna(v) else v) for k, v in self._shard_meta(p).iloc[r].to_dict().items()}
            shard = self.table.shards[p]
            out[i] = {**rec, "shard": shard.id, "row": r, "dir": str(shard.dir)}
        return out

    def _shard_meta(self, p: int):
        with self._meta_lock:
            if p in self._meta:
                self._meta.move_to_end(p)
                return self._meta[p]
            df = self.table.shards[p].metadata()
            self._meta[p] = df
            if len(self._meta) > META_CACHE:
                self._meta.popitem(last=False)
            return df

    def close(self) -> None:
        self._meta.clear()

    def __enter__(self) -> ShardsIndex:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _same_file(query: str | Path):
    """path → whether it names the query image (same file on disk, or the same URL)."""
    q = str(query)
    if q.startswith(("http://", "https://")):
        return lambda p: p == q
    try:
        st = os.stat(Path(q).expanduser())
    except OSError:
        return lambda p: False

    def same(p: str) -> bool:
        try:
            o = os.stat(p)
        except (OSError, ValueError):  # a tar member, a URL, a file since removed
            return False
        return (o.st_dev, o.st_ino) == (st.st_dev, st.st_ino)

    return same


def _isna(v) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(v))  # None, NaN, pd.NA
    except (TypeError, ValueError):
        return False
