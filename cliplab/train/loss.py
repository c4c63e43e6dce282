"""Symmetric InfoNCE (CLIP's loss) that knows about duplicates inside a batch.

With several captions per image, or one class prompt shared by many labelled images, a batch can
hold the same image or the same text twice; treating the copy as a negative would push a pair
apart for being correct. Every (image, text) in the batch that shares the image or the text is a
positive, and the target distribution spreads evenly over the positives.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def positives(image_ids: torch.Tensor, text_ids: torch.Tensor) -> torch.Tensor:
    """(B, B) bool: row i's image matches column j's text."""
    return (image_ids[:, None] == image_ids[None, :]) | (text_ids[:, None] == text_ids[None, :])


def clip_loss(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    logit_scale: torch.Tensor,
    image_ids: torch.Tensor,
    text_ids: torch.Tensor,
) -> torch.Tensor:
    """Mean of image→text and text→image cross-entropy over scaled cosine similarities.

    `image_emb`, `text_emb`: (B, D) unit vectors of B pairs; ids mark duplicates.
    """
    logits = logit_scale * image_emb @ text_emb.T
    pos = positives(image_ids, text_ids).float()
    target = pos / pos.sum(dim=1, keepdim=True)  # symmetric, so the same rows serve both directions
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
