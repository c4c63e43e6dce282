"""ImageNet-1k class names (CLIP's clean names, in the classifier's index order) and CLIP's 80 templates."""
from __future__ import annotations

import functools
from importlib import resources


@functools.lru_cache(maxsize=1)
def imagenet_classnames() -> list[str]:
    text = resources.files("cliplab.resources").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line]


@functools.lru_cache(maxsize=1)
def clip80_templates() -> list[str]:
    text = resources.files("cliplab.resources").joinpath("clip80_templates.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line]
