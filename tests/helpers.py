"""Small deterministic stand-ins and image makers for fast tests (no model weights)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from cliplab.models.core.base import Encoder, l2_normalize


def stable_seed(text: str) -> int:
    """A seed from the text that is the same in every process (Python's hash() changes with PYTHONHASHSEED)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


class ToyEncoder(Encoder):
    """Image → its mean colour (+1 bias dim); text → a vector seeded by a stable hash of the text."""

    name = "toy"
    dim = 4
    logit_scale = 10.0
    image_batch_size = 3

    def preprocess(self, image):
        return np.asarray(image.convert("RGB").resize((8, 8)), np.float32).transpose(2, 0, 1) / 255.0

    def encode_image_batch(self, batch):
        m = batch.mean(axis=(2, 3))
        return np.concatenate([m, np.ones((len(m), 1), np.float32)], axis=1)

    def encode_texts(self, texts):
        rows = [np.random.default_rng(stable_seed(t)).normal(size=self.dim) for t in texts]
        return l2_normalize(np.array(rows, np.float32).reshape(len(texts), self.dim))


def make_image(path: Path, size=(40, 30), color=(200, 30, 30), mode="RGB", fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color if mode == "RGB" else 128).save(path, format=fmt)
    return path


def make_bad_files(folder: Path) -> dict[str, Path]:
    """The four kinds of bad file the issues name: truncated JPEG, 0-byte .jpg, text as .png, 20000² PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    good = make_image(folder / "tmp_full.jpg", size=(300, 200))
    data = good.read_bytes()
    good.unlink()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.png").write_text("this is not an image\n")
    # Mode "1" keeps the 400-megapixel canvas at 50 MB in memory; the file itself is tiny.
    Image.new("1", (20000, 20000)).save(folder / "huge.png")
    return {n: folder / n for n in ("truncated.jpg", "empty.jpg", "notes.png", "huge.png")}
