"""Validation after every epoch: loss and R@1/5/10 both ways on the held-out images' captions."""

from __future__ import annotations

import numpy as np
import torch

from cliplab.eval.metrics import retrieval_metrics
from cliplab.train.loss import clip_loss

KS = (1, 5, 10)


@torch.no_grad()
def evaluate(model, image_in, text_in, data, val_pairs: np.ndarray, batch_size: int) -> dict:
    """Metrics row for the validation pairs. `score` (mean of the six recalls) picks the best epoch."""
    model.heads.eval()
    row = {"logit_scale": float(model.heads.scale())}
    if len(val_pairs) < 2:
        return row
    scale = model.heads.scale()
    images, t2i = np.unique(data.pair_image[val_pairs], return_inverse=True)
    img = torch.cat(
        [
            model.heads.encode_image(image_in.batch(images[s : s + batch_size]))
            for s in range(0, len(images), batch_size)
        ]
    )
    txt_idx = data.pair_text[val_pairs]
    txt = torch.cat(
        [
            model.heads.encode_text(text_in.batch(txt_idx[s : s + batch_size]))
            for s in range(0, len(txt_idx), batch_size)
        ]
    )
    # Loss over the validation pairs in fixed batches (the same order every epoch).
    losses, n = 0.0, 0
    for s in range(0, len(val_pairs), batch_size):
        sl = slice(s, s + batch_size)
        if len(val_pairs[sl]) < 2:
            continue
        ids_i = torch.from_numpy(data.pair_image[val_pairs[sl]])
        ids_t = torch.from_numpy(txt_idx[sl])
        loss = clip_loss(img[torch.from_numpy(t2i[sl])], txt[sl], scale, ids_i, ids_t)
        losses += float(loss) * len(val_pairs[sl])
        n += len(val_pairs[sl])
    row["val_loss"] = losses / max(1, n)
    m = retrieval_metrics(img.numpy(), txt.numpy(), t2i, ks=KS)
    for d, key in (("t2i", "text_to_image"), ("i2t", "image_to_text")):
        for k in KS:
            row[f"{d}_R@{k}"] = m[key][f"R@{k}"]
    row["score"] = float(np.mean([row[f"{d}_R@{k}"] for d in ("t2i", "i2t") for k in KS]))
    return row
