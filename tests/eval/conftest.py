"""Fast stand-ins for eval tests: a colour 'model' whose right answers are known, and tiny datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cliplab.models.core.base import Encoder, l2_normalize

COLOURS = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220)}


class ColourEncoder(Encoder):
    """Image → its mean RGB; text → the unit vector of the colour word it contains (else all ones)."""

    name = "colour"
    dim = 3
    logit_scale = 10.0
    image_batch_size = 4

    def preprocess(self, image):
        return np.asarray(image.convert("RGB").resize((4, 4)), np.float32).transpose(2, 0, 1) / 255.0

    def encode_image_batch(self, batch):
        return batch.mean(axis=(2, 3))

    def encode_texts(self, texts):
        out = np.ones((len(texts), 3), np.float32)
        for i, t in enumerate(texts):
            for j, c in enumerate(COLOURS):
                if c in t:
                    out[i] = np.eye(3)[j]
        return l2_normalize(out)


@pytest.fixture
def colour_encoder():
    return ColourEncoder()


def write_colour_images(folder, per_class: int = 3, jitter: int = 30, seed: int = 0) -> pd.DataFrame:
    """Solid-ish colour JPEGs, `per_class` of each colour → DataFrame[path, label] (absolute paths)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, rgb in COLOURS.items():
        for i in range(per_class):
            c = tuple(int(np.clip(v + rng.integers(-jitter, jitter + 1), 0, 255)) for v in rgb)
            p = folder / f"{label}_{i}.png"
            Image.new("RGB", (16, 12), c).save(p)
            rows.append((str(p), label))
    return pd.DataFrame(rows, columns=["path", "label"])


@pytest.fixture
def colour_data(tmp_path):
    """labels.csv of 3 colours × 4 images."""
    df = write_colour_images(tmp_path / "img", per_class=4)
    csv = tmp_path / "labels.csv"
    df.to_csv(csv, index=False)
    return csv
