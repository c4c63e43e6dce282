"""Run a parsed query on an index: a folder's `Collection` or an index built from embeddings.

Texts are encoded in one batch; an image that is indexed and unchanged reuses its stored vector;
`like:ID` reads the vector of an indexed image. The images a query names (files and like:IDs) are
left out of its results, as in image→image search.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from cliplab.errors import QueryError
from cliplab.search.expression import Term, check, combine
from cliplab.search.sort import check_sort


def _is_collection(index) -> bool:
    return hasattr(index, "catalog")


def query_vector(index, terms: Sequence[Term]) -> tuple[np.ndarray, list[int], list[str]]:
    """(unit query vector, catalog ids to leave out, image files to leave out) of `terms` on `index`."""
    check(terms)
    vectors: list[np.ndarray | None] = [None] * len(terms)
    exclude_ids: list[int] = []
    exclude_files: list[str] = []
    for i, t in enumerate(terms):
        if t.vector is not None:
            vectors[i] = np.asarray(t.vector, np.float32)
    texts = [i for i, t in enumerate(terms) if t.kind == "text" and vectors[i] is None]
    if texts:
        enc = index.encoder().encode_texts([terms[i].value for i in texts])
        for i, v in zip(texts, enc):
            vectors[i] = v
    for i, t in enumerate(terms):
        if t.kind == "like" and vectors[i] is not None:
            exclude_ids.append(int(t.value))
        elif vectors[i] is not None:
            continue
        elif t.kind == "like":
            if not _is_collection(index):
                raise QueryError(
                    f"like:{t.value}: an index built from embeddings has no image ids; give the image file"
                )
            ids, vecs = index.catalog.vectors(ids=[int(t.value)])
            if not len(ids):
                raise QueryError(f"like:{t.value}: no indexed image has this id")
            vectors[i] = vecs[0]
            exclude_ids.append(int(t.value))
        elif t.kind == "image":
            if _is_collection(index):
                fid, vec = index.image_vector(t.value)
                exclude_ids += [fid] if fid is not None else []
            else:
                vec = index.image_vector(t.value)
            vectors[i] = vec
            exclude_files.append(t.value)
    return combine(np.stack(vectors), [t.weight for t in terms]), exclude_ids, exclude_files


MODES = ("semantic", "keyword", "hybrid")
DEFAULT_MODE = "hybrid"  # benchmarks/hybrid_search.py: R@1 25.5 vs 14.0 (captions), equal without; file names first
RRF_K = 60  # Reciprocal Rank Fusion's constant (Cormack et al. 2009): 1 / (60 + rank) per list


def run(
    index,
    terms: Sequence[Term],
    k: int = 10,
    threshold: float | None = None,
    under: str | None = None,
    glob: str | None = None,
    filters=None,
    mode: str | None = None,
    sort: str = "relevance",
    info: dict | None = None,
) -> list:
    """The k best hits of `terms` on `index` (Collection: `Hit`s; embeddings index: `ShardHit`s)
    among the photos that pass `filters` (`cliplab.index.filters.make_filters`).

    mode: semantic (`score`: the cosine to the query vector), keyword (the files holding two or more
    of the query's words in their names, captions, EXIF or OCR text; every word first, then BM25:
    `index/keywords.py`; on an index built from embeddings, its rows' captions by the same rule:
    `index/captions.py`), or hybrid (the two rankings fused by Reciprocal Rank Fusion; ties go to
    the better single rank, then to the keyword rank; a query that looks like a file name, such as
    IMG_4711, puts the files whose names hold it first). For keyword and hybrid,
    `score` is the fused score Σ 1 / (60 + rank) over the lists a photo is in.

    None: hybrid on a folder's index; semantic on one built from embeddings (hybrid was measured on
    folders only; keyword and hybrid run there when asked for). A query with no word that the
    keyword index knows (an image, a like:ID, words found nowhere) gives the semantic
    hits with their cosines.

    sort: relevance, or date / -date among the relevant (`sort.py`: a per-query cut-off for
    semantic hits, every keyword match); `info` (a dict) receives the mode and the cut-off used."""
    mode = mode or (DEFAULT_MODE if _is_collection(index) else "semantic")
    if info is not None:
        info["mode"] = mode
    if mode not in MODES:
        raise QueryError(f"unknown mode {mode!r}: use {', '.join(MODES)}")
    if check_sort(sort) != "relevance":
        if not _is_collection(index):
            raise QueryError("--sort date: an index built from embeddings has no photo dates")
        return _by_date(index, terms, k, threshold, under, glob, filters, mode, sort == "-date", info)
    if _is_collection(index):
        if not index.catalog.count_vectors():
            check(terms)
            return []
        if mode == "semantic":
            vec, ids, _ = query_vector(index, terms)
            return index.search_vector(vec, k, threshold, under, glob, exclude=ids, filters=filters)
        return _with_keywords(index, terms, k, threshold, under, glob, filters, mode)
    if under is not None or glob is not None or (filters is not None and filters.active):
        raise QueryError(
            "an index built from embeddings has no folder tree or photo metadata: no --under, --glob or filters"
        )
    if mode != "semantic":
        return _with_captions(index, terms, k, threshold, mode)
    vec, _, files = query_vector(index, terms)
    return index.search_vector(vec, k, threshold, exclude_files=[str(Path(f)) for f in files])


def _by_date(col, terms, k, threshold, under, glob, filters, mode, newest_first: bool, info) -> list:
    """Date order among the relevant: semantic hits above the query's cut-off, keyword matches."""
    from cliplab.search.sort import POOL, by_date, cutoff, typical_score

    if not col.catalog.count_vectors():
        check(terms)
        return []
    info = {} if info is None else info
    pool: dict[int, object] = {}
    if mode in ("semantic", "hybrid"):
        vec, ids, _ = query_vector(col, terms)
        sem = col.search_vector(vec, POOL, threshold, under, glob, exclude=ids, filters=filters)
        if sem:
            cut = cutoff(sem[0].score, typical_score(col, vec))
            info.update(cutoff=round(cut, 6), top=sem[0].score)
            pool.update((h.id, h) for h in sem if h.score >= cut)
    if mode in ("keyword", "hybrid"):
        for h in _with_keywords(col, terms, POOL, threshold, under, glob, filters, "keyword"):
            pool.setdefault(h.id, h)
    info["relevant"] = len(pool)
    return by_date(col, list(pool.values()), k, newest_first, None)


