"""Run a parsed query on an index: a folder's `Collection` or an index built from embeddings.

Texts are encoded in one batch; an image that is indexed and unchanged reuses its stored vector;
`like:ID` reads the vector of an indexed image. The images a query names (files and like:IDs) are
left out of its results, as in image→image search.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from cliplab.errors import QueryError
from cliplab.search.expression import Term, check, combine


def _is_collection(index) -> bool:
    return hasattr(index, "catalog")


def query_vector(index, terms: Sequence[Term]) -> tuple[np.ndarray, list[int], list[str]]:
    """(unit query vector, catalog ids to leave out, image files to leave out) of `terms` on `index`."""
    check(terms)
    vectors: list[np.ndarray | None] = [None] * len(terms)
    exclude_ids: list[int] = []
    exclude_files: list[str] = []
    texts = [i for i, t in enumerate(terms) if t.kind == "text"]
    if texts:
        enc = index.encoder().encode_texts([terms[i].value for i in texts])
        for i, v in zip(texts, enc):
            vectors[i] = v
    for i, t in enumerate(terms):
        if t.kind == "like":
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


def run(
    index,
    terms: Sequence[Term],
    k: int = 10,
    threshold: float | None = None,
    under: str | None = None,
    glob: str | None = None,
    filters=None,
) -> list:
    """The k best hits of `terms` on `index` (Collection: `Hit`s; embeddings index: `ShardHit`s)
    among the photos that pass `filters` (`cliplab.index.filters.make_filters`)."""
    if _is_collection(index):
        if not index.catalog.count_vectors():
            check(terms)
            return []
        vec, ids, _ = query_vector(index, terms)
        return index.search_vector(vec, k, threshold, under, glob, exclude=ids, filters=filters)
    if under is not None or glob is not None or (filters is not None and filters.active):
        raise QueryError(
            "an index built from embeddings has no folder tree or photo metadata: no --under, --glob or filters"
        )
    vec, _, files = query_vector(index, terms)
    return index.search_vector(vec, k, threshold, exclude_files=[str(Path(f)) for f in files])
