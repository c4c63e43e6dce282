"""Which pairs share a batch: in-batch negatives decide what the loss teaches.

`batch_by_source` keeps captions apart from label prompts (a caption batch never has "a photo of a
dog." as a negative). `hard_negatives="subject"` also splits the captions by their subject (dog,
man, woman, boy, girl, child, people): the negatives of "a dog running on the beach" are then other
dogs' captions, so the heads must learn the place and action words, not only the subject — the
compositional queries (issue 24) that ranked ferries above dogs.
"""

from __future__ import annotations

import re

import numpy as np

SUBJECTS = {  # word → subject group: the commonest subjects of Flickr-style captions
    "dog": "dog", "dogs": "dog", "puppy": "dog",
    "man": "man", "men": "man", "guy": "man",
    "woman": "woman", "women": "woman", "lady": "woman",
    "boy": "boy", "boys": "boy",
    "girl": "girl", "girls": "girl",
    "child": "child", "children": "child", "kid": "child", "kids": "child",
    "people": "people", "person": "people", "crowd": "people",
}  # fmt: skip
GROUPS = sorted(set(SUBJECTS.values()))
HARD_NEGATIVES = (None, "subject")


def subject(text: str) -> str | None:
    """The caption's first subject word's group, or None."""
    for word in re.findall(r"[a-z]+", text.lower()):
        if word in SUBJECTS:
            return SUBJECTS[word]
    return None


def batch_groups(
    pair_caption: np.ndarray | None,
    pair_text: np.ndarray,
    texts: list[str],
    by_source: bool,
    hard: str | None,
    share: float = 1.0,
    seed: int = 0,
):
    """A group id per pair (each batch stays inside one group), or None for plain shuffled batches.
    Label prompts are group 0; captions group 1, or with `hard="subject"` 2 + their subject's index
    (captions without one: group 1). `share`: the part of the captions (drawn once, seeded) that go
    to their subject's group; the rest keep the ordinary caption batches, whose negatives differ in
    subject too (all-hard batches forget that: retrieval R@1 fell 4-9 points on validation)."""
    if hard is None:
        return pair_caption.astype(np.int64) if by_source and pair_caption is not None else None
    caption = np.ones(len(pair_text), bool) if pair_caption is None else pair_caption.astype(bool)
    of_text = np.array([-1 if (s := subject(t)) is None else GROUPS.index(s) for t in texts], np.int64)
    hard_pair = (of_text[pair_text] >= 0) & (np.random.default_rng(seed).random(len(pair_text)) < share)
    groups = np.where(hard_pair, 2 + of_text[pair_text], 1)
    return np.where(caption, groups, 0).astype(np.int64)
