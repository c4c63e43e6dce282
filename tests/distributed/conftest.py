"""A small image job: a folder (10 images + a bad file), a .txt list and a webdataset shard."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pandas as pd
import pytest

from tests.helpers import make_image


@pytest.fixture
def job(tmp_path):
    folder = tmp_path / "photos"
    for i in range(10):
        make_image(folder / f"p{i:02d}.png", color=(25 * i, 255 - 20 * i, (70 * i) % 256))
    (folder / "broken.jpg").write_bytes(b"not an image")
    tar = tmp_path / "00000.tar"
    with tarfile.open(tar, "w") as tf:
        for i in range(3):
            data = make_image(tmp_path / "t" / f"s{i}.png", color=(200, 40 * i, 90)).read_bytes()
            for name, blob in ((f"s{i}.png", data), (f"s{i}.txt", f"sample {i}".encode())):
                info = tarfile.TarInfo(name)
                info.size = len(blob)
                tf.addfile(info, io.BytesIO(blob))
    return {"inputs": [str(folder), str(tar)], "folder": folder, "tar": tar, "images": 14}


def read_all(out):
    """(metadata of every shard in id order, the matching vectors as float32)."""
    from cliplab.data.shards import list_shards

    shards = list_shards(out)
    meta = pd.concat([s.metadata() for s in shards], ignore_index=True)
    vecs = np.concatenate([np.asarray(s.vectors(), np.float32) for s in shards])
    return meta, vecs


def cosines(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
