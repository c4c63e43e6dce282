"""ImageNet-1k class names (CLIP's clean names, in the classifier's index order) and CLIP's 80 templates."""

from __future__ import annotations

import functools
import json
from importlib import resources


@functools.lru_cache(maxsize=1)
def imagenet_classnames() -> list[str]:
    text = resources.files("cliplab.resources").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line]


@functools.lru_cache(maxsize=1)
def clip80_templates() -> list[str]:
    text = resources.files("cliplab.resources").joinpath("clip80_templates.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line]


@functools.lru_cache(maxsize=1)
def _hypernym_table() -> dict[str, list]:
    text = resources.files("cliplab.resources").joinpath("imagenet_hypernyms.json").read_text(encoding="utf-8")
    return json.loads(text)["wnids"]


def imagenet_hypernyms(wnid: str, min_depth: int = 0, max_up: int = 6) -> list[str]:
    """WordNet 3.0 ancestors of an ImageNet class, nearest first ("moving van" → van, truck, …).

    `min_depth` drops general words (depth = steps below `entity`: vehicle 7, artifact 4);
    `max_up` keeps ancestors at most that many steps above the class."""
    out: list[str] = []
    for name, depth, up in _hypernym_table().get(wnid, []):
        if depth >= min_depth and up <= max_up and name not in out:
            out.append(name)
    return out
