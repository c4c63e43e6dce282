"""Collections: incremental re-index, query latency, ANN recall, size on disk.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/index_bench.py [--files 10000] [--query-n 100000] [--ann-n 1000000]

1. re-index of an unchanged folder of N tiny image files (library call, and the whole `cliplab index` CLI);
2. text query → top-10 at 100k indexed vectors with `lite` (encode + search), through `Collection.search`;
3. search-only latency and recall@10 vs exact at 1M × 384 vectors (the index kind Collection builds);
4. index size on disk per image (the 100k index: catalog + FAISS cache).
Vectors for 2–4 are synthetic but shaped like `lite`/ConSE image vectors: probability-weighted mixtures
of the text embeddings of 10 related ImageNet classes. Queries: held-out synthetic image vectors
(image→image) and real Flickr8k test captions encoded by `lite` (text→image).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, require_shared  # noqa: E402

from cliplab.index import Collection  # noqa: E402
from cliplab.index.catalog import Catalog  # noqa: E402
from cliplab.index.vectors import VectorIndex, exact_knn, recall_at_k  # noqa: E402
from cliplab.models.core.base import Encoder, l2_normalize  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


class StubEncoder(Encoder):
    """Only for building the 10k-file index quickly (re-index timing never touches the model)."""

    name, dim, image_batch_size = "bench-stub", 8, 256

    def preprocess(self, image):
        return np.asarray(image.resize((2, 2)), np.float32).transpose(2, 0, 1)[:2].reshape(2, 2, 2)

    def encode_image_batch(self, batch):
        return batch.reshape(len(batch), -1) + 1e-3

    def encode_texts(self, texts):
        return l2_normalize(np.ones((len(texts), self.dim), np.float32))


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1000, q))


def bench_reindex(n_files: int, work: Path) -> dict:
    folder = work / "files"
    rng = np.random.default_rng(0)
    for i in range(n_files):
        d = folder / f"d{i // 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (4, 4, 3), dtype=np.uint8)).save(d / f"{i:05d}.png")
    idx = work / "files-index"
    t = time.perf_counter()
    s = Collection(folder, index_dir=idx, encoder=StubEncoder()).update()
    first = time.perf_counter() - t
    assert s.embedded == n_files, s
    lib = []
    for _ in range(5):
        t = time.perf_counter()
        with Collection(folder, index_dir=idx) as col:  # a fresh open each time, like a new process
            s = col.update()
        lib.append(time.perf_counter() - t)
        assert s.unchanged == n_files and not s.model_loaded
    cli = []
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).parent / "cliplab"), "index", str(folder), "--index", str(idx)],
            check=True,
            env=env,
            capture_output=True,
            cwd=work,
        )
        cli.append(time.perf_counter() - t)
    floor = []
    for _ in range(3):  # what any cliplab command costs before it does anything (imports)
        t = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).parent / "cliplab"), "--help"], check=True, env=env, capture_output=True, cwd=work
        )
        floor.append(time.perf_counter() - t)
    return {
        "n_files": n_files,
        "first_index_s": first,
        "reindex_lib_s": float(np.median(lib)),
        "reindex_cli_s": float(np.median(cli)),
        "cli_floor_s": float(np.median(floor)),
    }


def conse_like(anchors: np.ndarray, n: int, rng: np.random.Generator, top_t: int = 10) -> np.ndarray:
    """n unit vectors: Dirichlet-weighted mixtures of an anchor and 9 of its 30 nearest anchors."""
    sims = anchors @ anchors.T
    near = np.argsort(-sims, axis=1)[:, 1:31]
    out = np.empty((n, anchors.shape[1]), np.float32)
    for s in range(0, n, 50_000):
        m = min(50_000, n - s)
        primary = rng.integers(0, len(anchors), m)
        others = np.take_along_axis(near[primary], rng.random((m, 30)).argsort(1)[:, : top_t - 1], 1)
        cls = np.concatenate([primary[:, None], others], 1)
        w = rng.dirichlet(np.r_[3.0, np.full(top_t - 1, 0.3)], m).astype(np.float32)
        out[s : s + m] = l2_normalize(np.einsum("nt,ntd->nd", w, anchors[cls]))
    return out


def fill_catalog(index_dir: Path, folder: Path, vectors: np.ndarray, model: str) -> None:
    cat = Catalog(index_dir)
    with cat.write() as w:
        w.set_meta(model=model, dim=str(vectors.shape[1]), folder=str(folder))
        for s in range(0, len(vectors), 10_000):
            end = min(s + 10_000, len(vectors))
            rows = [(f"synthetic/{i // 1000:04d}/{i:07d}.jpg", 1000, 0, None) for i in range(s, end)]
            w.put_ok(rows, vectors[s : s + 10_000])
    cat.checkpoint()
    cat.close()


def bench_query(enc, anchors, captions, n: int, work: Path, rng) -> dict:
    folder, idx = work / "q-folder", work / "q-index"
    folder.mkdir()
    t = time.perf_counter()
    fill_catalog(idx, folder, conse_like(anchors, n, rng), enc.name)
    fill_s = time.perf_counter() - t
    col = Collection(folder, index_dir=idx, encoder=enc)
    t = time.perf_counter()
    col.search(captions[0], k=10)  # first search builds, tunes and saves the FAISS cache
    build_s = time.perf_counter() - t
    col2 = Collection(folder, index_dir=idx, encoder=enc)
    t = time.perf_counter()
    col2.search(captions[0], k=10)  # a new process: loads the saved cache
    load_s = time.perf_counter() - t
    total, search_only, encode_only = [], [], []
    for c in captions[1:101]:
        t = time.perf_counter()
        hits = col2.search(c, k=10)
        total.append(time.perf_counter() - t)
        assert len(hits) == 10
    for c in captions[1:101]:
        t = time.perf_counter()
        enc.encode_texts([c])
        encode_only.append(time.perf_counter() - t)
    qv = enc.encode_texts(captions[1:101])
    for v in qv:
        t = time.perf_counter()
        col2.search_vector(v, k=10)
        search_only.append(time.perf_counter() - t)
    size = col2.catalog.size_on_disk()
    return {
        "n": n,
        "fill_s": fill_s,
        "build_s": build_s,
        "load_s": load_s,
        "ann": col2.ann.get().describe(),
        "p50_ms": pct(total, 50),
        "p95_ms": pct(total, 95),
        "search_p50_ms": pct(search_only, 50),
        "encode_p50_ms": pct(encode_only, 50),
        "bytes_per_image": size / n,
        "catalog_bytes_per_image": (idx / "catalog.db").stat().st_size / n,
    }


def bench_ann(enc, anchors, captions, n: int, rng) -> dict:
    data = conse_like(anchors, n + 200, rng)
    held, data = data[:200], data[200:]
    ids = np.arange(n, dtype=np.int64)
    t = time.perf_counter()
    index = VectorIndex.build(ids, data)
    build_s = time.perf_counter() - t
    out = {"n": n, "dim": data.shape[1], "build_s": build_s, **index.describe()}
    for name, queries in (("image", held), ("text", enc.encode_texts(captions[:200]))):
        lat = []
        found = []
        for q in queries:
            t = time.perf_counter()
            found.append(index.search(q, 10)[1][0])
            lat.append(time.perf_counter() - t)
        truth = exact_knn(queries, data, 10)[1]
        out[f"{name}_recall"] = recall_at_k(np.stack(found), truth)
        out[f"{name}_p50_ms"], out[f"{name}_p95_ms"] = pct(lat, 50), pct(lat, 95)
    lat = []
    for q in held[:50]:  # exact search at the same size, for comparison
        t = time.perf_counter()
        exact_knn(q[None], data, 10)
        lat.append(time.perf_counter() - t)
    out["exact_p50_ms"] = pct(lat, 50)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--query-n", type=int, default=100_000)
    ap.add_argument("--ann-n", type=int, default=1_000_000)
    ap.add_argument("--json", type=Path, default=None, help="also write the raw numbers here")
    args = ap.parse_args()
    shared = require_shared()
    import csv

    from cliplab.models import load_encoder
    from cliplab.models.core.imagenet import imagenet_classnames

    with open(shared / "data" / "flickr8k-1k" / "captions.csv", newline="") as f:
        captions = [r["caption"] for r in csv.DictReader(f) if r["split"] == "test"][:400]
    load = os.getloadavg()[0]
    res = {"machine": machine(), "load_before": load}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        res["reindex"] = bench_reindex(args.files, work)
        print(json.dumps(res["reindex"]), file=sys.stderr)
        enc = load_encoder("lite")
        anchors = enc.encode_texts([f"a photo of a {c}." for c in imagenet_classnames()])
        rng = np.random.default_rng(0)
        res["query"] = bench_query(enc, anchors, captions, args.query_n, work, rng)
        print(json.dumps(res["query"]), file=sys.stderr)
        res["ann"] = bench_ann(enc, anchors, captions, args.ann_n, rng)
        print(json.dumps(res["ann"]), file=sys.stderr)
    res["load_after"] = os.getloadavg()[0]
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    print(markdown(res, args))


def markdown(r: dict, args) -> str:
    ri, q, a = r["reindex"], r["query"], r["ann"]
    ann_q = q["ann"]
    lines = [
        "### Collections (`cliplab index` / `search`)",
        "",
        f"`HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/index_bench.py --files {args.files} "
        f"--query-n {args.query_n} --ann-n {args.ann_n}` — {r['machine']}; "
        f"load average {r['load_before']:.1f} → {r['load_after']:.1f} (a shared machine).",
        "",
        "| measurement | target | result |",
        "|---|---|---|",
        f"| re-index unchanged folder, {ri['n_files']:,} files (`Collection.update`, no model load) | ≤ 1 s | "
        f"{ri['reindex_lib_s'] * 1000:.0f} ms |",
        f"| same through the CLI (`cliplab index DIR`, whole process) | — | {ri['reindex_cli_s']:.2f} s "
        f"(`cliplab --help` alone: {ri['cli_floor_s']:.2f} s) |",
        f"| text query → top-10 at {q['n']:,} vectors, `lite` (encode + search), p50 / p95 | p50 ≤ 20 ms | "
        f"{q['p50_ms']:.1f} / {q['p95_ms']:.1f} ms (text encoding alone p50 {q['encode_p50_ms']:.1f} ms; "
        f"search alone p50 {q['search_p50_ms']:.2f} ms; "
        f"{ann_q['kind']}, nlist {ann_q.get('nlist', '-')}, nprobe {ann_q.get('nprobe', '-')}) |",
        f"| first search at {q['n']:,} (build + tune + save FAISS cache) / next process (load cache) | — | "
        f"{q['build_s']:.1f} s / {q['load_s']:.2f} s |",
        f"| search-only at {a['n']:,} × {a['dim']}, image queries: p50 / p95, recall@10 | p50 ≤ 5 ms, ≥ 0.95 | "
        f"{a['image_p50_ms']:.2f} / {a['image_p95_ms']:.2f} ms, {a['image_recall']:.3f} |",
        f"| search-only at {a['n']:,} × {a['dim']}, text queries (Flickr8k captions): p50 / p95, recall@10 | "
        f"p50 ≤ 5 ms, ≥ 0.95 | {a['text_p50_ms']:.2f} / {a['text_p95_ms']:.2f} ms, {a['text_recall']:.3f} |",
        f"| exact search at {a['n']:,} (for comparison), p50 | — | {a['exact_p50_ms']:.1f} ms |",
        f"| ANN build at {a['n']:,} (IVF{a.get('nlist')}, fp16 lists: train + add + tune nprobe → {a.get('nprobe')}) "
        f"| — | {a['build_s']:.0f} s |",
        f"| index size on disk per image ({q['n']:,} × 384: catalog with fp16 vectors + FAISS cache) | — | "
        f"{q['bytes_per_image']:.0f} B (catalog {q['catalog_bytes_per_image']:.0f} B) |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
