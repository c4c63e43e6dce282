"""Photo-library search served under load (issue 21 §5): `GET /api/search` latency at 16 clients for text
queries on `lite` — no filter, and filters keeping about 10 % and 0.5 % of the photos — on a folder's
index and on a 1M-vector embeddings index; and throughput with and without the text-query cache.

    python benchmarks/library_serve.py folder LIB --home HOME [--requests 400]   # after library_bench.py --home HOME
    python benchmarks/library_serve.py shards OUT [--n 1000000] [--requests 400]  # makes OUT/emb + OUT/idx, serves it
    python benchmarks/library_serve.py cache [--requests 800]                     # Flickr8k-1k: cache off / on

A real `cliplab serve` process on 127.0.0.1 (port 0), 16 client threads (benchmarks/serve_load.py), every
request a different Flickr8k caption unless said otherwise, so each is embedded (no cache hit) — the cost a
new query has. Bounded: each row sends exactly --requests requests. Prints one markdown table per run.
"""

from __future__ import annotations

import argparse
import csv
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, require_shared  # noqa: E402
from serve_load import cpu_seconds, run_load, start_server  # noqa: E402

CLI = [sys.executable, "-c", "from cliplab.cli import main; main()"]
# ~12.5 % (one camera of 8 slots, make_library.py) and ~0.45 % (that camera, half a year of 14)
FILTERS = {
    "no filter": {},
    "camera=canon": {"camera": "canon"},
    "camera=canon, 2019-01…2019-06": {"camera": "canon", "after": "2019-01", "before": "2019-06"},
}


def captions() -> list[str]:
    with open(require_shared() / "data" / "flickr8k-1k" / "captions.csv", newline="", encoding="utf-8") as f:
        return list(dict.fromkeys(row["caption"] for row in csv.DictReader(f)))


