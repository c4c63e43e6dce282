"""Fit the softmax scale (temperature) that a model's zero-shot probabilities should use.

Data: the Flickr8k *train* split (never the reporting sets). For groups of 100 images, each image's
probability of its own 5 captions among the group's 500 is softmax(scale × cosine); the scale that
minimises the mean negative log-likelihood is the calibrated one.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/calibrate_logit_scale.py --model conse
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import require_shared  # noqa: E402

from cliplab.data.datasets import read_pairs  # noqa: E402
from cliplab.models import load_encoder  # noqa: E402
from cliplab.pipeline import embed_images, embed_texts  # noqa: E402


def nll(scale: float, img: np.ndarray, txt: np.ndarray, owner: np.ndarray, group: int = 100) -> float:
    losses = []
    for s in range(0, len(img), group):
        ids = np.arange(s, min(s + group, len(img)))
        cols = np.isin(owner, ids)
        logits = scale * img[ids] @ txt[cols].T
        pos = owner[cols][None, :] == ids[:, None]
        losses.append(logsumexp(logits, axis=1) - logsumexp(np.where(pos, logits, -np.inf), axis=1))
    return float(np.concatenate(losses).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="conse")
    args = ap.parse_args()
    pairs = read_pairs(require_shared() / "data" / "flickr8k-1k" / "captions.csv", split="train")
    images = sorted(pairs["path"].unique())
    enc = load_encoder(args.model)
    res = embed_images(enc, images, progress=True)
    index = {p: i for i, p in enumerate(images)}
    owner = pairs["path"].map(index).to_numpy()
    txt = embed_texts(enc, pairs["caption"].tolist())
    fit = minimize_scalar(lambda s: nll(s, res.vectors, txt, owner), bounds=(1, 200), method="bounded")
    print(
        f"model {enc.name}: calibrated logit scale = {fit.x:.1f} (NLL {fit.fun:.3f}; "
        f"at the current {enc.logit_scale:.1f}: {nll(enc.logit_scale, res.vectors, txt, owner):.3f})"
    )


if __name__ == "__main__":
    main()
