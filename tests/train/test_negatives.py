"""Batch groups: label prompts apart from captions, and with hard negatives captions by subject."""

from __future__ import annotations

import numpy as np
import pytest

from cliplab.train.config import TrainConfig, TrainError
from cliplab.train.negatives import batch_groups, subject

TEXTS = ["A dog runs on the beach .", "Two dogs in snow", "a man climbs a rock", "a red car", "a photo of a dog."]
PAIR_TEXT = np.array([0, 1, 2, 3, 4, 0])
CAPTION = np.array([True, True, True, True, False, True])


def test_subject_is_the_first_subject_word_by_group():
    assert subject("Two dogs play while a man watches") == "dog"
    assert subject("A little girl and her puppy") == "girl"
    assert subject("a red car on the road") is None


def test_groups_without_and_with_hard_negatives():
    assert batch_groups(CAPTION, PAIR_TEXT, TEXTS, by_source=False, hard=None) is None
    assert batch_groups(CAPTION, PAIR_TEXT, TEXTS, by_source=True, hard=None).tolist() == [1, 1, 1, 1, 0, 1]
    g = batch_groups(CAPTION, PAIR_TEXT, TEXTS, by_source=True, hard="subject")
    dog, man = g[0], g[2]
    assert g[1] == dog == g[5] and man != dog and g[3] == 1 and g[4] == 0  # no subject: 1; a label prompt: 0
    assert len({dog, man, 1, 0}) == 4


def test_an_unknown_kind_of_hard_negative_is_refused():
    with pytest.raises(TrainError, match="--hard-negatives"):
        TrainConfig(pairs=["x.csv"], hard_negatives="colour").validate()
