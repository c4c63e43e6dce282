"""Intermediate-layer feature extraction: EfficientNet stages, CLIP ViT blocks, PCA, the CLI."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from cliplab.analysis.features import extract_features
from cliplab.cli import app
from cliplab.data.images import load_image
from cliplab.errors import CliplabError
from cliplab.models.core.base import l2_normalize
from cliplab.models.features.feature_maps import vit_feature_map
from cliplab.models.features.layer_features import LayerFeatures
from tests.helpers import ToyEncoder, make_bad_files


@pytest.fixture(scope="module")
def photos(shared):
    return [str(p) for p in sorted((shared / "data" / "flickr8k-1k" / "images").glob("*.jpg"))[:5]]


def test_head_avg_equals_tower_pooled_features(lite_encoder, photos):
    feats, res = extract_features(lite_encoder, photos, layer="head", pooling="avg")
    batch = np.stack([lite_encoder.preprocess(load_image(p)) for p in photos])
    from cliplab.models.backends.pretrained import efficientnet

    pooled, _ = efficientnet("lite0").run(batch)  # the frozen EfficientNet-Lite0 inside `lite`
    assert feats.shape == (5, 1280) and res.n_ok == 5
    np.testing.assert_allclose(feats, l2_normalize(pooled), atol=1e-4)


@pytest.mark.parametrize(
    "layer, pooling, channels",
    [("stem", "mac", 32), (0, "gem", 16), (5, "rmac", 80), (-1, "gem", 320), ("head", "mac", 1280)],
)
def test_cnn_layer_shapes(lite_encoder, photos, layer, pooling, channels):
    fx = LayerFeatures(lite_encoder, layer, pooling)
    fmap = fx.feature_map(np.stack([lite_encoder.preprocess(load_image(photos[0]))]))
    assert fmap.ndim == 4 and fmap.shape[:2] == (1, channels)
    feats, res = extract_features(fx, photos[:2])
    assert feats.shape == (2, channels) and fx.dim == channels
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-4)
    assert res.model["layer"] == layer and res.model["tower"].startswith("efficientnet-lite0")


def test_pca_is_fitted_once_and_reused(lite_encoder, photos):
    fx = LayerFeatures(lite_encoder, 8, "gem", pca=3)
    db, _ = extract_features(fx, photos)
    assert db.shape == (5, 3) and fx.describe()["pca"] == 3
    again, _ = extract_features(fx, photos[:2])  # queries projected with the database's PCA
    np.testing.assert_allclose(again, db[:2], atol=1e-4)


def test_vit_block_patch_grid(tiny_clip, photos):
    from cliplab.models import load_encoder

    enc = load_encoder(str(tiny_clip))
    cfg = enc.clip.config.vision_config
    grid = cfg.image_size // cfg.patch_size
    x = torch.from_numpy(np.stack([enc.preprocess(load_image(p)) for p in photos[:2]]))
    with torch.inference_mode():
        for layer in (0, 1, "head", "stem"):
            assert vit_feature_map(enc.clip, x, layer).shape == (2, cfg.hidden_size, grid, grid)
        direct = enc.clip.vision_model(pixel_values=x, output_hidden_states=True).hidden_states[1]
        fmap = vit_feature_map(enc.clip, x, 0)
    # block 0's patch tokens (CLS dropped), laid out row-major on the grid
    np.testing.assert_allclose(fmap[:, :, 0, 1].numpy(), direct[:, 2, :].numpy(), atol=1e-6)
    feats, res = extract_features(enc, photos[:3], layer=-1, pooling="gem")
    assert feats.shape == (3, cfg.hidden_size) and res.model["tower"] == "clip-vision"
    with pytest.raises(CliplabError, match="out of range"):
        LayerFeatures(enc, 5, "avg")


def test_bad_layer_pooling_and_model():
    with pytest.raises(CliplabError, match="no EfficientNet or CLIP ViT"):
        LayerFeatures(ToyEncoder(), "head", "gem")
    with pytest.raises(CliplabError, match="layer must be"):
        from cliplab.models.features.feature_maps import parse_layer

        parse_layer("middle")


def test_cli_features(photos, tmp_path, lite_encoder):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for p in photos:
        (folder / p.split("/")[-1]).symlink_to(p)
    make_bad_files(folder / "bad")
    r = CliRunner().invoke(
        app,
        [
            "features",
            str(folder),
            "--model",
            "lite",
            "--layer",
            "10",
            "--pooling",
            "rmac",
            "--pca",
            "4",
            "--out",
            str(tmp_path / "out"),
            "--json",
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["images"] == 5 and summary["dim"] == 4 and len(summary["failed"]) == 4
    arr = np.load(tmp_path / "out" / "features.npy")
    meta = pd.read_csv(tmp_path / "out" / "features_metadata.csv")
    manifest = json.loads((tmp_path / "out" / "features_manifest.json").read_text())
    assert arr.shape == (5, 4) and len(meta) == 9 and (meta["status"] == "ok").sum() == 5
    assert manifest["model_info"]["layer"] == 10 and manifest["model_info"]["pooling"] == "rmac"
    assert manifest["count"] == 5 and manifest["dim"] == 4


def test_cli_features_bad_layer_is_one_line(photos, tmp_path, lite_encoder):
    r = CliRunner().invoke(app, ["features", photos[0], "--model", "lite", "--layer", "99", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "out of range" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
