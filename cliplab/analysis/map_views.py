"""What a map (`explore.py`) says about a collection: the clusters with their sizes, names, outline
and dates, a one-line summary of the folder, and the photos of a cluster or a region."""

from __future__ import annotations

import math

import numpy as np

from cliplab.analysis.explore import ExploreMap
from cliplab.analysis.naming import summary_text
from cliplab.errors import CliplabError

REPRESENTATIVES = 8
HULL_SHARE = 0.9  # a cluster's outline wraps its members nearest its middle: one stray photo makes no bulge


def describe(m: ExploreMap, catalog=None) -> dict:
    """{"k", "rule", "clusters": [...], "summary": {...}} with the map's own ids; dates from the
    catalog's photo metadata when it is given and has them."""
    dates = _dates(m, catalog)
    clusters = []
    for c in range(m.k):
        idx = members(m, cluster=c)
        xy = m.xy[idx]
        got = dates[idx] if dates is not None else np.array([], dtype=object)
        got = got[got != None]  # noqa: E711 (an object array of strings and Nones)
        clusters.append(
            {
                "cluster": c,
                "size": len(idx),
                "names": [{"name": n, "score": s} for n, s in m.names[c]] if c < len(m.names) else [],
                "representatives": [int(i) for i in m.ids[idx[:REPRESENTATIVES]]],
                "center": [round(float(v), 4) for v in np.median(xy, axis=0)] if len(xy) else None,
                "hull": hull(xy),
                "dates": {"from": str(min(got))[:10], "to": str(max(got))[:10]} if len(got) else None,
            }
        )
    every = dates[dates != None] if dates is not None else []  # noqa: E711
    span = {"from": str(min(every))[:10], "to": str(max(every))[:10]} if len(every) else None
    shown = [c for c in clusters if c["size"]]
    summary = {"images": len(m.ids), "clusters": len(shown), "dates": span}
    summary["text"] = summary_text(len(m.ids), shown, span)
    return {"k": m.k, "rule": m.rule, "clusters": clusters, "summary": summary}


def _dates(m: ExploreMap, catalog) -> np.ndarray | None:
    """Per point, its photo's date string or None."""
    if catalog is None:
        return None
    ids, when = catalog.taken_dates()
    out = np.full(len(m.ids), None, dtype=object)
    pos = np.searchsorted(m.ids, ids)
    ok = (pos < len(m.ids)) & (m.ids[np.minimum(pos, len(m.ids) - 1)] == ids) if len(m.ids) else pos < 0
    out[pos[ok]] = when[ok]
    return out


def hull(xy: np.ndarray) -> list[list[float]]:
    """The convex outline of the points nearest their middle (HULL_SHARE of them), as [[x, y], …]."""
    if len(xy) > 3:
        d = np.hypot(*(xy - np.median(xy, axis=0)).T)
        xy = xy[d <= np.quantile(d, HULL_SHARE)]
    pts = np.unique(np.round(xy.astype(np.float64), 4), axis=0)
    if len(pts) >= 3:
        from scipy.spatial import ConvexHull, QhullError

        try:
            pts = pts[ConvexHull(pts).vertices]
        except QhullError:  # all on one line: its two ends
            pts = pts[[0, -1]]
    return [[float(x), float(y)] for x, y in pts]


def parse_region(text) -> tuple[float, float, float, float]:
    """'x0,y0,x1,y1' (map coordinates, any corner order) → (xmin, ymin, xmax, ymax)."""
    try:
        x0, y0, x1, y1 = (float(v) for v in str(text).split(","))
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            raise ValueError
    except ValueError:
        raise CliplabError(f"region {str(text)[:80]!r}: give four numbers x0,y0,x1,y1 (map coordinates)") from None
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def members(m: ExploreMap, cluster: int | None = None, region=None) -> np.ndarray:
    """Indexes into `m` of a cluster's photos (nearest its centre first) or a region's (nearest the
    region's middle first)."""
    if (cluster is None) == (region is None):
        raise CliplabError("give a cluster or a region (not both)")
    if cluster is not None:
        if not 0 <= int(cluster) < m.k:
            raise CliplabError(f"cluster {cluster}: this map has clusters 0…{m.k - 1}")
        idx = np.flatnonzero(m.cluster == int(cluster))
        return idx[np.lexsort((m.ids[idx], -m.closeness[idx]))]
    x0, y0, x1, y1 = region if isinstance(region, tuple) else parse_region(region)
    x, y = m.xy[:, 0], m.xy[:, 1]
    idx = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
    d = np.hypot(x[idx] - (x0 + x1) / 2, y[idx] - (y0 + y1) / 2)
    return idx[np.lexsort((m.ids[idx], d))]
