"""Ray scale-out on one machine: the same folder embedded single-process, and on a local Ray with 1
and 2 workers (model replicas); plus Ray's fixed overhead on a small job.

    HF_HUB_OFFLINE=1 nice .venv/bin/python benchmarks/ray_scaling.py [--images 256] [--small 16]

Timings: single-process = `cliplab.api.embed` with the model already loaded; Ray = `embed_to_shards`
on an already started `ray.init()` (its start is reported apart), so each Ray figure includes what a
user waits for on a running cluster: actor start-up, one model load per actor, the work, the shard
writes. On a 2-core machine 2 workers cannot beat one process using both cores for the model: the
figure to read is the per-core rate (the sizing in docs/scale.md uses it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, require_shared  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--small", type=int, default=16)
    ap.add_argument("--model", default="lite")
    args = ap.parse_args()
    import ray

    from cliplab import api
    from cliplab.distributed import embed_to_shards
    from cliplab.models import load_encoder

    root = require_shared()
    photos = sorted((root / "data" / "flickr8k-1k" / "images").glob("*.jpg"))[: args.images]
    tmp = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    lst, small = tmp / "all.txt", tmp / "small.txt"
    lst.write_text("\n".join(map(str, photos)))
    small.write_text("\n".join(map(str, photos[: args.small])))
    rows, res = [], {}
    enc = load_encoder(args.model)
    api.embed([str(small)], enc)  # warm-up
    for name, src, n in (("all", lst, len(photos)), ("small", small, args.small)):
        t = time.perf_counter()
        api.embed([str(src)], enc)
        res[f"single_{name}"] = time.perf_counter() - t
    rows.append(("single process (model loaded)", len(photos), res["single_all"]))
    t = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    res["ray_init"] = time.perf_counter() - t
    try:
        for w in (1, 2):
            out = tmp / f"ray{w}"
            t = time.perf_counter()
            s = embed_to_shards(
                [str(lst)], out, model=args.model, engine="ray", workers=w, shard_size=max(1, len(photos) // 8)
            )
            res[f"ray_{w}"] = time.perf_counter() - t
            assert s.ok == len(photos)
            rows.append(
                (
                    f"Ray, {w} worker{'s' if w > 1 else ''} ({len(photos) // 8}-image shards)",
                    len(photos),
                    res[f"ray_{w}"],
                )
            )
        t = time.perf_counter()
        embed_to_shards([str(small)], tmp / "small", model=args.model, engine="ray", workers=1, shard_size=args.small)
        res["ray_small"] = time.perf_counter() - t
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"Machine: {machine()}\n")
    print("| path | images | seconds | images/s |\n|---|---:|---:|---:|")
    for name, n, sec in rows:
        print(f"| {name} | {n} | {sec:.1f} | {n / sec:.1f} |")
    print(f"\nray.init() (new local cluster): {res['ray_init']:.1f} s")
    print(
        f"small job ({args.small} images): single process {res['single_small']:.2f} s, Ray 1 worker "
        f"{res['ray_small']:.1f} s → overhead {res['ray_small'] - res['single_small']:.1f} s "
        "(actor start + model load + scheduling)"
    )
    print(json.dumps({k: round(v, 3) for k, v in res.items()}))


if __name__ == "__main__":
    main()
