"""The served side of a collection's map (`cliplab.analysis.explore`): computed in the background
(one job per collection, model and method; one job runs at a time), kept up to date incrementally,
and shown with the served collection's ids (another model's map is translated by path; photos the
served index lacks are left out and counted as missing).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from cliplab.analysis import explore
from cliplab.analysis.explore import ExploreMap
from cliplab.errors import CliplabError
from cliplab.serve.errors import ApiError


@dataclass
class Job:
    done: float = 0.0
    stage: str = "waiting"
    error: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    def progress(self, done: float, stage: str) -> None:
        self.done, self.stage = round(float(done), 3), stage


class MapJobs:
    """Background map computations of one server. At most one per key runs or waits, and one runs
    at a time (a map of 100k photos takes minutes of every core)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._one_at_a_time = threading.Semaphore(1)
        self._jobs: dict[tuple, Job] = {}
        self._views: dict[tuple, tuple] = {}  # translated maps, by (key, generations)
        self.update_lock = threading.Lock()  # incremental updates: one at a time, they are short

    def start(self, key: tuple, work) -> Job:
        """The running job of `key`, or a new one running `work(progress)`."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not job.finished.is_set():
                return job
            job = self._jobs[key] = Job()
        threading.Thread(target=self._run, args=(job, work), name=f"cliplab-map-{key[0]}", daemon=True).start()
        return job

    def _run(self, job: Job, work) -> None:
        with self._one_at_a_time:
            try:
                job.progress(0.01, "starting")
                work(job.progress)
            except Exception as e:  # noqa: BLE001 told to the next request (a bug or a bad index)
                job.error = str(e) or type(e).__name__
            finally:
                job.finished.set()

    def failed(self, key: tuple) -> str | None:
        """The error of `key`'s last job, forgotten once told (the next request tries again)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.finished.is_set() and job.error:
                del self._jobs[key]
                return job.error
        return None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for every job started so far (tests, shutdown); False on timeout."""
        end = None if timeout is None else time.monotonic() + timeout
        for job in list(self._jobs.values()):
            left = None if end is None else max(0.0, end - time.monotonic())
            if not job.finished.wait(left):
                return False
        return True

    def view(self, key: tuple, stamp: tuple, make):
        """A translated map, kept while `stamp` (the generations it came from) holds."""
        with self._lock:
            hit = self._views.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        got = make()
        with self._lock:
            self._views[key] = (stamp, got)
        return got


@dataclass
class Served:
    map: ExploreMap | None  # None: being computed (`job` says how far)
    job: Job | None
    method: str
    model: str
    missing: int = 0  # photos of another model's map that the served index lacks


def map_of(state, jobs: MapJobs, src, model: str | None, method: str = "auto") -> Served:
    """`src`'s map through `model`'s index, in `src`'s ids: fresh, updated, stale while a new one is
    computed, or None while the first one is."""
    other = state.model_source(src, model)
    if other.kind != "folder":
        raise ApiError("a map needs a folder's index (this collection is built from embeddings)")
    col = other.collection
    if not col.catalog.count_vectors():
        raise ApiError(f"nothing to map: collection {src.name!r} has no indexed images yet", 409)
    want = explore.resolve_method(method or "auto", col.catalog.count_vectors())
    key = (src.name, other.model, want)
    error = jobs.failed(key)
    if error:
        raise ApiError(f"computing the map failed: {error}", 500)
    with jobs.update_lock:
        status, m = explore.status(col, want)
        if status == "update":
            m, status = explore.update(col, m), "fresh"
    job = None
    if status != "fresh":
        job = jobs.start(key, lambda progress: explore.build(col, want, progress=progress))
        if m is None:
            return Served(None, job, want, other.model)
        m = explore.stale_view(col, m)
    if other is src:
        return Served(m, job, want, other.model)
    stamp = (m.gen, m.stale, len(m.ids), src.collection.catalog.gen)
    view, missing = jobs.view(key, stamp, lambda: in_served_ids(src, other, m))
    return Served(view, job, want, other.model, missing)


def in_served_ids(src, other, m: ExploreMap) -> tuple[ExploreMap, int]:
    """(`m` with `src`'s ids for the same paths, sorted by id; how many paths `src` lacks)."""
    paths = other.collection.catalog.paths(m.ids.tolist())
    back = src.collection.catalog.ids_of(list(paths.values()))
    new = np.array([back.get(paths.get(int(i)), -1) for i in m.ids], dtype=np.int64)
    ok = new >= 0
    order = np.argsort(new[ok], kind="stable")
    view = ExploreMap(
        m.method, m.gen, new[ok][order], m.xy[ok][order], m.cluster[ok][order], m.closeness[ok][order],
        m.centers, m.names, m.rule, m.base_count, m.drift, m.stale, m.info,
    )  # fmt: skip
    return view, int((~ok).sum())


def selection_ids(state, src, model: str | None, cluster, region) -> tuple[np.ndarray, str]:
    """(served ids, words for the chip) of a cluster or region of a map that exists already: a
    search filter never starts a map computation."""
    from cliplab.analysis.map_views import members, parse_region

    if cluster not in (None, "") and region not in (None, ""):
        raise ApiError("give cluster or region, not both")
    c = _cluster_number(cluster) if cluster not in (None, "") else None
    box = parse_region(region) if region not in (None, "") else None
    other = state.model_source(src, model)
    if other.kind != "folder":
        raise ApiError("a map selection needs a folder's index (this collection is built from embeddings)")
    col = other.collection
    m = None
    first = explore.resolve_method("auto", col.catalog.count_vectors())  # the map the page shows by default
    for method in (first, *{"umap", "pca"} - {first}):
        status, m = explore.status(col, method)
        if m is not None:
            m = explore.update(col, m) if status == "update" else explore.stale_view(col, m)
            break
    if m is None:
        raise ApiError(f"collection {src.name!r} has no {other.model} map yet: open it first (GET /api/map)", 409)
    if other is not src:
        m, _ = in_served_ids(src, other, m)
    try:
        idx = members(m, cluster=c, region=box)
    except CliplabError as e:
        raise ApiError(str(e)) from None
    what = f"cluster {c}" if c is not None else "region " + ",".join(f"{v:g}" for v in box)
    return m.ids[idx], f"{what} of the {other.model} map"


def _cluster_number(value) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 6:
        return int(value)
    raise ApiError(f"cluster must be a cluster number (0, 1, …), not {value!r}"[:200])
