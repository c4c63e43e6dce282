"""Explore: a collection as a 2-D map with named clusters (`/api/map`, `/api/clusters`,
`/api/map/members`). The map is computed by the library (`cliplab.analysis.explore`) in the
background on first use (202 until it is ready) and cached with the index; see serve/maps.py."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from cliplab.serve.deps import base_url, get_state
from cliplab.serve.errors import ApiError
from cliplab.serve.maps import MapJobs, Served, map_of
from cliplab.serve.query import MAX_OFFSET, clamp_count, parse_id
from cliplab.serve.routes_clip import image_url
from cliplab.serve.state import ServerState

router = APIRouter(prefix="/api", tags=["explore"])
DEFAULT_LIMIT = 50_000
MAX_LIMIT = {"json": 200_000, "bin": 1_000_000}  # points per page (bin: 16 bytes each)
# one point of format=bin: id, x, y, cluster, little-endian (serve/API.md)
POINT = np.dtype([("id", "<u4"), ("x", "<f4"), ("y", "<f4"), ("cluster", "<i4")])


def jobs_of(request: Request) -> MapJobs:
    """The app's background map jobs, made on first use."""
    app_state = request.app.state
    jobs = getattr(app_state, "explore_jobs", None)
    if jobs is None:
        jobs = app_state.explore_jobs = MapJobs()  # a race makes two registries once: harmless, one is dropped
    return jobs


def _served(state: ServerState, jobs: MapJobs, collection, model, method) -> tuple[object, Served]:
    src = state.source(collection)
    if model is not None and not isinstance(model, str):
        raise ApiError("model must be a model name")
    if method not in (None, "", "auto", "umap", "pca"):
        raise ApiError(f"method must be auto, umap or pca, not {method!r}"[:200])
    return src, map_of(state, jobs, src, model or None, method or "auto")


def _computing(src, got: Served) -> JSONResponse:
    body = {"collection": src.name, "model": got.model, "computing": True, "method": got.method}
    body |= {"done": got.job.done, "stage": got.job.stage}
    return JSONResponse(body, status_code=202, headers={"Retry-After": "1"})


def _whole(value, name: str, default: int) -> int:
    if value in (None, ""):
        return default
    got = parse_id(value)
    if got is None:
        raise ApiError(f"{name} must be a whole number ≥ 0, not {value!r}"[:200])
    return got


@router.get("/map")
def map_route(
    request: Request,
    collection: str | None = None,
    model: str | None = None,
    method: str | None = None,
    offset: str | None = None,
    limit: str | None = None,
    format: str | None = None,  # noqa: A002 (the contract's name)
    state: ServerState = Depends(get_state),
):
    """The collection's photos as 2-D points (id, x, y, cluster), `limit` at a time from `offset`;
    202 while the first map is computed. `format=bin`: 16-byte little-endian records."""
    fmt = format or "json"
    if fmt not in MAX_LIMIT:
        raise ApiError(f"format must be json or bin, not {fmt!r}"[:200])
    skip = _whole(offset, "offset", 0)
    count = _whole(limit, "limit", DEFAULT_LIMIT)
    if not 1 <= count <= MAX_LIMIT[fmt]:
        raise ApiError(f"limit must be between 1 and {MAX_LIMIT[fmt]} for format={fmt}")
    src, got = _served(state, jobs_of(request), collection, model, method)
    if got.map is None:
        return _computing(src, got)
    m = got.map
    page = slice(skip, skip + count)
    nxt = skip + count if skip + count < len(m.ids) else None
    if fmt == "bin":
        rec = np.empty(len(m.ids[page]), POINT)
        rec["id"], rec["x"], rec["y"], rec["cluster"] = m.ids[page], m.xy[page, 0], m.xy[page, 1], m.cluster[page]
        headers = {"X-Map-Count": str(len(m.ids)), "X-Map-Method": m.method, "X-Map-Offset": str(skip)}
        headers |= {"X-Map-Bounds": ",".join(f"{v:g}" for v in m.bounds()), "X-Map-Clusters": str(m.k)}
        headers |= {"X-Map-Next-Offset": "" if nxt is None else str(nxt), "X-Map-Stale": str(m.stale).lower()}
        return Response(rec.tobytes(), media_type="application/octet-stream", headers=headers)
    xy = np.round(m.xy[page].astype(np.float64), 4)
    return {
        "collection": src.name,
        "model": got.model,
        "method": m.method,
        "count": len(m.ids),
        "offset": skip,
        "limit": count,
        "next_offset": nxt,
        "stale": m.stale,
        "computing": got.job is not None,
        "missing": got.missing,
        "bounds": m.bounds(),
        "clusters": m.k,
        "points": {
            "id": m.ids[page].tolist(),
            "x": xy[:, 0].tolist(),
            "y": xy[:, 1].tolist(),
            "cluster": m.cluster[page].tolist(),
        },
    }


