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
