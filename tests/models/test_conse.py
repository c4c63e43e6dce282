"""ConSE / lite with the real EfficientNet-Lite0 + MiniLM weights on real data."""

import numpy as np
import pandas as pd

from cliplab import classify
from cliplab.models.backends.conse import conse_combine
from cliplab.models.core.imagenet import imagenet_classnames
from cliplab.pipeline import embed_images
from cliplab.zeroshot import class_embeddings, load_templates, zero_shot_probs


def test_conse_combine_uses_top_t_weights():
    probs = np.array([[0.5, 0.3, 0.2]])
    emb = np.eye(3, dtype=np.float32)
    v = conse_combine(probs, emb, top_t=2)
    want = np.array([0.5, 0.3, 0.0]) / np.linalg.norm([0.5, 0.3])
    np.testing.assert_allclose(v[0], want, atol=1e-6)


def test_encoder_contract(conse_encoder):
    v = conse_encoder.encode_texts(["a dog", "a cat", ""])
    assert v.shape == (3, conse_encoder.dim) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert conse_encoder.encode_texts([]).shape == (0, conse_encoder.dim)


def test_cifar10_zero_shot_top1_at_least_30_percent(conse_encoder, shared):
    root = shared / "data" / "cifar10-dev"
    df = pd.read_csv(root / "labels.csv").sort_values("path").groupby("label").head(50)
    res = embed_images(conse_encoder, [str(root / p) for p in df["path"]])
    assert res.n_ok == 500
    classes = sorted(df["label"].unique())
    cls = class_embeddings(conse_encoder, classes, load_templates(None))
    pred = np.array(classes)[zero_shot_probs(res.vectors, cls, conse_encoder.logit_scale).argmax(1)]
    acc = float((pred == df["label"].to_numpy()).mean())
    assert acc >= 0.30, f"CIFAR-10 zero-shot top-1 {acc:.3f} < 0.30"


def test_classify_imagenet_samples_returns_their_class(conse_encoder, shared):
    root = shared / "data" / "imagenet-samples"
    df = pd.read_csv(root / "labels.csv").iloc[::50].head(20)  # a fixed spread of 20 classes
    c = classify([str(root / p) for p in df["path"]], imagenet_classnames(), conse_encoder)
    firsts = [r["predictions"][0]["label"] for r in c.top(1)]
    hits = sum(f == n for f, n in zip(firsts, df["name"]))
    assert hits >= 14, f"only {hits}/20 ImageNet samples classified as their own class: {firsts}"
