"""Decode + preprocess ms/photo for each format cliplab reads, at the same pixel count (issue 22).

    HF_HUB_OFFLINE=1 nice -n 10 python benchmarks/decode_bench.py --n 4 --reps 3

Shared ImageNet photos are upscaled to one size (default 4032×3024, a 12 MP phone photo) and
written as JPEG (quality 90), HEIC (quality 80, with and without the 320×240 thumbnail iPhones
store), AVIF (Pillow, quality 80) and DNG (a 16-bit Bayer mosaic, tests/data/dng.py; with a full-size
JPEG preview, and without one). Each file goes through `load_image` as the indexer calls it —
`draft=224`, the model's input size — or with `draft=None` (a full decode), then through a plain
CLIP preprocess (shortest side 224, centre crop, float32 CHW). The median of `--reps` passes over
the `--n` photos is reported. HEIC is also decoded with pillow-heif's DECODE_THREADS at 1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.data.dng: the DNG writer

from cliplab.data.images import load_image  # noqa: E402
from cliplab.data.shared import shared_dir  # noqa: E402

INPUT = 224


def preprocess(im: Image.Image) -> np.ndarray:
    w, h = im.size
    s = INPUT / min(w, h)
    im = im.resize((max(INPUT, round(w * s)), max(INPUT, round(h * s))), Image.Resampling.BICUBIC)
    left, top = (im.width - INPUT) // 2, (im.height - INPUT) // 2
    a = np.asarray(im.crop((left, top, left + INPUT, top + INPUT)), np.float32) / 255.0
    return a.transpose(2, 0, 1)


def make_files(out: Path, n: int, size: tuple[int, int]) -> dict[str, list[Path]]:
    from tests.data.dng import write_dng

    root = shared_dir()
    if root is None:
        sys.exit("benchmark needs the shared data folder (../shared or $CLIPLAB_SHARED)")
    photos = sorted((root / "data" / "imagenet-samples" / "images").glob("*.jpg"))[:n]
    files: dict[str, list[Path]] = {}
    for i, p in enumerate(photos):
        big = load_image(p).resize(size, Image.Resampling.BICUBIC)
        big.save(f := out / f"{i}.jpg", quality=90)
        files.setdefault("jpg", []).append(f)
        big.save(f := out / f"{i}.heic", quality=80)
        files.setdefault("heic", []).append(f)
        big.save(f := out / f"{i}-thumb.heic", quality=80, thumbnails=[320])
        files.setdefault("heic+thumb", []).append(f)
        big.save(f := out / f"{i}.avif", quality=80, speed=8)
        files.setdefault("avif", []).append(f)
        files.setdefault("dng+preview", []).append(write_dng(out / f"{i}-preview.dng", big, preview=big))
        files.setdefault("dng", []).append(write_dng(out / f"{i}.dng", big))
    return files


def ms_per_photo(paths: list[Path], draft: int | None, reps: int) -> float:
    preprocess(load_image(paths[0], draft=draft))  # warm-up: libraries loaded, caches filled
    runs = []
    for _ in range(reps):
        t = time.perf_counter()
        for p in paths:
            preprocess(load_image(p, draft=draft))
        runs.append((time.perf_counter() - t) / len(paths) * 1000)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4, help="photos per format")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--size", default="4032x3024")
    args = ap.parse_args()
    size = tuple(int(x) for x in args.size.lower().split("x"))
    import pillow_heif

    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(Path(tmp), args.n, size)
        cases = [
            ("JPEG, full decode", "jpg", None),
            ("JPEG, draft (reduced-scale decode)", "jpg", INPUT),
            ("HEIC, full decode", "heic", INPUT),
            ("HEIC with a 320×240 thumbnail", "heic+thumb", INPUT),
            ("AVIF, full decode", "avif", INPUT),
            ("RAW (DNG), embedded full-size JPEG preview", "dng+preview", INPUT),
            ("RAW (DNG), half-size demosaic", "dng", INPUT),
        ]
        rows = [(name, ms_per_photo(files[kind], draft, args.reps)) for name, kind, draft in cases]
        threads = pillow_heif.options.DECODE_THREADS
        pillow_heif.options.DECODE_THREADS = 1
        rows.insert(3, ("HEIC, full decode, DECODE_THREADS=1", ms_per_photo(files["heic"], INPUT, args.reps)))
        pillow_heif.options.DECODE_THREADS = threads
    jpeg_full, jpeg_draft = rows[0][1], rows[1][1]
    print(f"{size[0]}×{size[1]}, {args.n} photos, median of {args.reps}; HEIC DECODE_THREADS={threads} unless said\n")
    print("| format (load_image draft=224 unless said) | ms/photo | × JPEG full | × JPEG draft |")
    print("|---|---|---|---|")
    for name, ms in rows:
        print(f"| {name} | {ms:.0f} | {ms / jpeg_full:.2f} | {ms / jpeg_draft:.2f} |")


if __name__ == "__main__":
    main()
