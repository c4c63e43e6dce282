"""How far two models' rankings agree: pure functions, lists of item keys (best first) in, numbers out.

- `overlap_at_k`: |top-k of a ∩ top-k of b| / k (CLIP_benchmark-style recall of one list in the other).
- `rank_correlation`: Spearman ρ and Kendall τ-b (scipy.stats) **over the union** of the two top-k
  lists. An item missing from a list gets rank k + 1 there (it ranks below everything that list
  shows), so missing items tie with each other; scipy handles the ties (average ranks for ρ, τ-b's
  tie correction). Identical lists give 1.0; disjoint lists give a negative value.
- `agreement`: every pair of several models' lists, keyed "a|b" in the given order, plus the union
  size and the mean overlap (the figures `/api/compare` and `cliplab search --model a --model b` show).

A correlation that is undefined (fewer than two items in the union, or one side constant) is None.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Hashable, Mapping, Sequence

from cliplab.errors import EvalError


def _top(items: Sequence[Hashable], k: int | None) -> tuple[list, int]:
    items = list(items)
    if len(set(items)) != len(items):
        raise EvalError("a ranking lists an item twice")
    if k is None:
        return items, len(items)
    if k < 1:
        raise EvalError(f"k must be at least 1 (got {k})")
    return items[:k], k


def overlap_at_k(a: Sequence[Hashable], b: Sequence[Hashable], k: int | None = None) -> float | None:
    """Share of the top-k items the two lists have in common (k: the asked depth; None: the longer
    list's length). None when both lists are empty."""
    k = max(len(a), len(b)) if k is None else k
    if k == 0:
        return None
    ta, k = _top(a, k)
    tb, _ = _top(b, k)
    return len(set(ta) & set(tb)) / k


def union_ranks(a: Sequence[Hashable], b: Sequence[Hashable], k: int | None = None) -> tuple[list, list, list]:
    """(union of the two top-k lists, a's 1-based ranks, b's ranks): a missing item ranks k + 1."""
    k = max(len(a), len(b)) if k is None else k
    if not k:
        return [], [], []
    ta, k = _top(a, k)
    tb, _ = _top(b, k)
    union = list(dict.fromkeys([*ta, *tb]))
    ra = {x: r for r, x in enumerate(ta, 1)}
    rb = {x: r for r, x in enumerate(tb, 1)}
    return union, [ra.get(x, k + 1) for x in union], [rb.get(x, k + 1) for x in union]


def _finite(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def rank_correlation(a: Sequence[Hashable], b: Sequence[Hashable], k: int | None = None) -> dict:
    """{"spearman": ρ, "kendall": τ-b, "union": n} of the two rankings over the union of their
    top-k lists (missing → rank k + 1; see the module's note)."""
    from scipy.stats import kendalltau, spearmanr

    union, ra, rb = union_ranks(a, b, k)
    if len(union) < 2 or len(set(ra)) < 2 or len(set(rb)) < 2:
        return {"spearman": None, "kendall": None, "union": len(union)}
    return {
        "spearman": _finite(spearmanr(ra, rb).statistic),
        "kendall": _finite(kendalltau(ra, rb).statistic),
        "union": len(union),
    }


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


def agreement(rankings: Mapping[str, Sequence[Hashable]], k: int | None = None) -> dict:
    """Several models' rankings (name → item keys, best first) → {"union": items in any top-k list,
    "overlap", "spearman", "kendall": {"a|b": value} for every pair in the given order,
    "mean_overlap": the mean of the pairs' overlaps (None with fewer than two models)}."""
    names = list(rankings)
    if k is None:
        k = max((len(v) for v in rankings.values()), default=0) or None
    tops = {n: _top(rankings[n], k)[0] for n in names}
    out: dict = {"union": len({x for top in tops.values() for x in top}), "overlap": {}, "spearman": {}, "kendall": {}}
    for x, y in combinations(names, 2):
        key = f"{x}|{y}"
        corr = rank_correlation(tops[x], tops[y], k)
        out["overlap"][key] = _round(overlap_at_k(tops[x], tops[y], k))
        out["spearman"][key] = _round(corr["spearman"])
        out["kendall"][key] = _round(corr["kendall"])
    laps = [v for v in out["overlap"].values() if v is not None]
    out["mean_overlap"] = _round(sum(laps) / len(laps)) if laps else None
    return out