@router.get("/clusters")
def clusters_route(
    request: Request,
    collection: str | None = None,
    model: str | None = None,
    method: str | None = None,
    state: ServerState = Depends(get_state),
):
    """The map's clusters: size, top-3 names (zero-shot), representatives, centre, outline, dates;
    and a one-line summary of what is in the folder."""
    from cliplab.analysis.map_views import describe

    src, got = _served(state, jobs_of(request), collection, model, method)
    if got.map is None:
        return _computing(src, got)
    about = describe(got.map, src.collection.catalog)
    return {"collection": src.name, "model": got.model, "method": got.map.method, "stale": got.map.stale, **about}


@router.get("/map/members")
def members_route(
    request: Request,
    collection: str | None = None,
    model: str | None = None,
    method: str | None = None,
    cluster: str | None = None,
    region: str | None = None,
    offset: str | None = None,
    n: str | None = None,
    format: str | None = None,  # noqa: A002
    state: ServerState = Depends(get_state),
):
    """The photos of a cluster (nearest its centre first) or of a region x0,y0,x1,y1 (nearest its
    middle first), as search-like rows; `format=paths`: every one as a text file of relative paths."""
    if format not in (None, "", "json", "paths"):
        raise ApiError(f"format must be json or paths, not {format!r}"[:200])
    args = (collection, model, method, cluster, region, offset, n, format or "json")
    return _members(state, jobs_of(request), base_url(request), *args)


def _members(state, jobs, base, collection, model, method, cluster, region, offset, n, fmt):
    from cliplab.analysis.map_views import members, parse_region
    from cliplab.serve.maps import _cluster_number

    if (cluster in (None, "")) == (region in (None, "")):
        raise ApiError("give cluster=C or region=x0,y0,x1,y1 (one of them)")
    c = _cluster_number(cluster) if cluster not in (None, "") else None
    box = parse_region(region) if region not in (None, "") else None
    skip, count = _whole(offset, "offset", 0), clamp_count(n, "n", default=50)
    if skip > MAX_OFFSET:
        raise ApiError(f"offset must be between 0 and {MAX_OFFSET}")
    src, got = _served(state, jobs, collection, model, method)
    if got.map is None:
        return _computing(src, got)
    m = got.map
    idx = members(m, cluster=c, region=box)
    if fmt == "paths":
        items = src.items(m.ids[idx].tolist())
        text = "".join(items[int(i)].path + "\n" for i in m.ids[idx] if int(i) in items)
        name = f"{src.name}-{'cluster-' + str(c) if c is not None else 'region'}.txt"
        return PlainTextResponse(text, headers={"Content-Disposition": f'attachment; filename="{name}"'})
    page = idx[skip : skip + count]
    items = src.items(m.ids[page].tolist())
    rows = []
    for rank, i in enumerate(page, start=skip + 1):
        item = items.get(int(m.ids[i]))
        if item is None:
            continue
        rows.append(
            {
                "rank": rank,
                "id": item.id,
                "score": round(float(m.closeness[i]), 6),  # cosine to its cluster's centre
                "cluster": int(m.cluster[i]),
                "path": item.path,
                "name": item.path.rsplit("/", 1)[-1],
                "caption": item.caption,
                "url": image_url(base, src.name, item),
                "thumb_url": image_url(base, src.name, item, "thumb"),
            }
        )
    return {"collection": src.name, "model": got.model, "total": len(idx), "offset": skip, "results": rows}
