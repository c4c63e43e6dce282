"""Images/s end to end (JPEG folder → vectors on disk) and whole-process start-up times, in one run:
 1. a random-weight CLIP in the exact ViT-B/32 shape: the tutorial's naive loop (one image at a time,
    PIL.open → CLIPImageProcessor → get_image_features), then cliplab's pipeline on torch, ONNX fp32
    and ONNX int8 (the naive loop and the int8 pipeline run alternately, --repeat rounds, so the
    VM's drift hits both sides of the ratio alike);
 2. `lite` through cliplab's pipeline on torch, ONNX fp32 and ONNX int8 (its CNN tower stays fp32);
 3. whole-process `cliplab --version`, `cliplab --help` and `cliplab search "…" --dir FOLDER` on an
    indexed folder (ONNX cache present), median of 3 each.
The table replaces this script's section of docs/benchmarks.md (--no-write: print only).

    HF_HUB_OFFLINE=1 nice .venv/bin/python benchmarks/embed_throughput.py [--n 128] [--n-lite 512]

ONNX graphs come from the user's cache (~/.cache/cliplab/onnx, $CLIPLAB_CACHE); the random CLIP
is kept in that cache too (bench/clip-b32-random), so its export happens once, not every run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, require_shared, timer  # noqa: E402

from cliplab import api  # noqa: E402
from cliplab.data import writers as export  # noqa: E402
from cliplab.models.backends.clip_hf import build_random_clip  # noqa: E402
from cliplab.runtime import load, runtime_label  # noqa: E402
from cliplab.runtime.cache import cache_root  # noqa: E402

NOTES = (
    "What makes the ONNX rows fast: (1) the CLIP vision graph is exported with eager attention and its patch "
    "embedding as a MatMul, then fused by ONNX Runtime's transformer optimizer (one `Attention` op per layer, "
    "`QAttention` in int8; `cliplab/models/backends/clip_export.py`, `cliplab/runtime/fuse.py`), with its last layer "
    "computed for the CLS token only (the image vector is read from it: ~6 % fewer multiply-adds, exact); "
    "(2) an image batch is split across concurrent calls of one single-threaded session (2 × 1 thread beat "
    "1 × 2 threads by 1–10 % for the int8 ViT across runs; `batch_parallelism` in `cliplab/runtime/device.py`); "
    "(3) preprocessing normalises with a per-channel lookup table (same bits as transformers' arithmetic, "
    "~3× faster than that arithmetic), and the decode threads write each photo straight into its row of a "
    "preallocated batch array that is reused from batch to batch (`cliplab/pipeline.py`); decode + "
    "preprocess is 2.1–3.7 ms per photo on one core. benchmarks/int8_vit.py measures (1), (2) and the lookup "
    "table; the batch arrays save one copy of each photo's 0.6 MB input, too little to show above this VM's noise. "
    "int8 is ONNX Runtime dynamic int8 (MatMul/Gemm/Attention weights, per channel), accepted per tower only "
    "when it keeps cosine ≥ 0.999 (mean) / 0.99 (min) to fp32 on check inputs; otherwise the tower runs fp32 "
    "and the label says why. `lite`'s EfficientNet is a CNN (no post-training int8 reached 0.999, see "
    "../shared/docs/measurements.md) and its MiniLM text tower loses too much (cosine ≈ 0.992), so `lite` runs "
    "fp32 under --precision int8. Big JPEGs are decoded at reduced scale (`Image.draft`); these Flickr8k "
    "photos are at most 320 px, so it does not apply here. The naive loop's model loading is not timed, like "
    "the other rows'. Start-up: typer is pinned below 0.29, which imports pydantic for every command "
    "(0.16 s to import here); `farm-bench -n 10` A/B pairs of the search below: median 0.72 s with typer "
    "0.28 against 0.85 s with 0.29.2."
)
ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Embedding throughput and start-up (issues 2, 12)"
SEARCH = "cliplab search (indexed folder of --n-search photos, lite, ONNX)"
COMMAND = "HF_HUB_OFFLINE=1 nice .venv/bin/python benchmarks/embed_throughput.py"


def naive_model(model_dir: Path):
    from transformers import CLIPImageProcessorPil, CLIPModel

    return CLIPModel.from_pretrained(model_dir).eval(), CLIPImageProcessorPil.from_pretrained(model_dir)


def naive_loop(model, processor, paths: list[str], out: Path) -> None:
    """The tutorial's loop, one image at a time (model loading is not timed, as for the other rows)."""
    from PIL import Image

    feats = []
    with torch.no_grad():
        for p in paths:
            inputs = processor(images=Image.open(p).convert("RGB"), return_tensors="pt")
            f = model.get_image_features(**inputs)
            f = getattr(f, "pooler_output", f)
            feats.append((f / f.norm(dim=-1, keepdim=True))[0].numpy())
    np.save(out / "naive.npy", np.stack(feats))


