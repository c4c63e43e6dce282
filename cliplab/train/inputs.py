"""What the loop feeds the heads: cached features for frozen towers, tower outputs for trained ones.

A frozen tower is never run during training: its features (every view) are computed once and
read from the on-disk cache. A tower that trains runs forward on every batch (pixels, one array
per view, are preprocessed once and kept in memory; texts are tokenised per batch).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from cliplab.train.features import image_features, image_pixels, text_features


def _trains(tower) -> bool:
    return any(p.requires_grad for p in tower.parameters())


class ImageInputs:
    def __init__(
        self,
        tower,
        paths: Sequence[str],
        views: Sequence[str],
        cache_dir=None,
        progress: bool = True,
        workers: int | None = None,
    ):
        self.tower, self.views = tower, list(views)
        self.trains = _trains(tower)
        self.failed: dict[int, str] = {}
        self.data = []
        for view in self.views:
            if self.trains:
                arr, failed = image_pixels(tower, paths, view, progress, workers)
            else:
                arr, failed = image_features(tower, paths, view, cache_dir, progress, workers)
            self.data.append(arr)
            for i, reason in failed.items():  # an image unusable in any view is dropped everywhere
                self.failed.setdefault(i, reason)
        self.ok = np.ones(len(paths), bool)
        self.ok[list(self.failed)] = False

    def batch(self, image_idx: np.ndarray, views: np.ndarray | None = None) -> dict:
        """Tower features of images `image_idx`, each in view `views[i]` (default: the plain view)."""
        views = np.zeros(len(image_idx), np.int64) if views is None else np.asarray(views)
        if self.trains:
            x = np.stack([self.data[v][i] for i, v in zip(image_idx, views)])
            return self.tower.forward(torch.from_numpy(x))
        out = {}
        for name in self.data[0]:
            rows = np.stack([self.data[v][name][i] for i, v in zip(image_idx, views)])
            out[name] = torch.from_numpy(rows)
        return out


class TextInputs:
    def __init__(self, tower, texts: Sequence[str], cache_dir=None, progress: bool = True):
        self.tower, self.texts = tower, list(texts)
        self.trains = _trains(tower)
        self.features = None if self.trains else text_features(tower, self.texts, cache_dir, progress)

    def batch(self, text_idx: np.ndarray) -> dict:
        if self.trains:
            return self.tower.forward([self.texts[i] for i in text_idx])
        return {k: torch.from_numpy(v[text_idx]) for k, v in self.features.items()}
