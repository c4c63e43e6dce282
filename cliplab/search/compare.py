"""One query, several models: each model's hits on the same folder side by side, and how far they agree.

Every model keeps its own index of the folder (`cliplab index DIR --model a --model b`), each with its
own catalog ids, so photos are matched **by path**. One collection is the *reference* (the first, or
the one a server serves): `like:ID` terms name its ids, and every hit is given its id (a hit whose
photo the reference index lacks counts as missing). Texts are encoded by each model itself; an image
file is encoded by each model (or its stored vector reused); an image that came as a vector (a
server's upload) belongs to one model: the caller passes each model's own vector of it
(`image_vectors`), else it is refused for the others.

A comparison defaults to semantic search: the keyword half of hybrid search is the same for every
model, so it would only blur how the models differ. Agreement: `cliplab.eval.agreement`.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

import numpy as np

from cliplab.errors import CliplabError, QueryError
from cliplab.eval.agreement import agreement
from cliplab.search.expression import Term, check

MAX_MODELS = 4  # columns a person can still read side by side
DEFAULT_MODE = "semantic"


@dataclass
class Column:
    """One model's answer: its hits best first, their relative paths and the reference's ids for them."""

    model: str
    hits: list  # `Hit`s (or what `search` returned: anything with .score and .relpath or a relative .path)
    paths: list[str]
    ids: dict[str, int]  # path → the reference collection's id; a path it lacks is missing
    only_here: set[str] = field(default_factory=set)  # paths no other column holds
    took_ms: float = 0.0

    @property
    def missing(self) -> int:
        return sum(p not in self.ids for p in self.paths)

    def rows(self) -> list[dict]:
        """rank, id (the reference's), score, path, name, only_here: the photos the reference knows."""
        return [
            {
                "rank": r,
                "id": self.ids[p],
                "score": round(float(h.score), 6),
                "path": p,
                "name": p.rsplit("/", 1)[-1],
                "only_here": p in self.only_here,
            }
            for r, (h, p) in enumerate(zip(self.hits, self.paths), 1)
            if p in self.ids
        ]


@dataclass
class Comparison:
    columns: list[Column]
    agreement: dict  # `cliplab.eval.agreement.agreement` over the columns' paths
    k: int
    took_ms: float

    def as_dict(self) -> dict:
        """The shape `/api/compare` answers with (the server adds urls and captions to each row)."""
        return {
            "k": self.k,
            "models": [
                {"model": c.model, "results": c.rows(), "missing": c.missing, "took_ms": c.took_ms}
                for c in self.columns
            ],
            "agreement": self.agreement,
            "took_ms": self.took_ms,
        }


def _relpath(hit) -> str:
    return getattr(hit, "relpath", None) or hit.path


def terms_for(reference, col, terms: Sequence[Term], image_vector=None) -> list[Term]:
    """`terms` as `col`'s model must run them: texts without a vector (each model encodes its own),
    `like:ID` of the reference turned into `col`'s id of the same photo (by path), and the image
    that came as a vector given `image_vector`, `col`'s model's own vector of it."""
    check(terms)
    sent = [t for t in terms if t.kind == "image" and t.vector is not None]
    if image_vector is not None and len(sent) != 1:
        raise QueryError(f"one model's vector of the image, but {len(sent)} images sent as vectors in the query")
    out = []
    for t in terms:
        if t.kind == "text":
            out.append(replace(t, vector=None))
        elif t.kind == "like" and col is not reference:
            path = reference.catalog.paths([int(t.value)]).get(int(t.value))
            if path is None:
                raise QueryError(f"like:{t.value}: no indexed image has this id")
            other = col.catalog.id_of(path)
            if other is None:
                raise QueryError(
                    f"like:{t.value} ({path}) is not in the {col.model} index of this folder: "
                    f"run cliplab index {col.folder} --model {col.model}"
                )
            out.append(replace(t, value=str(other), vector=None))
        elif t.kind == "image" and t.vector is not None and image_vector is not None:
            out.append(replace(t, vector=np.asarray(image_vector, np.float32)))
        elif t.kind == "image" and t.vector is not None and col is not reference:
            raise QueryError(
                f"{t.value}: an image sent as a vector belongs to one model; give the image file to compare"
            )
        else:
            out.append(t)
    return out


def _check(collections: Sequence, names: Sequence[str] | None) -> list[str]:
    if not collections:
        raise CliplabError("nothing to compare: give at least one model's index of the folder")
    if len(collections) > MAX_MODELS:
        raise CliplabError(f"{len(collections)} models to compare: at most {MAX_MODELS}")
    folders = {str(getattr(c, "folder", "")) for c in collections}
    if len(folders) > 1:  # photos are matched by path: relative to one folder
        raise CliplabError(f"the indexes to compare are of different folders: {', '.join(sorted(folders))}")
    names = list(names) if names is not None else [c.model for c in collections]
    if len(set(names)) != len(names):
        raise CliplabError(f"a model is named twice: {', '.join(names)}")
    return names


def compare(
    collections: Sequence,
    terms: Sequence[Term],
    k: int = 10,
    threshold: float | None = None,
    under: str | None = None,
    glob: str | None = None,
    filters=None,
    mode: str | None = None,
    reference=None,
    names: Sequence[str] | None = None,
    search: Callable | None = None,
    image_vectors: Mapping[str, np.ndarray] | None = None,
) -> Comparison:
    """Run `terms` on each model's `Collection` of one folder (`cliplab.search.run`, `mode` default
    semantic) → one column per model, which photos only one column holds, and the agreement figures
    (overlap@k, Spearman ρ and Kendall τ over the union, by path).

    reference: the collection whose ids `like:ID` uses and the rows carry (default: the first).
    search(col, terms, k, **filters) → hits: how each collection is searched (a server passes its
    sources' locked `run`); default `cliplab.search.run`.
    image_vectors: model name → that model's vector of the query's one image sent as a vector (an
    upload each model encoded with its own image tower)."""
    from cliplab.search.query import run

    t0 = time.perf_counter()
    names = _check(collections, names)
    reference = collections[0] if reference is None else reference
    search = search or run
    kw = dict(threshold=threshold, under=under, glob=glob, filters=filters, mode=mode or DEFAULT_MODE)
    columns = []
    for col, name in zip(collections, names):
        t1 = time.perf_counter()
        own = _image_vector(image_vectors, name)
        hits = list(search(col, terms_for(reference, col, terms, own), k, **kw))[:k]
        ms = round((time.perf_counter() - t1) * 1000, 2)
        columns.append(Column(name, hits, [_relpath(h) for h in hits], {}, took_ms=ms))
    ids = reference.catalog.ids_of([p for c in columns for p in c.paths])
    seen = Counter(p for c in columns for p in c.paths)
    for c in columns:
        c.ids = {p: ids[p] for p in c.paths if p in ids}
        c.only_here = {p for p in c.paths if seen[p] == 1} if len(columns) > 1 else set()
    agree = agreement({c.model: c.paths for c in columns}, k)
    return Comparison(columns, agree, k, round((time.perf_counter() - t0) * 1000, 2))


def _image_vector(image_vectors: Mapping[str, np.ndarray] | None, name: str):
    if image_vectors is None:
        return None
    if name not in image_vectors:
        raise CliplabError(f"no {name} vector of the query's image: each model encodes the image itself")
    return image_vectors[name]


def ranks(
    collections: Sequence,
    terms: Sequence[Term],
    paths: Sequence[str],
    reference=None,
    names=None,
    image_vectors: Mapping[str, np.ndarray] | None = None,
) -> dict[str, list[dict]]:
    """Each photo's place under each model for `terms`, over the whole collection (exact: every stored
    vector is scored; semantic, by cosine): path → [{"model", "rank" (1-based; ties share the better
    rank), "score", "of" (photos ranked)}]. A photo a model's index lacks, or one the query names
    itself (like:ID, an image file), has rank and score None. image_vectors: as in `compare`."""
    from cliplab.index.migrate import FRAME_ID_BASE
    from cliplab.search.query import query_vector

    names = _check(collections, names)
    reference = collections[0] if reference is None else reference
    out: dict[str, list[dict]] = {p: [] for p in paths}
    for col, name in zip(collections, names):
        vec, exclude, _ = query_vector(col, terms_for(reference, col, terms, _image_vector(image_vectors, name)))
        ids, vecs = col.catalog.vectors()
        keep = (ids < FRAME_ID_BASE) & ~np.isin(ids, np.asarray(exclude, np.int64))  # a video once, by its poster
        ids, scores = ids[keep], vecs[keep] @ vec
        where = {int(i): n for n, i in enumerate(ids)}
        found = col.catalog.ids_of(list(paths))
        for p in paths:
            n = where.get(found.get(p, -1))
            if n is None:
                out[p].append({"model": name, "rank": None, "score": None, "of": int(len(ids))})
                continue
            s = scores[n]
            rank = int((scores > s).sum()) + 1
            out[p].append({"model": name, "rank": rank, "score": round(float(s), 6), "of": int(len(ids))})
    return out


def open_models(folder, models: Sequence[str], **kw) -> list:
    """Each named model's existing `Collection` of `folder` (or of its nearest indexed ancestor,
    scoped to `folder`), in order; a model without an index is an error naming the command that
    makes one: a comparison never starts embedding a folder."""
    from pathlib import Path

    from cliplab.index import Collection
    from cliplab.index.locate import find_index, normalize_spec

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise CliplabError(f"no such folder: {folder}")
    out = []
    try:
        for m in models:
            spec = normalize_spec(m)
            hit = find_index(folder, spec)
            if hit is None or _stored_model(hit[0]) != spec:
                raise CliplabError(
                    f"{folder.resolve()} has no {m} index; run cliplab index {folder} --model {m} "
                    "(a comparison never starts embedding)"
                )
            index_dir, root, sub = hit
            out.append(Collection(root, model=spec, index_dir=index_dir, scope=sub, **kw))
    except BaseException:
        for col in out:
            col.close()
        raise
    return out


def _stored_model(index_dir) -> str | None:
    from cliplab.index.locate import read_meta

    return read_meta(index_dir).get("model")