def measure(proc, url: str, queries: list[str], n: int, params: dict | None = None, want: int = 10) -> dict:
    cpu0, me0 = cpu_seconds(proc.pid), time.process_time()
    r = run_load(url, queries, 16, n, params, want)
    r["server_cpu_ms"] = (cpu_seconds(proc.pid) - cpu0) * 1000 / r["requests"]
    r["client_cpu_ms"] = (time.process_time() - me0) * 1000 / r["requests"]
    r["load"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return r


def row(name: str, r: dict, extra: str = "") -> str:
    err = f"{r['errors']}" + (f" ({r['first_error'][:60]})" if r["errors"] else "")
    return (
        f"| {name}{extra} | {r['p50_ms']:.0f} / {r['p99_ms']:.0f} ms | {r['qps']:.0f} q/s | "
        f"{r['server_cpu_ms']:.1f} ms | {err} | {r['load']} |"
    )


HEAD = "| queries | p50 / p99 | throughput | server CPU / request | errors | load avg |\n|---|---|---|---|---|---|"


def share(index_home: Path, params: dict) -> tuple[int, int]:
    """(photos that pass the filters, photos indexed) in the one index under index_home."""
    from cliplab.index.filters import make_filters

    (catalog,) = index_home.glob("*/catalog.db")
    con = sqlite3.connect(catalog)
    total = con.execute("SELECT count(*) FROM files f JOIN vectors v ON v.id = f.id").fetchone()[0]
    f = make_filters(**{("types" if k == "type" else k): v for k, v in params.items()})
    where, args = f.sql("f", "p") if f.active else ("", [])
    sql = f"SELECT count(*) FROM files f JOIN vectors v ON v.id = f.id JOIN photos p ON p.id = f.id WHERE 1{where}"
    kept = con.execute(sql, args).fetchone()[0]
    con.close()
    return kept, total


def folder(a) -> None:
    qs = captions()
    proc, url, banner = start_server(a.lib, a.home, ["--no-update"])
    if url is None:
        sys.exit(f"cliplab serve exited with {proc.wait()}")
    out = [f"{banner}\n", HEAD]
    try:
        run_load(url, [f"warm-up {i}" for i in range(64)], 16, 64)
        start = 0
        for mode in ("semantic", "hybrid"):
            for name, params in FILTERS.items():
                if mode == "hybrid" and params:
                    continue
                kept, total = share(a.home, params)
                r = measure(proc, url, qs[start:], a.requests, {**params, "mode": mode})
                start += a.requests
                out.append(row(f"{mode}, {name}", r, f" ({100 * kept / total:.2f} % of {total:,})"))
                print(out[-1], file=sys.stderr, flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print("\n".join(out))


def make_shards(emb: Path, n: int, dim: int, texts: list[str], seed: int = 0, shard: int = 100_000) -> None:
    """n synthetic unit vectors around 2,000 Gaussian centres (as benchmarks/ann_1m.py), in `lite`'s
    dimension so lite's text queries search them, with Flickr8k captions as the rows' captions."""
    import pandas as pd

    from cliplab.data.writers import write_shard
    from cliplab.data.writers import write_shards_manifest as write_manifest

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2000, dim)).astype(np.float32)
    for i, s in enumerate(range(0, n, shard)):
        m = min(shard, n - s)
        v = centres[rng.integers(0, len(centres), m)] + rng.standard_normal((m, dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        meta = {
            "image_path": [f"img/{s + j}.jpg" for j in range(m)],
            "caption": [texts[(s + j) % len(texts)] for j in range(m)],
            "status": ["ok"] * m,
        }
        write_shard(emb, i, v, pd.DataFrame(meta))
    write_manifest(emb, {"model": "lite", "model_info": None})


def shards(a) -> None:
    from cliplab.models.specs import lite_dim

    qs = captions()
    emb, idx = a.out / "emb", a.out / "idx"
    out = []
    if not (idx / "index.json").is_file():
        t = time.perf_counter()
        make_shards(emb, a.n, lite_dim(), qs[a.requests * 2 :])  # the queries' own captions are not stored
        out.append(f"made {a.n:,} × {lite_dim()} vectors in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        subprocess.run([*CLI, "index", "--from-embeddings", str(emb), "--index", str(idx)], env=env, check=True)
        out.append(f"`cliplab index --from-embeddings` (with the caption index): {time.perf_counter() - t:.0f} s")
        print(out[-1], file=sys.stderr, flush=True)
    proc, url, banner = start_server(None, a.out / "home", ["--index", str(idx), "--no-update"])
    if url is None:
        sys.exit(f"cliplab serve exited with {proc.wait()}")
    out += [f"{banner}\n", HEAD]
    try:
        run_load(url, [f"warm-up {i}" for i in range(64)], 16, 64)
        r = measure(proc, url, qs, a.requests, {"mode": "semantic"})
        out.append(row("semantic, no filter", r))
        print(out[-1], file=sys.stderr, flush=True)
        t = time.perf_counter()
        httpx.post(url + "/knn-service", json={"text": "dog", "modality": "text", "num_images": 10}, timeout=600)
        out.append(f"\nfirst caption search (builds the caption index if missing): {time.perf_counter() - t:.2f} s")
        r = caption_load(url, qs[a.requests :], a.requests)
        out.append(f"`/knn-service` modality text, 16 clients: p50 / p99 {r[0]:.0f} / {r[1]:.0f} ms, {r[2]:.0f} q/s")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print("\n".join(out))


def caption_request(c, q: str, params, want) -> str | None:
    r = c.post("/knn-service", json={"text": q, "modality": "text", "num_images": 10})
    return None if r.status_code == 200 else f"{r.status_code} {r.text[:100]}"


def caption_load(url: str, queries: list[str], n: int) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, q/s) of n caption searches from 16 threads."""
    r = run_load(url, queries, 16, n, request=caption_request, timeout=60)
    if r["errors"]:
        raise RuntimeError(f"caption search failed: {r['first_error']}")
    return r["p50_ms"], r["p99_ms"], r["qps"]


def cache(a) -> None:
    """Throughput over Flickr8k-1k (1,000 photos): plain `q` requests, the text cache off and on."""
    qs = captions()[: a.requests]
    images = require_shared() / "data" / "flickr8k-1k" / "images"
    home = Path(__file__).resolve().parents[1] / ".cache" / "serve-load-index"  # as serve_load.py
    out = [HEAD]
    for label, env, passes in (
        ("cache off (CLIPLAB_TEXT_CACHE=0), distinct", {"CLIPLAB_TEXT_CACHE": "0"}, 1),
        ("cache on, distinct, then the same queries again", {}, 2),
    ):
        proc, url, banner = start_server(images, home, [], env)
        if url is None:
            sys.exit(f"cliplab serve exited with {proc.wait()}")
        try:
            run_load(url, [f"warm-up {i}" for i in range(64)], 16, 64)
            for p in range(passes):
                r = measure(proc, url, qs, a.requests)
                out.append(row(label + (" (2nd pass: all cached)" if p else ""), r))
                print(out[-1], file=sys.stderr, flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    print(f"{banner}\n\n" + "\n".join(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    f = sub.add_parser("folder")
    f.add_argument("lib", type=Path)
    f.add_argument("--home", type=Path, required=True, help="the CLIPLAB_INDEX_HOME library_bench.py --home used")
    s = sub.add_parser("shards")
    s.add_argument("out", type=Path)
    s.add_argument("--n", type=int, default=1_000_000)
    c = sub.add_parser("cache")
    for p in (f, s, c):
        p.add_argument("--requests", type=int, default=400 if p is not c else 800)
    a = ap.parse_args()
    print(f"# {machine()}", file=sys.stderr)
    {"folder": folder, "shards": shards, "cache": cache}[a.what](a)


if __name__ == "__main__":
    main()
