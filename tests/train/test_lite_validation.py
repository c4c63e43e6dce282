"""The validation sets and selection rule `lite`'s recipe is chosen by (benchmarks/lite_validation.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import torch

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "lite_validation.py"


@pytest.fixture(scope="module")
def v():
    spec = importlib.util.spec_from_file_location("lite_validation", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_worst_margin_ties_only_within_one_query(v):
    base = {"a": 0.960, "b": 0.500}
    sizes = {"a": 150, "b": 100}
    one_photo_short = {"a": 0.960 - 1 / 150, "b": 0.600}
    two_photos_short = {"a": 0.960 - 2 / 150, "b": 0.700}
    assert v.worst_margin(one_photo_short, base) == pytest.approx(-1 / 150)
    assert v.worst_margin(one_photo_short, base, sizes) == 0.0
    assert v.worst_margin(two_photos_short, base, sizes) == pytest.approx(-2 / 150)
    # the worst rule prefers a recipe level everywhere to a better mean that falls short on one set
    ranked = sorted([two_photos_short, one_photo_short], key=lambda r: v.rank_key(r, base, "worst", sizes))
    assert ranked[0] is one_photo_short
    assert sorted([one_photo_short, two_photos_short], key=lambda r: v.rank_key(r, base, "mean"))[0] is two_photos_short


def test_compositional_recall_ranks_only_photos_with_the_subject(v):
    captions = pd.DataFrame(
        {
            "path": ["d1", "d2", "d3", "d4", "d5", "m1"],
            "caption": ["a dog on a beach", "a dog in snow", "dogs play", "a puppy runs", "a dog sleeps", "a man"],
        }
    )
    images, texts, (gt, mask) = v.compositional_set(captions, ["d1", "d2", "d3", "d4", "d5", "m1"])
    assert texts == list(captions["caption"][:5])  # "a man": fewer than MIN_CANDIDATES photos of men
    assert mask.shape == (5, 6) and not mask[:, 5].any() and mask[:, :5].all()
    sim = torch.zeros(6, 5)  # images × texts: the man's photo scores best for every text, d1 next
    sim[5], sim[0] = 1.0, 0.5
    assert v.within_recall(sim, (gt, mask)) == pytest.approx(1 / 5)  # only the first text finds d1


def test_basic_words_are_the_nearest_everyday_ancestor(v):
    assert v.basic_word("n02094433", "Yorkshire Terrier") == "dog"
    assert v.basic_word("n04037443", "race car") == "car"
    assert v.basic_word("n01440764", "tench") == "fish"


def test_unseen_sets_blind_the_classifier_to_half_the_held_out_classes(v):
    import numpy as np

    val = np.zeros(1000, bool)
    val[[3, 10, 50, 70, 900, 901]] = True
    imagenet = pd.DataFrame({"path": [f"p{i}" for i in range(6)], "name": list("abcdef")})
    sets = v.unseen_sets({"imagenet": imagenet, "val_classes": val})
    blind = sets["unseen_top1"][5]
    assert blind.sum() == 3 and not (blind & ~val).any()  # half the held-out classes, nothing else
    assert np.array_equal(blind, v.unseen_classes(val))  # seeded: the same half every run
    paths, texts, gt = sets["unseen_top1"][:3]
    own = [i for i, c in enumerate(np.flatnonzero(val)) if blind[c]]
    assert paths == [f"p{i}" for i in own] and texts == [f"a photo of a {'abcdef'[i]}." for i in own]
    assert gt.tolist() == list(range(3))
    assert sets["half_unseen_top1"][0] == list(imagenet["path"]) and len(sets["half_unseen_top1"][1]) == 6


def test_blind_logits_never_reach_the_top():
    spec = importlib.util.spec_from_file_location("lite_select", PATH.parent / "lite_select.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    logits = torch.tensor([[5.0, 1.0, -2.0, 0.5], [0.1, 9.0, 3.0, -1.0]])
    blind = torch.tensor([True, False, False, True])
    out = module.blind_logits(logits, blind)
    assert out[:, blind].tolist() == [[-2.0, -2.0], [-1.0, -1.0]]  # each photo's lowest
    assert torch.equal(out[:, ~blind], logits[:, ~blind]) and out.argmax(1).tolist() == [1, 1]