def clip_b32() -> Path:
    """The random ViT-B/32-shape CLIP, built once into the cache (a stable folder → a stable ONNX key)."""
    d = cache_root() / "bench" / "clip-b32-random"
    if not (d / "model.safetensors").is_file():
        build_random_clip(d, tiny=False, seed=0)
    return d


def seconds(run) -> float:
    t = time.perf_counter()
    run()
    return time.perf_counter() - t


def best_of(repeat: int, run) -> float:
    """Fastest of `repeat` timed calls: this shared VM's speed swings ±25 % from minute to minute,
    and the fastest run is the one least disturbed by neighbours (timeit's rule). Every row of the
    table, the naive loop included, is measured the same way."""
    return min(seconds(run) for _ in range(repeat))


def pipeline_seconds(enc, paths: list[str], out: Path, repeat: int) -> float:
    api.embed(paths[:8], enc)  # warm-up: sessions, allocations, kernels
    return best_of(repeat, lambda: export.write_image_embeddings(out, api.embed(paths, enc)))


def wall(cmd: list[str], env: dict, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def startup(images: list[str], tmp: Path) -> dict[str, float]:
    """Whole-process times; the search runs on a folder of `images` indexed with lite (ONNX)."""
    import shutil

    folder = tmp / "indexed"
    folder.mkdir()
    for p in images:
        shutil.copy(p, folder)
    exe = str(Path(sys.executable).parent / "cliplab")
    env = {**os.environ, "CLIPLAB_INDEX_HOME": str(tmp / "indexes"), "HF_HUB_OFFLINE": "1"}
    subprocess.run([exe, "index", str(folder)], env=env, check=True, stdout=subprocess.DEVNULL)
    return {
        "cliplab --version": wall([exe, "--version"], env),
        "cliplab --help": wall([exe, "--help"], env),
        SEARCH: wall([exe, "search", "a dog on the grass", "--dir", str(folder)], env),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=128, help="images for the CLIP runs")
    ap.add_argument("--n-lite", type=int, default=512, help="images for the lite runs")
    ap.add_argument("--n-search", type=int, default=200, help="images in the indexed folder that search runs on")
    ap.add_argument("--repeat", type=int, default=3, help="runs per row; the table shows the fastest")
    ap.add_argument("--no-write", action="store_true", help="print the table, leave docs/benchmarks.md alone")
    args = ap.parse_args()
    load_at_start = os.getloadavg()[0]
    images = sorted(str(p) for p in (require_shared() / "data" / "flickr8k-1k" / "images").glob("*.jpg"))
    rows, t = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip_dir, paths = clip_b32(), images[: args.n]
        model, processor = naive_model(clip_dir)
        naive_loop(model, processor, paths[:2], tmp)  # warm-up
        int8 = load(str(clip_dir), runtime="onnx", precision="int8")
        api.embed(paths[:8], int8)  # warm-up
        # The naive loop and the int8 pipeline (the must's two sides) alternate, so both are timed
        # in the same stretches of this VM's drifting speed; each side keeps its fastest run.
        pairs = [
            (
                seconds(lambda: naive_loop(model, processor, paths, tmp)),
                seconds(lambda: export.write_image_embeddings(tmp / "CLIP-int8", api.embed(paths, int8))),
            )
            for _ in range(args.repeat)
        ]
        t["naive"] = min(a for a, _ in pairs)
        rows.append(("CLIP ViT-B/32 (random weights)", "naive loop (torch, 1 image at a time)", args.n, t["naive"]))
        for spec, n in ((str(clip_dir), args.n), ("lite", args.n_lite)):
            label = "CLIP ViT-B/32 (random weights)" if spec != "lite" else "lite"
            for runtime, precision in (("torch", "fp32"), ("onnx", "fp32"), ("onnx", "int8")):
                if spec != "lite" and precision == "int8":  # timed above, paired with the naive loop
                    rows.append((label, f"cliplab pipeline, {runtime_label(int8)}", n, min(b for _, b in pairs)))
                    continue
                with timer(t, "load"):
                    enc = load(spec, runtime=runtime, precision=precision)
                secs = pipeline_seconds(enc, images[:n], tmp / f"{label[:4]}-{runtime}-{precision}", args.repeat)
                rows.append((label, f"cliplab pipeline, {runtime_label(enc)}", n, secs))
                del enc
        starts = startup(images[: args.n_search], tmp)
    naive = args.n / t["naive"]
    rate = {(r[0], r[1]): r[2] / r[3] for r in rows}
    b32_int8 = next(v for (m, p), v in rate.items() if m.startswith("CLIP") and "onnx int8" in p)
    lite_best = max(v for (m, p), v in rate.items() if m == "lite")
    note = (
        "(JPEG folder of Flickr8k photos → vectors on disk; the CLIP model has random weights in the exact "
        "ViT-B/32 shape, built from `../shared/models/clip-vit-b32-config`. Each ONNX row excludes the "
        "one-off export, which is cached.)"
    )
    command = " ".join([COMMAND, *sys.argv[1:]])
    lines = [
        SECTION,
        "",
        f"Command: `{command}`",
        note,
        "",
        f"Machine: {machine()}; load average at start {load_at_start:.1f}",
        "",
        f"| model | path | images | seconds (best of {args.repeat}) | images/s | × naive |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {m} | {p} | {n} | {s:.1f} | {n / s:.1f} | {n / s / naive:.2f} |" for m, p, n, s in rows]
    lines += ["", "| whole process | seconds (median of 3) |", "|---|---:|"]
    lines += [f"| `{k}` | {v:.2f} |" for k, v in starts.items()]
    search = starts[SEARCH]
    per_round = ", ".join(f"{a / b:.2f}×" for a, b in pairs)
    lines += [
        "",
        f"The naive loop and the ViT-B/32 int8 pipeline ran alternately, {args.repeat} rounds; int8 / naive "
        f"per round: {per_round} (the table: each side's fastest round).",
        "",
        (
            f"ViT-B/32 ONNX int8 / naive = **{b32_int8 / naive:.1f}×** (target ≥ 6×, must ≥ 5×); "
            f"lite best = **{lite_best:.0f} img/s** (target ≥ 150, must ≥ 100); "
            f"search = **{search:.2f} s** (target ≤ 1 s)."
        ),
        "",
    ]
    if load_at_start > 2:
        lines += [
            (
                f"Taken while other jobs shared the {os.cpu_count()} cores (load average {load_at_start:.1f}): "
                "absolute rates and start-up times are several times worse than on an idle machine, ratios "
                "less so. Rerun on an idle machine to check the absolute targets."
            ),
            "",
        ]
    lines += [NOTES, ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(text)


def write_section(text: str) -> None:
    """Replace this script's section of docs/benchmarks.md (or the issue-2 one it grew from)."""
    doc = DOC.read_text(encoding="utf-8")
    for head in (SECTION, "## Embedding throughput (issue 2)"):
        if head in doc:
            start = doc.index(head)
            nxt = doc.find("\n## ", start + len(head))
            end = len(doc) if nxt < 0 else nxt + 1
            DOC.write_text(doc[:start] + text + "\n" + doc[end:], encoding="utf-8")
            return
    DOC.write_text(doc.rstrip() + "\n\n" + text + "\n", encoding="utf-8")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
