"""Names for groups of photos, by zero-shot against the vocabulary that ships with the package: the
1,000 ImageNet class names and their WordNet parents (`cliplab/resources/`), so a cluster of golden
retrievers and labradors can be called "retriever" or "dog". A group's name is the vocabulary entry
whose text vector ("a photo of a {name}.", the model's own text tower) is nearest the group's mean
image vector; the score is that cosine.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

# WordNet parents kept: at least this deep below `entity` (drops artifact, object, whole…) and at most
# this many steps above the class (drops far, vague ancestors); ~740 parents join the 1,000 classes
PARENT_MIN_DEPTH = 6
PARENT_MAX_UP = 3
TEMPLATE = "a photo of a {}."


@functools.lru_cache(maxsize=1)
def vocabulary() -> tuple[str, ...]:
    """ImageNet class names, then their WordNet parents; each name once (case-insensitive)."""
    from cliplab.models.core.imagenet import _hypernym_table, imagenet_classnames, imagenet_hypernyms

    wnids = sorted(_hypernym_table())  # sorted wnids are ImageNet's class order
    names = list(imagenet_classnames())
    for wnid in wnids:
        names += imagenet_hypernyms(wnid, PARENT_MIN_DEPTH, PARENT_MAX_UP)
    seen: dict[str, str] = {}
    for n in names:
        seen.setdefault(n.lower(), n)
    return tuple(seen.values())


def top_names(centers: np.ndarray, encoder, n: int = 3, words: Sequence[str] | None = None) -> list[list[tuple]]:
    """Per row of `centers` (unit mean vectors), the `n` nearest names as (name, cosine), best first.
    The vocabulary's text vectors are cached on disk per model (`cliplab.zeroshot.class_embeddings`)."""
    from cliplab.zeroshot import class_embeddings

    words = list(words if words is not None else vocabulary())
    if not len(centers) or not words:
        return [[] for _ in range(len(centers))]
    text = class_embeddings(encoder, words, [TEMPLATE])
    scores = np.asarray(centers, np.float32) @ text.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, : min(n, len(words))]
    return [[(words[j], round(float(scores[i, j]), 4)) for j in row] for i, row in enumerate(order)]


def month(date: str | None) -> str | None:
    return date[:7] if date else None


def summary_text(images: int, clusters: Sequence[dict], dates: dict | None, shown: int = 4) -> str:
    """'312 photos in 9 groups: dog (24 %), beach (18 %), …, taken 2019-06 … 2021-03'."""
    parts = []
    for c in sorted(clusters, key=lambda c: -c["size"])[:shown]:
        name = c["names"][0]["name"] if c["names"] else f"group {c['cluster']}"
        parts.append(f"{name} ({100 * c['size'] / max(images, 1):.0f} %)")
    more = ", …" if len(clusters) > shown else ""
    groups = "group" if len(clusters) == 1 else "groups"
    text = f"{images} photo{'s' if images != 1 else ''} in {len(clusters)} {groups}"
    text += (": " + ", ".join(parts) + more) if parts else ""
    if dates:
        lo, hi = month(dates["from"]), month(dates["to"])
        text += f", taken {lo}" if lo == hi else f", taken {lo} … {hi}"
    return text
