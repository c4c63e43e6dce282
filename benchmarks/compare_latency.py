"""Compare-query latency (issue 23 §1): one text query, a column per model, for 2 and 3 models (lite, conse,
and a CLIP ViT-B/32 checkpoint) on a folder of real photos — through the library (`cliplab.search.compare`) and through
`POST /api/compare` (the app in-process, FastAPI's TestClient) — median and p90; plus the live caption
evaluation (`GET /api/compare/eval`) once.

    python benchmarks/compare_latency.py [--photos 300] [--queries 40] [--k 20] [--work DIR]

The first --photos Flickr8k-1k photos are copied to a temporary folder (or --work) with their captions.csv
and indexed with each model. preclip cannot be the third model: it is fitted on the data it embeds, so
it builds no index; the third is a ViT-B/32-shape CLIP checkpoint with random weights (no CLIP weights can be
downloaded here; `build_random_clip`, kept in the cliplab cache as benchmarks/embed_throughput.py keeps it):
its latency is a real CLIP's, its rankings are noise. Each query is a different Flickr8k caption (of photos outside the folder), so
every model embeds it (no text-cache hit); the library and the API get different queries for the same
reason. One warm-up query per row loads the models first. Bounded: exactly --queries queries per row.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, require_shared  # noqa: E402


def clip_checkpoint() -> str:
    """The random ViT-B/32-shape CLIP, built once into the cache (a stable folder → a stable ONNX key)."""
    from cliplab.models.backends.clip_hf import build_random_clip
    from cliplab.runtime.cache import cache_root

    d = cache_root() / "bench" / "clip-b32-random"
    if not (d / "model.safetensors").is_file():
        build_random_clip(d, tiny=False, seed=0)
    return str(d)


def make_folder(dest: Path, n: int) -> tuple[Path, list[str]]:
    """dest/photos/ with the first n photos and their captions.csv; the other photos' captions (the queries)."""
    src = require_shared() / "data" / "flickr8k-1k"
    with open(src / "captions.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    keep = list(dict.fromkeys(r["path"] for r in rows))[:n]
    photos = dest / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    for p in keep:
        shutil.copy(src / p, photos / Path(p).name)
    kept = set(keep)
    with open(photos / "captions.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "caption"])
        w.writerows((Path(r["path"]).name, r["caption"]) for r in rows if r["path"] in kept)
    queries = [r["caption"].replace('"', "").strip() for r in rows if r["path"] not in kept]
    return photos, list(dict.fromkeys(q for q in queries if q))


def stats(ms: list[float]) -> str:
    return f"{statistics.median(ms):.0f} | {float(np.percentile(ms, 90)):.0f}"


def library_row(folder: Path, models: list[str], queries: list[str], k: int) -> list[float]:
    from cliplab.search.compare import compare, open_models
    from cliplab.search.expression import Term

    cols = open_models(folder, models)
    try:
        compare(cols, [Term("text", "warm-up")], k)
        out = []
        for q in queries:
            t = time.perf_counter()
            compare(cols, [Term("text", q)], k)
            out.append((time.perf_counter() - t) * 1000)
        return out
    finally:
        for c in cols:
            c.close()


def api_rows(folder: Path, sets: list[list[str]], queries: list[list[str]], k: int) -> tuple[list[list[float]], float]:
    from fastapi.testclient import TestClient

    from cliplab.serve import Settings, create_app, open_state

    state = open_state([folder], model=sets[0][0], update=False, settings=Settings(allowed_hosts=["testserver"]))
    try:
        with TestClient(create_app(state)) as client:
            rows = []
            for models, qs in zip(sets, queries):
                client.post("/api/compare", json={"q": '"warm-up"', "models": models, "n": k}).raise_for_status()
                ms = []
                for q in qs:
                    t = time.perf_counter()
                    client.post("/api/compare", json={"q": f'"{q}"', "models": models, "n": k}).raise_for_status()
                    ms.append((time.perf_counter() - t) * 1000)
                rows.append(ms)
            t = time.perf_counter()
            r = client.get("/api/compare/eval", params={"models": ",".join(sets[-1])})
            r.raise_for_status()
            evaluated = (time.perf_counter() - t) * 1000
            print("\n| model | R@1 | R@5 | R@10 | image R@1 | images | captions |\n|---|---|---|---|---|---|---|")
            for m in r.json()["models"]:
                print(
                    f"| {Path(m['model']).name} | {m['R@1']:.3f} | {m['R@5']:.3f} | {m['R@10']:.3f} | {m['image_R@1']:.3f} "
                    f"| {m['images']} | {m['captions_count']} |"
                )
            return rows, evaluated
    finally:
        state.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=300)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--work", type=Path, default=None, help="folder for the photos and indexes (default: a temp one)")
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="compare-latency-"))
    os.environ["CLIPLAB_INDEX_HOME"] = str(work / "indexes")
    folder, queries = make_folder(work, a.photos)
    from cliplab.index import Collection

    print(f"{machine()}; load avg {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    models = ["lite", "conse", clip_checkpoint()]
    for m in models:
        t = time.perf_counter()
        with Collection(folder, model=m) as col:
            s = col.update()
        print(f"indexed {s.embedded} photos with {m} in {time.perf_counter() - t:.1f} s (model load included)")
    sets = [models[:2], models]
    n = a.queries
    need = 4 * n
    if len(queries) < need:
        sys.exit(f"only {len(queries)} distinct captions outside the folder for {need} queries: fewer --queries")
    lib = [library_row(folder, s, queries[i * n : (i + 1) * n], a.k) for i, s in enumerate(sets)]
    api, evaluated = api_rows(folder, sets, [queries[(2 + i) * n : (3 + i) * n] for i in range(2)], a.k)
    print(f"\n{a.photos} photos, k = {a.k}, {n} queries per row (each a different caption)\n")
    print("| models | through | median ms | p90 ms |\n|---|---|---|---|")
    names = ["lite, conse", "lite, conse, clip-b32-random"]
    for s, ms in zip(names, lib):
        print(f"| {s} | library `compare` | {stats(ms)} |")
    for s, ms in zip(names, api):
        print(f"| {s} | `POST /api/compare` | {stats(ms)} |")
    print(f"\n`GET /api/compare/eval` ({names[-1]}): {evaluated / 1000:.1f} s")
    print(f"load avg after: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if a.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
