"""The `lite` recipe's own pieces (the full recipe is `make lite-model`, a benchmark-sized run)."""
from __future__ import annotations

import pandas as pd

from cliplab.train.lite_recipe import hypernym_labels, lite_config


def test_hypernym_labels_pair_images_with_wordnet_ancestors(tmp_path):
    (tmp_path / "images").mkdir()
    lab = pd.DataFrame({"path": ["images/a.jpg", "images/b.jpg"], "wnid": ["n03796401", "n02389026"],
                        "label": ["moving van", "sorrel"], "name": ["moving van", "common sorrel horse"]})
    lab.to_csv(tmp_path / "labels.csv", index=False)
    n = hypernym_labels(tmp_path / "labels.csv", tmp_path / "h.csv")
    out = pd.read_csv(tmp_path / "h.csv")
    assert n == len(out) and list(out.columns) == ["path", "name"]
    van = out[out["path"].str.endswith("a.jpg")]["name"].tolist()
    assert van == ["van", "truck", "motor vehicle"]                    # 3 steps up at most
    assert "horse" in out[out["path"].str.endswith("b.jpg")]["name"].tolist()
    assert out["path"].map(lambda p: p.startswith(str(tmp_path))).all()  # absolute paths


def test_lite_config_never_reads_reporting_sets(tmp_path):
    cfg = lite_config(tmp_path / "shared", tmp_path / "h.csv").validate()
    sources = " ".join(cfg.pairs + cfg.labels)
    assert "cifar" not in sources and "fer2013" not in sources
    assert cfg.split == "train"  # Flickr8k test captions are never trained on
