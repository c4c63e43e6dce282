"""Output writers: arrays, metadata that points into them, manifests, atomic files, one layout per folder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import cliplab
from cliplab.data import writers as export
from cliplab.data.atomic import atomic_write_bytes
from cliplab.errors import OutputError
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
    assert m["cliplab_version"] == cliplab.__version__  # later releases know what wrote it
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


def test_one_layout_per_folder(tmp_path):
    """Writing our layout over clip-retrieval shards is refused; --overwrite clears only those files."""
    export.write_shard(tmp_path, 0, np.ones((1, 3), np.float32), pd.DataFrame({"image_path": ["a.jpg"]}))
    export.write_shards_manifest(tmp_path, {"model": "toy"})
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="clip-retrieval layout"):
        export.check_out_dir(tmp_path, "cliplab")
    export.check_out_dir(tmp_path, "clip-retrieval")  # the same layout again: fine (resumes)
    export.check_out_dir(tmp_path, "cliplab", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    export.write_image_embeddings(tmp_path, result())
    with pytest.raises(OutputError, match="cliplab layout"):
        export.check_out_dir(tmp_path, "clip-retrieval")


def test_atomic_files_get_the_usual_permissions(tmp_path):
    import os

    old = os.umask(0o022)
    os.umask(old)
    atomic_write_bytes(tmp_path / "f.bin", b"x")
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o666 & ~old
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temp file left
