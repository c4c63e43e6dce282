"""ANN over 1,000,000 synthetic 384-d vectors with cluster structure, built the way
`cliplab index --from-embeddings` builds (shards on disk → trained on a sample → filled shard by shard
→ nprobe tuned): build time, index size (≈ its memory), recall@10 against exact search and single-query
p50/p99 latency, for flat, IVF (fp16) and IVF-PQ (d/4 bytes + exact re-scoring from the shard files).

    HF_HUB_OFFLINE=1 nice .venv/bin/python benchmarks/ann_1m.py [--n 1000000] [--dim 384] [--kinds flat,ivf,ivfpq]

Data: 2,000 Gaussian cluster centres, points = centre + noise of the same norm (cosine to their centre ≈ 0.7), unit
length, written as 100k-vector float16 shards. Queries: 250 fresh points from the same distribution
(not in the index) and 250 midpoints of two indexed points (between clusters, the hard case); the flat
index is scored on 100 of them (it is the exact search itself, and as slow). Target:
recall@10 ≥ 0.95 at p50 ≤ 5 ms.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402


def make_shards(out: Path, n: int, dim: int, shard: int, rng) -> np.ndarray:
    from cliplab.data.writers import write_shard
    from cliplab.data.writers import write_shards_manifest as write_manifest

    centres = rng.standard_normal((2000, dim)).astype(np.float32)
    for i, s in enumerate(range(0, n, shard)):
        m = min(shard, n - s)
        v = centres[rng.integers(0, len(centres), m)] + 1.0 * rng.standard_normal((m, dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        write_shard(
            out,
            i,
            v,
            pd.DataFrame(
                {"image_path": [f"img/{s + j}.jpg" for j in range(m)], "status": ["ok"] * m, "error": [""] * m}
            ),
        )
    write_manifest(out, {"model": "synthetic", "model_info": {"model": "synthetic", "dim": dim}})
    return centres


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--kinds", default="flat,ivf,ivfpq")
    ap.add_argument("--latency-queries", type=int, default=300)
    ap.add_argument("--queries", type=int, default=500, help="recall queries (half fresh, half midpoints)")
    args = ap.parse_args()
    from cliplab.index.large import build_from_embeddings, exact_topk, read_sources
    from cliplab.index.shards import ShardsIndex
    from cliplab.index.vectors import recall_at_k

    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp(prefix="ann-bench-"))
    try:
        t = time.perf_counter()
        centres = make_shards(tmp / "emb", args.n, args.dim, 100_000, rng)
        print(f"data: {args.n:,} × {args.dim} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        _, table = read_sources([tmp / "emb"])
        h = args.queries // 2
        fresh = centres[rng.integers(0, len(centres), h)] + 1.0 * rng.standard_normal((h, args.dim))
        mids = table.vectors(rng.integers(0, args.n, h)) + table.vectors(rng.integers(0, args.n, h))
        q = np.concatenate([fresh, mids]).astype(np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        ok = [table.offsets[p] + np.arange(r) for p, r in enumerate(table.rows)]
        t = time.perf_counter()
        truth = exact_topk(table, ok, q, 10)
        print(f"exact ground truth for {len(q)} queries: {time.perf_counter() - t:.0f} s", file=sys.stderr)
        rows = []
        for kind in args.kinds.split(","):
            t = time.perf_counter()
            info = build_from_embeddings([tmp / "emb"], tmp / kind, kind=kind, target_recall=0.96)
            build = time.perf_counter() - t
            idx = ShardsIndex(tmp / kind)
            sub = np.arange(len(q)) if kind != "flat" else np.r_[0:50, h : h + 50]  # flat: as slow as the truth
            found = np.concatenate([idx.raw_search(q[sub][i : i + 100], 10)[1] for i in range(0, len(sub), 100)])
            fr = sub < h
            r_fresh, r_mid = recall_at_k(found[fr], truth[sub][fr]), recall_at_k(found[~fr], truth[sub][~fr])
            lat = []
            for v in q[: args.latency_queries]:
                t = time.perf_counter()
                idx.raw_search(v[None], 10)
                lat.append((time.perf_counter() - t) * 1000)
            row = {
                "kind": kind,
                "build_s": round(build, 1),
                "index_mb": round(info["index_bytes"] / 1e6, 1),
                "nlist": info.get("nlist"),
                "nprobe": info.get("nprobe"),
                "rerank": info.get("rerank"),
                "tuned_recall": info.get("tuned_recall_at_10"),
                "recall_fresh": round(r_fresh, 4),
                "recall_mid": round(r_mid, 4),
                "p50_ms": round(float(np.percentile(lat, 50)), 2),
                "p99_ms": round(float(np.percentile(lat, 99)), 2),
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
            del idx
            shutil.rmtree(tmp / kind, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"Machine: {machine()}; {args.n:,} × {args.dim}-d\n")
    print("| index | build s | size MB | nlist / nprobe | recall@10 fresh / midpoints | p50 ms | p99 ms |")
    print("|---|---:|---:|---|---|---:|---:|")
    for r in rows:
        probe = (
            f"{r['nlist']} / {r['nprobe']}" + (f" (re-score {r['rerank']}×k)" if r["rerank"] else "")
            if r["nlist"]
            else "—"
        )
        print(
            f"| {r['kind']} | {r['build_s']} | {r['index_mb']} | {probe} | {r['recall_fresh']:.3f} / "
            f"{r['recall_mid']:.3f} | {r['p50_ms']} | {r['p99_ms']} |"
        )


if __name__ == "__main__":
    main()
