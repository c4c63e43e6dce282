"""The `lite` recipe's own pieces (the full recipe is `make lite-model`, a benchmark-sized run)."""

from __future__ import annotations

import json

import pandas as pd
import torch

from cliplab.models.trained.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_checkpoint
from tools.lite_recipe import (
    FUSION_WEIGHT,
    breadth_mask,
    build,
    fer_parts,
    hypernym_labels,
    lite_config,
    prepare,
)


def test_hypernym_labels_pair_images_with_wordnet_ancestors(tmp_path):
    (tmp_path / "images").mkdir()
    lab = pd.DataFrame(
        {
            "path": ["images/a.jpg", "images/b.jpg"],
            "wnid": ["n03796401", "n02389026"],
            "label": ["moving van", "sorrel"],
            "name": ["moving van", "common sorrel horse"],
        }
    )
    lab.to_csv(tmp_path / "labels.csv", index=False)
    n = hypernym_labels(tmp_path / "labels.csv", tmp_path / "h.csv")
    out = pd.read_csv(tmp_path / "h.csv")
    assert n == len(out) and list(out.columns) == ["path", "name"]
    van = out[out["path"].str.endswith("a.jpg")]["name"].tolist()
    assert van == ["van", "truck", "motor vehicle"]  # 3 steps up at most
    assert "horse" in out[out["path"].str.endswith("b.jpg")]["name"].tolist()
    assert out["path"].map(lambda p: p.startswith(str(tmp_path))).all()  # absolute paths


def test_training_tables_keep_every_reporting_set_out(shared, tmp_path):
    files = prepare(shared, tmp_path)
    data = shared / "data"
    im = pd.read_csv(data / "imagenet-samples" / "labels.csv")
    breadth = {str((data / "imagenet-samples" / p).resolve()) for p in im["path"][breadth_mask(len(im))]}
    trained = pd.read_csv(files["imagenet"])
    assert len(breadth) == 250 and len(trained) == 750 and not breadth & set(trained["path"])
    assert not breadth & set(pd.read_csv(files["hypernyms"])["path"])
    fer = pd.read_csv(data / "fer2013-dev" / "labels.csv")
    parts = fer_parts(fer["label"])
    train_part = {str((data / "fer2013-dev" / p).resolve()) for p in fer["path"][parts == "train"]}
    caps = pd.read_csv(files["captions"])
    faces = caps[caps["path"].str.contains("fer2013-dev")]
    assert set(faces["path"]) == train_part and len(faces) == 4 * len(train_part)
    assert "a photo of a happy face." in set(faces["caption"])
    assert 0.25 < len(train_part) / len(fer) < 0.35 and (parts == "report").mean() > 0.45
    assert set(caps["split"]) == {"train"}  # Flickr8k test captions are never trained on
    assert caps["path"].str.contains("flickr8k-1k").sum() == 4000
    cfg = lite_config(files).validate()
    assert "cifar" not in " ".join(cfg.pairs + cfg.labels)


def test_fer_parts_are_seeded_and_stratified():
    labels = pd.Series(["a"] * 100 + ["b"] * 50)
    p1, p2 = fer_parts(labels), fer_parts(labels)
    assert (p1 == p2).all()
    assert (p1[:100] == "train").sum() == 30 and (p1[100:] == "train").sum() == 15
    assert (p1[:100] == "val").sum() == 20 and (p1[:100] == "report").sum() == 50


def test_recipe_gives_the_same_bytes_and_leaves_an_unchanged_model_alone(shared, tmp_path, feature_cache):
    a, changed, _ = build(shared, tmp_path / "a", str(feature_cache), limit=12, progress=False)
    first = (a / WEIGHTS_FILE).read_bytes()
    stamp = (a / WEIGHTS_FILE).stat().st_mtime_ns
    assert changed and json.loads((a / CONFIG_FILE).read_text())["recipe"]["conse_fusion"] == FUSION_WEIGHT
    # A second run from the same inputs: the same bytes, so the published folder is left as it was.
    _, changed, _ = build(shared, a, str(feature_cache), limit=12, progress=False, run_dir=tmp_path / "run2")
    assert not changed and (a / WEIGHTS_FILE).stat().st_mtime_ns == stamp
    assert (tmp_path / "run2" / WEIGHTS_FILE).is_file()  # it did train again
    from safetensors.torch import load_file

    fused = load_file(str(a / WEIGHTS_FILE))
    assert torch.equal(fused["heads.text.class_emb"], fused["heads.image.class_emb"])
    fused_again = {k: v for k, v in fused.items() if "fusion" not in k and k != "heads.text.class_emb"}
    run2 = load_file(str(tmp_path / "run2" / WEIGHTS_FILE))
    assert fused_again.keys() == run2.keys() and all(bool((fused_again[k] == run2[k]).all()) for k in run2)
    assert (a / WEIGHTS_FILE).read_bytes() == first
    enc = load_checkpoint(a)
    assert enc.dim == 768 and enc.config["text_side"]["head"]["conse_fusion"] == FUSION_WEIGHT
