"""Fine-tuning a tiny random-weight CLIP (both towers unfrozen) through the same trainer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cliplab.models import load_encoder
from cliplab.models.trained.checkpoint import TrainedEncoder
from cliplab.train import train


@pytest.fixture(scope="module")
def tiny_clip(shared, tmp_path_factory):
    from cliplab.models.backends.clip_hf import build_random_clip

    return build_random_clip(tmp_path_factory.mktemp("tiny-clip"), shared / "models" / "clip-vit-b32-config")


def test_finetune_tiny_clip_and_reload(tiny_clip, small_config, flickr_pairs, tmp_path):
    import pandas as pd

    df = pd.read_csv(flickr_pairs)
    df = df[df["path"].isin(sorted(df["path"].unique())[:16])]
    csv = tmp_path / "pairs.csv"
    df.to_csv(csv, index=False)
    spec = f"clip:{tiny_clip}"
    cfg = small_config(
        pairs=[str(csv)],
        image_tower=spec,
        text_tower=spec,
        image_train_last=-1,
        text_train_last=-1,
        image_head="none",
        text_head="none",
        val_split="0",
        epochs=2,
        batch_size=16,
        lr=1e-3,
        tower_lr=1e-3,
        augment=["flip"],
    )
    res = train(cfg, tmp_path / "run", progress=False)
    assert len(res.history) == 3 and all(np.isfinite(r["train_loss"]) for r in res.history[1:])

    out = res.out_dir
    saved = json.loads((out / "cliplab.json").read_text())
    assert saved["image_tower"]["stored"] and (out / "clip" / "config.json").is_file()

    enc = load_encoder(str(out))
    assert isinstance(enc, TrainedEncoder) and enc.dim == 32
    mem = res.model
    images = [Image.open(p).convert("RGB") for p in df["path"].unique()[:4]]
    texts = ["a dog runs on the grass", "two children", ""]
    np.testing.assert_allclose(enc.encode_images(images), mem.encode_images(images), atol=1e-6)
    np.testing.assert_allclose(enc.encode_texts(texts), mem.encode_texts(texts), atol=1e-6)
    assert enc.logit_scale == pytest.approx(mem.logit_scale)

    # Training really changed the CLIP weights (else "reloads identically" would prove nothing).
    orig = load_encoder(str(tiny_clip))
    assert not np.allclose(orig.encode_texts(texts), enc.encode_texts(texts), atol=1e-4)
