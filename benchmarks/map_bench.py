"""The Explore map (`cliplab.analysis.explore`) at 10k and 100k photos: computation time and peak
memory with PCA and UMAP, and the size and time of `/api/map` (json and bin) once it is cached.

The vectors are synthetic and lite-like: 768-d unit vectors made of a shared direction, one of 60
topics (Zipf-sized) and noise, in proportions that give what `lite`'s vectors of 208 real photos
(Flickr8k + ImageNet samples) give: mean pairwise cosine ≈ 0.19, cosine to the mean ≈ 0.44. They are
written into a real index (catalog.db) so the map is built the way `cliplab explore` builds it: read
from the catalog, projected, clustered (k by silhouette), cached. Naming is left out (no text
tower): it is one matrix product once the vocabulary's text vectors are cached (`lite`: ~1,700 names
encoded once, ~15 s on 2 cores).

Each (n, method) runs in a fresh process, so its peak resident memory (ru_maxrss) is its own;
`base` is the same process's resident memory after the imports and the catalog read (at 100k the
catalog read, not the map, sets the peak for PCA). UMAP's numba code is compiled on a process's
first map (a server pays it once): it is timed apart, on 500 points, before the measured map. The
1-minute load average is printed with each row: on a shared machine the times move with it.
`/api/map` is asked through FastAPI's TestClient (in-process: no network), best of 3.

    python benchmarks/map_bench.py [--n 10000 100000] [--methods pca umap] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

DIM, TOPICS = 768, 60
SHARED, TOPIC, NOISE = 0.18, 0.22, 0.60  # squared norms of the three parts


def lite_like(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    shared = unit(rng.normal(size=DIM))
    topics = unit(rng.normal(size=(TOPICS, DIM)))
    sizes = 1 / np.arange(1, TOPICS + 1)
    which = rng.choice(TOPICS, n, p=sizes / sizes.sum())
    noise = unit(rng.normal(size=(n, DIM)))
    v = np.sqrt(SHARED) * shared + np.sqrt(TOPIC) * topics[which] + np.sqrt(NOISE) * noise
    return unit(v).astype(np.float32)


def make_index(root: Path, n: int) -> tuple[Path, Path]:
    """(empty folder, index dir) with n synthetic photos in the catalog."""
    from cliplab.index.catalog import Catalog

    folder, index = root / f"photos-{n}", root / f"index-{n}"
    folder.mkdir(parents=True, exist_ok=True)
    cat = Catalog(index)
    vecs = lite_like(n)
    with cat.write() as w:
        w.set_meta(model="synthetic", dim=str(DIM), folder=str(folder.resolve()))
        w.put_ok([(f"{i // 1000:03d}/{i:07d}.jpg", 1000, 0, None) for i in range(n)], vecs)
    cat.close()
    return folder, index


def one(folder: str, index: str, method: str) -> dict:
    """Runs in its own process: build the map, report time and memory."""
    import sklearn.cluster  # noqa: F401  imports are not the map's time (umap's ~3 s, sklearn's ~2 s)
    import sklearn.decomposition  # noqa: F401
    import sklearn.metrics  # noqa: F401

    from cliplab.analysis import explore
    from cliplab.index import Collection

    if method == "umap":
        import umap  # noqa: F401

    col = Collection(folder, index_dir=index, model="synthetic")
    t0 = time.perf_counter()
    ids, vecs = explore.file_vectors(col)
    read_s = time.perf_counter() - t0
    jit = 0.0
    if method == "umap":  # numba compiles UMAP's functions on a process's first map: timed apart
        t = time.perf_counter()
        explore.project(lite_like(500, seed=1), "umap")
        jit = time.perf_counter() - t
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t1 = time.perf_counter()
    m = explore.compute(ids, vecs, method, None, None, col.catalog.gen)
    explore.save(col, m)
    total = time.perf_counter() - t1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "read_s": round(read_s, 2),
        "map_s": round(total, 2),
        **m.info,
        "k": m.k,
        "base_mb": round(base),
        "peak_mb": round(peak),
        "jit_s": round(jit, 1),
        "load": round(os.getloadavg()[0], 1),
    }


def api(folder: Path, index: Path, method: str, n: int) -> dict:
    from fastapi.testclient import TestClient

    from cliplab.serve import Settings, create_app, open_state

    state = open_state(index_dirs=[index], update=False, settings=Settings(allowed_hosts=["testserver"]))
    out = {}
    with TestClient(create_app(state)) as client:
        for fmt, limit in (("json", min(n, 200_000)), ("bin", n)):
            best, size = 1e9, 0
            for _ in range(3):
                t = time.perf_counter()
                r = client.get(f"/api/map?method={method}&format={fmt}&limit={limit}")
                best = min(best, time.perf_counter() - t)
                assert r.status_code == 200, r.text[:200]
                size = len(r.content)
            out[fmt] = {"ms": round(best * 1000), "bytes": size}
    state.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--methods", nargs="+", default=["pca", "umap"])
    ap.add_argument("--out", type=Path, default=None, help="keep the indexes here (default: a temp folder)")
    ap.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(*a.one)))
        return
    root = a.out or Path(tempfile.mkdtemp(prefix="map-bench-"))
    print(f"machine: {machine()}")
    print(
        "| photos | method | k | read catalog | project | k by silhouette + k-means | total | UMAP JIT (once a process) | peak RSS (base) | load avg | /api/map json | /api/map bin |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in a.n:
        folder, index = make_index(root, n)
        for method in a.methods:
            cmd = [sys.executable, __file__, "--one", str(folder), str(index), method]
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            w = api(folder, index, method, n)
            print(
                f"| {n:,} | {method} | {r['k']} | {r['read_s']} s | {r['project_s']} s | {r['cluster_s']} s | "
                f"{r['map_s']} s | {r['jit_s']} s | {r['peak_mb']:,} MB ({r['base_mb']:,}) | {r['load']} | "
                f"{w['json']['bytes'] / 1e6:.2f} MB, {w['json']['ms']} ms | {w['bin']['bytes'] / 1e6:.2f} MB, {w['bin']['ms']} ms |",
                flush=True,
            )


if __name__ == "__main__":
    main()
