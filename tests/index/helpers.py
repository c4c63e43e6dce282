"""Test helpers: a tiny deterministic encoder (no weights, microseconds per image) and real-image folders."""

from __future__ import annotations

import csv
import hashlib
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from PIL.ExifTags import GPS, IFD, Base

from cliplab.models.core.base import Encoder, l2_normalize


class TinyEncoder(Encoder):
    """Colour layout of a 4×4 thumbnail (48-d). Same image → same vector; enough for index mechanics."""

    name = "tiny-test"
    dim = 48
    image_batch_size = 4

    def __init__(self, delay: float = 0.0):
        self.delay = delay  # seconds per batch, to make a run slow enough to kill part-way

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return np.asarray(image.convert("RGB").resize((4, 4)), np.float32).transpose(2, 0, 1) / 255.0

    def encode_image_batch(self, batch: np.ndarray) -> np.ndarray:
        if self.delay:
            time.sleep(self.delay)
        return batch.reshape(len(batch), -1) - 0.5

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        seeds = [int(hashlib.sha1(t.encode()).hexdigest()[:8], 16) for t in texts]
        return l2_normalize(np.stack([np.random.default_rng(s).standard_normal(self.dim) for s in seeds]))


def cifar_subset(shared: Path, dest: Path, per_class: int = 10) -> dict[str, str]:
    """Symlink the first `per_class` images of each CIFAR-10 class into dest/<class>/; relpath → label."""
    root = shared / "data" / "cifar10-dev"
    with open(root / "labels.csv", newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["path"])
    taken: dict[str, int] = {}
    labels = {}
    for r in rows:
        if taken.get(r["label"], 0) >= per_class:
            continue
        taken[r["label"]] = taken.get(r["label"], 0) + 1
        rel = f"{r['label']}/{Path(r['path']).name}"
        (dest / r["label"]).mkdir(parents=True, exist_ok=True)
        os.symlink(root / r["path"], dest / rel)
        labels[rel] = r["label"]
    return labels


def copy_images(shared: Path, dest: Path, n: int) -> list[str]:
    """Copy n real CIFAR images (real files, so they can be modified) into dest; returns relpaths."""
    src = sorted((shared / "data" / "cifar10-dev" / "images").rglob("*.jpg"))[:n]
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for i, p in enumerate(src):
        rel = f"img{i:03d}.jpg"
        (dest / rel).write_bytes(p.read_bytes())
        out.append(rel)
    return out


CAMERAS = [("Canon", "EOS 5D"), ("NIKON CORPORATION", "NIKON D750"), ("Apple", "iPhone 12")]


def make_dated_folder(folder, n=36):
    """n photos: years 2017–2020, three cameras, every third portrait, every fourth with GPS, a few PNGs."""
    folder.mkdir(parents=True)
    for i in range(n):
        exif = Image.Exif()
        exif[Base.Make], exif[Base.Model] = CAMERAS[i % 3]
        exif.get_ifd(IFD.Exif)[Base.DateTimeOriginal] = f"{2017 + i % 4}:{1 + i % 12:02d}:15 12:00:00"
        if i % 4 == 0:
            exif.get_ifd(IFD.GPSInfo).update(
                {
                    GPS.GPSLatitudeRef: "N",
                    GPS.GPSLatitude: (48.0, 51.0, 0.0),
                    GPS.GPSLongitudeRef: "E",
                    GPS.GPSLongitude: (2.0, 21.0, 0.0),
                }
            )
        size = (30, 60) if i % 3 == 0 else (64, 40)
        im = Image.new("RGB", size, ((i * 37) % 256, (i * 91) % 256, (i * 13) % 256))
        name = f"p{i:02d}.png" if i % 9 == 8 else f"IMG_{i:04d}.jpg"
        im.save(folder / name, exif=exif)
    return folder
