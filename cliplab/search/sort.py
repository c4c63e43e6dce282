"""Date order among the relevant: `search --sort date|-date`.

Which photos are relevant enough to be sorted by date is decided per query, not by one fixed
cosine (no single number works across queries and models):

    keep a semantic hit when  score ≥ top − λ · (top − typical)

`top` is the query's best score, `typical` the median score of the query against (a sample of) the
collection, and λ = CUTOFF_LAMBDA was chosen on validation data (benchmarks/date_cutoff.py,
docs/benchmarks.md). Keyword matches are relevant as they are. What passes is put in the order of
the photos' own dates (`photos.taken_at`); the cut-off used is returned, for the output to show.
"""

from __future__ import annotations

import numpy as np

from cliplab.errors import QueryError

CUTOFF_LAMBDA = 0.65  # chosen by benchmarks/date_cutoff.py (lite, CIFAR-10-dev selection classes), docs/benchmarks.md
SAMPLE = 2000
POOL = 1000  # at most this many hits are considered for date order
SORTS = ("relevance", "date", "-date")


def typical_score(col, vector: np.ndarray, sample: int = SAMPLE) -> float:
    """The median cosine of `vector` to an even sample of the collection's vectors."""
    ids = col.catalog.ids_matching(None, None)
    if not len(ids):
        return 0.0
    step = max(1, len(ids) // sample)
    _, vecs = col.catalog.vectors(ids=ids[::step][:sample])
    return float(np.median(vecs @ np.asarray(vector, np.float32)))


def cutoff(top: float, typical: float, lam: float = CUTOFF_LAMBDA) -> float:
    return top - lam * (top - typical)


def by_date(col, hits: list, k: int, descending: bool, cut: float | None) -> list:
    """The hits at or above `cut` (all when None), in date order (undated last), ranks renumbered."""
    from dataclasses import replace

    from cliplab.index.photos import get

    keep = [h for h in hits if cut is None or h.score >= cut]
    dates = {i: m.get("taken_at") or "" for i, m in get(col.catalog, [h.id for h in keep]).items()}
    dated = sorted((h for h in keep if dates.get(h.id)), key=lambda h: (dates[h.id], h.id), reverse=descending)
    undated = [h for h in keep if not dates.get(h.id)]
    return [replace(h, rank=r) for r, h in enumerate((dated + undated)[:k], 1)]


def check_sort(sort: str) -> str:
    if sort not in SORTS:
        raise QueryError(f"unknown sort {sort!r}: use {', '.join(SORTS)}")
    return sort
