"""End to end on the shared real data with real weights (small fixed subsets, one loaded encoder)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import cliplab.cli  # noqa: F401  (registers every command)
from cliplab.cli.app import app
from cliplab.eval import evaluate_instance, evaluate_probe, evaluate_zeroshot

pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.fixture(scope="module")
def cifar_subset(shared, tmp_path_factory):
    """10 CIFAR-10-dev images per class (the first ones in labels.csv), absolute paths."""
    root = shared / "data" / "cifar10-dev"
    df = pd.read_csv(root / "labels.csv").groupby("label", sort=False).head(10)
    df["path"] = [str(root / p) for p in df["path"]]
    csv = tmp_path_factory.mktemp("cifar") / "labels.csv"
    df.to_csv(csv, index=False)
    return csv


def test_zeroshot_cli_reproduces_the_api(conse_encoder, cifar_subset):
    api = evaluate_zeroshot(conse_encoder, cifar_subset)
    r = runner.invoke(app, ["eval", "zeroshot", str(cifar_subset), "--model", "conse", "--json"])
    assert r.exit_code == 0, r.output
    cli = json.loads(r.stdout)["results"]["conse"]
    for key in ("top1", "top5", "mean_per_class_recall", "n"):
        assert cli[key] == api[key]
    assert cli["n"] == 100 and cli["per_class_accuracy"] == api["per_class_accuracy"]
    assert api["top1"] > 0.2  # clearly above chance (0.1) on CIFAR-10 for ConSE


def test_retrieval_two_models_one_table(shared, tmp_path):
    caps = pd.read_csv(shared / "data" / "flickr8k-1k" / "captions.csv")
    keep = pd.unique(caps.loc[caps["split"] == "test", "path"])[:20]
    sub = caps[caps["path"].isin(keep)].copy()
    sub["path"] = [str(shared / "data" / "flickr8k-1k" / p) for p in sub["path"]]
    sub.to_csv(tmp_path / "captions.csv", index=False)
    r = runner.invoke(
        app,
        [
            "eval",
            "retrieval",
            str(tmp_path / "captions.csv"),
            "--split",
            "test",
            "--model",
            "conse",
            "--model",
            "preclip",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.count("retrieval on") == 1 and "conse" in r.stdout and "preclip" in r.stdout
    d = json.loads((tmp_path / "out" / "results.json").read_text())
    assert list(d["results"]) == ["conse", "preclip"]
    for res in d["results"].values():
        assert (res["n_images"], res["n_texts"]) == (20, 100)
        for direction in ("text_to_image", "image_to_text"):
            m = res[direction]
            assert {"R@1", "R@5", "R@10", "median_rank", "mAP"} <= set(m)
            assert 0 <= m["R@1"] <= m["R@5"] <= m["R@10"] <= 1 and m["median_rank"] >= 1
    # ConSE shares a space between its towers; the PCA baseline does not
    assert d["results"]["conse"]["text_to_image"]["R@5"] > d["results"]["preclip"]["text_to_image"]["R@5"]


def test_missing_files_are_reported_and_the_rest_evaluated(conse_encoder, cifar_subset, tmp_path):
    df = pd.read_csv(cifar_subset).groupby("label").head(2)
    df = pd.concat([df, pd.DataFrame({"path": [str(tmp_path / "gone.jpg")], "label": ["cat"]})])
    (tmp_path / "empty.jpg").write_bytes(b"")
    df = pd.concat([df, pd.DataFrame({"path": [str(tmp_path / "empty.jpg")], "label": ["dog"]})])
    df.to_csv(tmp_path / "labels.csv", index=False)
    r = evaluate_zeroshot(conse_encoder, tmp_path / "labels.csv")
    assert r["n"] == 20 and r["n_failed"] == 2
    assert sorted(f["reason"] for f in r["failed"]) == ["empty file (0 bytes)", "file not found"]


def test_probe_and_pooled_instance_on_real_images(conse_encoder, cifar_subset):
    small = pd.read_csv(cifar_subset).groupby("label").head(4)
    p = evaluate_probe(conse_encoder, small, shots="1,all", draws=2)
    assert p["n_train"] == p["n_test"] == 20 and 0.1 < p["accuracy"]["all"] <= 1
    small = small.groupby("label").head(2)
    for pooling in ("none", "gem", "rmac"):
        r = evaluate_instance(conse_encoder, small, pooling=pooling)
        m = r["protocols"]["labels"]
        assert r["n_queries"] == 20 and 0 < m["mAP"] <= 1 and r["pooling"] == pooling
    assert r["model"]["dim"] == 1280 and r["model"]["pooling"] == "rmac"


def test_feature_maps_shape(conse_encoder):
    from PIL import Image

    from cliplab.eval.instance import descriptor_encoder

    enc = descriptor_encoder(conse_encoder, "gem")  # pools the image tower's last map
    x = np.stack([enc.preprocess(Image.new("RGB", (64, 48), (120, 30, 200)))])
    assert tuple(enc.feature_map(x).shape) == (1, 1280, 7, 7)
    assert enc.encode_image_batch(x).shape == (1, 1280)
