"""Small real subsets for training tests: features are extracted once per session into a temp cache."""

from __future__ import annotations

import pandas as pd
import pytest

N_IMAGES = 60


@pytest.fixture(scope="session")
def flickr_pairs(shared, tmp_path_factory):
    """Captions of the first 60 Flickr8k *train* images (300 pairs), absolute paths, no split column."""
    src = shared / "data" / "flickr8k-1k"
    df = pd.read_csv(src / "captions.csv")
    df = df[df["split"] == "train"]
    keep = sorted(df["path"].unique())[:N_IMAGES]
    df = df[df["path"].isin(keep)].copy()
    df["path"] = [str(src / p) for p in df["path"]]
    out = tmp_path_factory.mktemp("pairs") / "pairs.csv"
    df[["path", "caption"]].to_csv(out, index=False)
    return out


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("feature-cache")


@pytest.fixture
def small_config(flickr_pairs, feature_cache):
    """A fast frozen-tower config; tests override fields as needed."""
    from cliplab.train import TrainConfig

    def make(**kw):
        base = dict(
            pairs=[str(flickr_pairs)],
            epochs=4,
            batch_size=64,
            val_split="0.25",
            dim=64,
            lr=2e-3,
            patience=0,
            cache_dir=str(feature_cache),
            seed=0,
        )
        return TrainConfig(**{**base, **kw})

    return make


@pytest.fixture
def imagenet_labels(shared, tmp_path):
    """labels.csv of the first `n` ImageNet sample photos (absolute paths, `name` column)."""

    def make(n: int):
        src = shared / "data" / "imagenet-samples"
        lab = pd.read_csv(src / "labels.csv").head(n)
        lab["path"] = [str(src / p) for p in lab["path"]]
        out = tmp_path / "labels.csv"
        lab.to_csv(out, index=False)
        return out

    return make
