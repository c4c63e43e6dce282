"""Make a photo library for the search benchmarks: N photos in year/month folders, from the shared
photos, with the variety a phone and a camera give — sizes, EXIF dates, cameras, orientation
(rotated by an EXIF tag or in pixels), GPS on some, PNG screenshots and file names of several kinds.

    python benchmarks/make_library.py OUT [--n 100000] [--seed 0]

Deterministic in --seed. Each photo is a shared photo, resized (longest side 160–640 px) and
sometimes cropped or mirrored, so near-copies exist as they do in real libraries. About 19 kB a
photo on disk (1.9 GB for 100,000), ~5.5 s per 2,000 photos on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from PIL.ExifTags import GPS, IFD, Base

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import require_shared  # noqa: E402

CAMERAS = [
    ("Apple", "iPhone 12"),
    ("Apple", "iPhone 15 Pro"),
    ("samsung", "SM-G991B"),
    ("Canon", "Canon EOS 80D"),
    ("NIKON CORPORATION", "NIKON D750"),
    ("SONY", "ILCE-7M3"),
    ("Google", "Pixel 7"),
    (None, None),  # scans and downloads: no camera
]
START = dt.datetime(2012, 1, 1)


def sources(shared: Path) -> list[Path]:
    d = shared / "data"
    return sorted((d / "flickr8k-1k" / "images").glob("*.jpg")) + sorted(
        (d / "imagenet-samples" / "images").glob("*.jpg")
    )


def one(args: tuple) -> str:
    i, src, out, seed = args
    rng = np.random.default_rng([seed, i])
    when = START + dt.timedelta(seconds=int(rng.integers(0, 14 * 365 * 86400)))
    im = Image.open(src).convert("RGB")
    side = int(rng.integers(160, 641))
    im.thumbnail((side, side))
    if rng.random() < 0.2:
        w, h = im.size
        im = im.crop((int(w * 0.1), int(h * 0.1), int(w * 0.9), int(h * 0.9)))
    if rng.random() < 0.1:
        im = ImageOps.mirror(im)
    exif = Image.Exif()
    make, model = CAMERAS[int(rng.integers(len(CAMERAS)))]
    screenshot = make is None and rng.random() < 0.5
    if make:
        exif[Base.Make], exif[Base.Model] = make, model
        sub = exif.get_ifd(IFD.Exif)
        sub[Base.DateTimeOriginal] = when.strftime("%Y:%m:%d %H:%M:%S")
        if rng.random() < 0.3:  # portrait shots stored sideways with a rotation tag
            im = im.transpose(Image.Transpose.ROTATE_90)
            exif[Base.Orientation] = 6
        if rng.random() < 0.35:
            lat, lon = float(rng.uniform(-60, 70)), float(rng.uniform(-170, 170))
            g = exif.get_ifd(IFD.GPSInfo)
            g[GPS.GPSLatitudeRef], g[GPS.GPSLongitudeRef] = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
            g[GPS.GPSLatitude] = (float(int(abs(lat))), float(int(abs(lat) * 60 % 60)), 0.0)
            g[GPS.GPSLongitude] = (float(int(abs(lon))), float(int(abs(lon) * 60 % 60)), 0.0)
    folder = out / f"{when.year}" / f"{when.month:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    if screenshot:
        path = folder / f"Screenshot {when:%Y-%m-%d at %H.%M.%S} {i}.png"
        im.save(path, exif=exif)
    else:
        stem = f"IMG_{i:06d}" if make in ("Apple", "Canon", None) else f"DSC{i:06d}" if make else f"scan-{i}"
        path = folder / f"{stem}.jpg"
        im.save(path, quality=int(rng.integers(60, 92)), exif=exif)
    ts = when.timestamp()
    os.utime(path, (ts, ts))
    return str(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()
    src = sources(require_shared())
    a.out.mkdir(parents=True, exist_ok=True)
    jobs = [(i, src[i % len(src)], a.out, a.seed) for i in range(a.n)]
    with ProcessPoolExecutor(a.workers) as pool:
        for done, _ in enumerate(pool.map(one, jobs, chunksize=256), 1):
            if done % 10_000 == 0:
                print(f"{done:,} photos", file=sys.stderr)
    print(f"{a.n:,} photos in {a.out}")


if __name__ == "__main__":
    main()
