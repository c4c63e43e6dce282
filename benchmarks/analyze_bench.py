"""How long `cliplab analyze` takes on the Flickr8k test split (200 images, 1,000 captions) with
preclip, conse and lite; prints a markdown snippet for docs/benchmarks.md.

    python benchmarks/analyze_bench.py [--out /tmp/analyze-bench] [--models preclip conse lite]

Runs the same code path as
    cliplab analyze ../shared/data/flickr8k-1k/captions.csv --split test \
        --model preclip --model conse --model lite --clusters 5 --out results/flickr8k-test
Flickr8k has no categories, so k-means runs with --clusters 5 (timed, not scored) and the
category scores are absent; the retrieval and matched-vs-mismatched numbers are real.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="results folder (default: a temporary one)")
    ap.add_argument("--models", nargs="+", default=["preclip", "conse", "lite"])
    ap.add_argument("--split", default="test")
    ap.add_argument("--clusters", type=int, default=5)
    args = ap.parse_args()

    from cliplab.analysis import analyze, load_dataset
    from cliplab.analysis.report import fmt
    from cliplab.data.shared import shared_path
    from cliplab.models import load_encoder

    captions = shared_path("data", "flickr8k-1k", "captions.csv")
    if captions is None:
        print("shared data ../shared/data/flickr8k-1k is absent; set CLIPLAB_SHARED", file=sys.stderr)
        return 2
    out = args.out or tempfile.mkdtemp(prefix="analyze-bench-")
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    t0, cpu0 = time.perf_counter(), time.process_time()
    ds = load_dataset(captions, split=args.split)
    t_data = time.perf_counter() - t0
    loads, encoders = {}, []
    for spec in args.models:
        t = time.perf_counter()
        encoders.append(load_encoder(spec))
        loads[spec] = time.perf_counter() - t
    t = time.perf_counter()
    summary = analyze(ds, encoders, out, clusters=args.clusters, progress=sys.stderr.isatty())
    t_analyze = time.perf_counter() - t
    total, cpu = time.perf_counter() - t0, time.process_time() - cpu0

    cmd = (
        f"cliplab analyze ../shared/data/flickr8k-1k/captions.csv --split {args.split} "
        + " ".join(f"--model {m}" for m in args.models)
        + f" --clusters {args.clusters} --out results/flickr8k-test"
    )
    import torch

    lines = [
        f"### `cliplab analyze`: Flickr8k {args.split} split ({len(ds.images)} images, "
        f"{len(ds.captions):,} captions), {len(args.models)} models",
        "",
        f"Command: `{cmd}`  ",
        "Benchmark: `python benchmarks/analyze_bench.py`",
        "",
        "| model | load s | embed images s | embed texts s | scores s | plots s | model total s "
        "| gap (sd) | image→caption top-1 | caption→image top-1 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for spec, (slug, m) in zip(args.models, summary["models"].items()):
        tm = m["timings"]
        lines.append(
            f"| {slug} | {loads[spec]:.1f} | {tm['embed_images_s']:.1f} | {tm['embed_texts_s']:.1f} | "
            f"{tm['scores_s']:.1f} | {tm['plots_s']:.1f} | {tm['total_s']:.1f} | "
            f"{fmt(m['gap'], 'signed')} ({fmt(m['gap_in_sd'], 'signed')}) | {fmt(m['i2t_top1'], 'pct')} | "
            f"{fmt(m['t2i_top1'], 'pct')} |"
        )
    lines += [
        "",
        f"Total wall time {total:.1f} s, CPU time {cpu:.1f} s (dataset {t_data:.1f} s, model loading {sum(loads.values()):.1f} s, "
        f"analysis + report {t_analyze:.1f} s). Plots: heatmap, PCA + t-SNE projections of "
        f"{len(ds.images) + len(ds.captions):,} points, k-means contact sheet per model. "
        "The first model also pays the one-off TorchScript trace of the EfficientNet tower.",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), load average {load_avg:.1f} at start, "
        f"{dt.date.today().isoformat()}. Results in `{out}`.",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
