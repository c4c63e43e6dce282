"""The core commands end to end, through the real CLI and the real `lite` model."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cliplab.cli import app
from tests.helpers import make_bad_files

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def photos(shared, tmp_path_factory):
    """Six real Flickr8k photos plus the four kinds of bad file."""
    folder = tmp_path_factory.mktemp("photos")
    for p in sorted((shared / "data" / "flickr8k-1k" / "images").glob("*.jpg"))[:6]:
        (folder / p.name).symlink_to(p)
    make_bad_files(folder / "bad")
    return folder


def test_embed_folder_with_bad_files(photos, tmp_path, lite_encoder):
    r = run("embed", photos, "--out", tmp_path / "run", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["images"] == 6 and summary["model"] == "lite"
    assert {f["path"].split("/")[-1] for f in summary["failed"]} == {
        "truncated.jpg",
        "empty.jpg",
        "notes.png",
        "huge.png",
    }
    assert all(f["error"] for f in summary["failed"])
    emb = np.load(tmp_path / "run" / "image_embeddings.npy")
    meta = pd.read_csv(tmp_path / "run" / "image_metadata.csv")
    manifest = json.loads((tmp_path / "run" / "image_manifest.json").read_text())
    assert emb.shape == (6, lite_encoder.dim) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert len(meta) == 10 and (meta["status"] == "ok").sum() == 6
    assert meta.loc[meta.status == "failed", "error"].str.len().min() > 0
    assert sorted(meta.loc[meta.status == "ok", "row"]) == list(range(6))
    assert manifest["model"] == "lite" and manifest["dim"] == lite_encoder.dim and manifest["count"] == 6
    # The stored vector for a row equals embedding that image on its own.
    first = meta[meta.row == 0].iloc[0]["path"]
    from cliplab import embed

    np.testing.assert_allclose(embed([first], lite_encoder).vectors[0], emb[0], atol=1e-4)


def test_nothing_embeddable_exits_non_zero(tmp_path, lite_encoder):
    make_bad_files(tmp_path / "bad")
    r = run("embed", tmp_path / "bad", "--out", tmp_path / "run")
    assert r.exit_code == 1
    assert "embedded 0 images (4 skipped)" in r.stdout


def test_embed_texts_and_similarity(photos, tmp_path, lite_encoder):
    caps = tmp_path / "caps.txt"
    caps.write_text("a dog runs on the grass\n\na child on a playground\na man riding a bike\n")
    r = run("embed", "--texts", caps, "--out", tmp_path / "t")
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "t" / "text_embeddings.npy").shape == (3, lite_encoder.dim)
    assert list(pd.read_csv(tmp_path / "t" / "text_metadata.csv")["text"])[1] == "a child on a playground"
    r = run("similarity", photos, "--texts", caps, "--out", tmp_path / "sim.csv")
    assert r.exit_code == 0, r.output
    sim = pd.read_csv(tmp_path / "sim.csv", index_col=0)
    assert sim.shape == (6, 3) and list(sim.columns)[2] == "a man riding a bike"
    assert ((sim.to_numpy() >= -1) & (sim.to_numpy() <= 1)).all()


def test_classify_json_and_table(shared, lite_encoder):
    img = shared / "data" / "imagenet-samples" / "images" / "n01443537.jpg"  # goldfish
    r = run("classify", img, "--labels", "goldfish,tabby cat,sports car", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    preds = out["results"][0]["predictions"]
    assert out["model"] == "lite" and preds[0]["label"] == "goldfish"
    assert sum(p["prob"] for p in preds) == pytest.approx(1.0, abs=1e-4)
    r = run("classify", img, "--labels", "goldfish,tabby cat", "--templates", "clip80", "-k", "1", "--format", "table")
    assert r.exit_code == 0 and "goldfish" in r.stdout and "80 template" in r.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["classify", "nope.jpg", "--labels", "a,b"], "no such file"),
        (["classify", ".", "--labels", "a,b", "--model", "no-such-model"], "unknown model"),
        (["classify", ".", "--labels", "a,b", "--model", "someorg/uncached-clip"], "--model lite"),
        (["classify", ".", "--labels", "a,b", "--templates", "bogus"], "templates"),
    ],
)
def test_user_errors_are_one_line(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = run(*args)
    assert r.exit_code == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.output


def test_empty_folder_and_missing_texts_are_one_line_errors(tmp_path, lite_encoder):
    (tmp_path / "empty").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("stored before")
    r = run("embed", tmp_path / "empty", "--out", tmp_path / "out")
    assert r.exit_code == 2 and "no images found" in r.stderr
    r = run("embed", "--texts", tmp_path / "nope.txt", "--out", tmp_path / "out")
    assert r.exit_code == 2 and "no such texts file" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    # A failed run leaves what was already in the output folder untouched.
    assert (tmp_path / "out" / "keep.txt").read_text() == "stored before"


def test_embed_interrupted_says_what_was_kept(photos, tmp_path, lite_encoder, monkeypatch):
    """Ctrl-C: the plain layout says nothing was written (and how to get a resumable run); the
    shard layout counts the finished shards it keeps. Exit 130 both times, no traceback."""
    import cliplab.api
    import cliplab.cli.scale
    from cliplab.data.writers import write_shard

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cliplab.api, "embed", interrupt)
    r = runner.invoke(app, ["embed", str(photos), "--out", str(tmp_path / "a")])
    assert r.exit_code == 130 and "nothing written to" in r.stderr and "--layout clip-retrieval" in r.stderr
    assert not (tmp_path / "a" / "image_embeddings.npy").exists() and "Traceback" not in r.output

    def two_shards_then_interrupt(inputs, out, *a, **k):
        for i in range(2):
            write_shard(out, i, np.ones((1, 4), np.float32), pd.DataFrame({"image_path": [f"{i}.jpg"]}))
        raise KeyboardInterrupt

    monkeypatch.setattr(cliplab.cli.scale, "embed_shards", two_shards_then_interrupt)
    r = runner.invoke(app, ["embed", str(photos), "--out", str(tmp_path / "b"), "--layout", "clip-retrieval"])
    assert r.exit_code == 130 and "2 shard(s) finished and kept" in r.stderr, r.output
