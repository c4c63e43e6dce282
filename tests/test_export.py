"""Embedding writers: arrays, metadata that points into them, manifests, atomic files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from cliplab import export
from cliplab.pipeline import EmbedResult


def result() -> EmbedResult:
    vecs = np.eye(3, dtype=np.float32)[:2]
    return EmbedResult(
        vectors=vecs,
        paths=["a.jpg", "bad.jpg", "b.jpg"],
        status=["ok", "failed", "ok"],
        errors=[None, "empty file (0 bytes)", None],
        rows=[0, -1, 1],
        model={"model": "toy", "dim": 3},
    )


def test_image_embeddings_metadata_and_manifest(tmp_path):
    m = export.write_image_embeddings(tmp_path / "run", result())
    emb = np.load(tmp_path / "run" / "image_embeddings.npy")
    meta = pd.read_csv(tmp_path / "run" / "image_metadata.csv")
    assert emb.shape == (2, 3) and emb.dtype == np.float32
    assert meta["row"].tolist() == [0, -1, 1] and meta["status"].tolist() == ["ok", "failed", "ok"]
    assert meta.loc[1, "error"] == "empty file (0 bytes)"
    np.testing.assert_array_equal(emb[meta.loc[2, "row"]], [0, 1, 0])  # row points at its vector
    saved = json.loads((tmp_path / "run" / "image_manifest.json").read_text())
    assert saved == m and (m["model"], m["dim"], m["count"], m["failed"]) == ("toy", 3, 2, 1)
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_text_embeddings_and_similarity(tmp_path):
    export.write_text_embeddings(tmp_path, ["a cat", "a dog"], np.ones((2, 3), np.float32), {"model": "toy", "dim": 3})
    assert pd.read_csv(tmp_path / "text_metadata.csv")["text"].tolist() == ["a cat", "a dog"]
    assert json.loads((tmp_path / "text_manifest.json").read_text())["count"] == 2
    export.write_similarity(tmp_path / "deep" / "sim.csv", np.array([[0.5, -0.25]]), ["x.jpg"], ["cat", "dog"])
    df = pd.read_csv(tmp_path / "deep" / "sim.csv", index_col="image")
    assert df.loc["x.jpg"].tolist() == [0.5, -0.25] and list(df.columns) == ["cat", "dog"]


def test_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "v.npy"
    export.save_npy(path, np.zeros(3))

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", boom)
    try:
        export.save_npy(path, np.ones(3))
    except OSError:
        pass
    np.testing.assert_array_equal(np.load(path), np.zeros(3))