def _keyword_list(col, text: str, n: int, under, glob, filters, names: bool = False) -> list[int]:
    from cliplab.index import keywords
    from cliplab.index.sql import where_clause

    where, args = where_clause(col.scope_of(under), glob)
    photos_join = bool(filters is not None and filters.needs_photos)
    if filters is not None and filters.active:
        more, extra = filters.sql("f", "p")
        where, args = where + more, args + extra
    ids, _, _ = keywords.search(col.catalog, text, n, where, args, photos_join, names)
    return [int(i) for i in ids]


def _with_keywords(col, terms, k, threshold, under, glob, filters, mode) -> list:
    from cliplab.index.keywords import looks_like_a_name
    from cliplab.index.results import Hit

    check(terms)
    text = _keyword_text(terms, mode)
    pool = max(100, 5 * k)
    ranked = {"keyword": _keyword_list(col, text, pool, under, glob, filters) if text else []}
    exclude: list[int] = []
    vec = None
    if mode == "hybrid":
        vec, exclude, _ = query_vector(col, terms)
        sem = col.search_vector(vec, pool, threshold, under, glob, exclude=exclude, filters=filters)
        if not ranked["keyword"]:  # nothing to fuse: the semantic ranking, with its cosines
            return sem[:k]
        ranked["semantic"] = [h.id for h in sem]
    order, fused = _fuse(ranked, exclude)
    if mode == "hybrid" and looks_like_a_name(text):  # a file name typed: those files first
        named = _keyword_list(col, text, k, under, glob, filters, names=True)
        order = [i for i in named if i not in exclude] + [i for i in order if i not in named]
    order = order[:k]
    paths = col.catalog.paths(order)
    out = []
    for i in order:
        if i in paths:
            out.append(Hit(len(out) + 1, round(fused.get(i, [0.0])[0], 6), str(col.folder / paths[i]), paths[i], i))
    from cliplab.index.frames import with_moments  # videos: their best moments (keyword only: the poster's)

    return with_moments(col.catalog, out, vec, rerank=False)


def _keyword_text(terms, mode: str) -> str:
    """The words a keyword ranking looks for: the query's positive text terms."""
    text = " ".join(t.value for t in terms if t.kind == "text" and t.weight > 0)
    if mode == "keyword" and not text:
        raise QueryError("keyword search looks for words: give the query some text")
    return text


def _fuse(ranked: dict[str, list[int]], exclude=()) -> tuple[list[int], dict[int, list]]:
    """Reciprocal Rank Fusion of the rankings (ids best first) → (ids best first, id → [fused score,
    best single rank, keyword rank]); ties go to the better single rank, then to the keyword rank."""
    fused: dict[int, list] = {}
    for name, ids in ranked.items():
        for r, i in enumerate(ids, 1):
            if i in exclude:
                continue
            f = fused.setdefault(i, [0.0, r, 10**9])
            f[0] += 1.0 / (RRF_K + r)
            f[1] = min(f[1], r)
            if name == "keyword":
                f[2] = r
    return sorted(fused, key=lambda i: (-fused[i][0], fused[i][1], fused[i][2], i)), fused


def _with_captions(index, terms, k, threshold, mode) -> list:
    """keyword / hybrid on an index built from embeddings: its rows' captions (`index/captions.py`)
    in place of a folder's keyword index, fused with the semantic ranking as `_with_keywords` does."""
    check(terms)
    text = _keyword_text(terms, mode)
    pool = max(100, 5 * k)
    if text and not index.ensure_captions() and mode == "keyword":
        raise QueryError("--mode keyword: this index holds no captions to search by their words; use semantic")
    ranked = {"keyword": index.keyword_ids(text, pool)[0].tolist() if text else []}
    files: list[str] = []
    exclude: list[int] = []  # like:ID rows (a server gives their vectors)
    if mode == "hybrid":
        vec, exclude, files = query_vector(index, terms)
        files = [str(Path(f)) for f in files]
        sem = index.search_vector(vec, pool + len(exclude), threshold, exclude_files=files)
        if not ranked["keyword"]:  # nothing to fuse: the semantic ranking, with its cosines
            return [replace(h, rank=r) for r, h in enumerate((h for h in sem if h.id not in exclude), 1)][:k]
        ranked["semantic"] = [h.id for h in sem]
    order, fused = _fuse(ranked, exclude)
    order = order if files else order[:k]  # the query's own image files are left out below
    return index.hits(order, [fused[i][0] for i in order], exclude_files=files)[:k]
