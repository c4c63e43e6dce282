"""clip_loss: symmetric InfoNCE whose targets spread over in-batch duplicates."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from cliplab.train.loss import clip_loss, positives


def unit(x):
    return F.normalize(torch.as_tensor(x, dtype=torch.float32), dim=-1)


def test_positives_mark_shared_images_and_texts():
    pos = positives(torch.tensor([0, 0, 1]), torch.tensor([5, 6, 6]))
    assert pos.tolist() == [[True, True, False], [True, True, True], [False, True, True]]


def test_matches_the_textbook_formula_without_duplicates():
    torch.manual_seed(0)
    img, txt = unit(torch.randn(5, 8)), unit(torch.randn(5, 8))
    scale = torch.tensor(10.0)
    ids = torch.arange(5)
    logits = scale * img @ txt.T
    expected = 0.5 * (F.cross_entropy(logits, ids) + F.cross_entropy(logits.T, ids))
    assert torch.allclose(clip_loss(img, txt, scale, ids, ids), expected)


def test_perfect_alignment_is_near_zero_and_swaps_are_penalised():
    eye = torch.eye(4)
    ids = torch.arange(4)
    good = clip_loss(eye, eye, torch.tensor(100.0), ids, ids)
    bad = clip_loss(eye, eye[[1, 0, 3, 2]], torch.tensor(100.0), ids, ids)
    assert good < 1e-6 and bad > 50


def test_a_duplicate_is_not_a_negative():
    # image 0 appears twice (two captions) and caption 3 is shared by two images (a class prompt):
    # every row's target spreads evenly over all the pairs that are right for it
    torch.manual_seed(3)
    img, txt = unit(torch.randn(4, 6)), unit(torch.randn(4, 6))
    ids_img, ids_txt = torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 3, 3])
    target = torch.tensor([[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]])
    logits = 7.0 * img @ txt.T
    expected = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    got = clip_loss(img, txt, torch.tensor(7.0), ids_img, ids_txt)
    assert torch.allclose(got, expected)
    # identical duplicates sit at the entropy floor (log 2 per row): nothing left to "fix"
    same = unit([[1.0, 0.0], [1.0, 0.0]])
    floor = clip_loss(same, same, torch.tensor(100.0), torch.tensor([0, 0]), torch.tensor([0, 1]))
    assert abs(float(floor) - math.log(2)) < 1e-4


def test_gradients_flow_to_embeddings_and_scale():
    torch.manual_seed(1)
    img = torch.randn(6, 4, requires_grad=True)
    txt = torch.randn(6, 4, requires_grad=True)
    scale = torch.tensor(5.0, requires_grad=True)
    clip_loss(F.normalize(img, dim=-1), F.normalize(txt, dim=-1), scale, torch.arange(6), torch.arange(6)).backward()
    assert img.grad.abs().sum() > 0 and txt.grad.abs().sum() > 0 and scale.grad is not None
