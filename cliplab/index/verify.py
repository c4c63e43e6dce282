"""Which rule `duplicates` uses for a model, and the instance-level verifier that confirms candidates.

A class-level embedding cannot tell a copy from another photo of the same kind: with `lite`, copies
(120 px thumbnails, JPEG q30, crops, mirrored, grey) score 0.87–0.98 with their original while
distinct photos of one kind reach 0.96 (docs/benchmarks.md, "Duplicates"). So for a model with
calibrated thresholds (`specs.duplicate_calibration`) its cosine only proposes candidate pairs, and
each candidate is confirmed by GeM over EfficientNet-Lite0's last feature map (as `eval instance`
pools it): for `lite`, no distinct pair confirmed and 97 % of copies joined to their original.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from cliplab.models.specs import duplicate_calibration

DEFAULT_THRESHOLD = 0.95  # one cosine threshold, for models without a calibration (today's rule)
VERIFY_THRESHOLD = 0.78  # GeM cosine; the verifier is the same network whatever the model, so lite's is its default
VERIFIER = "GeM of EfficientNet-Lite0"


@dataclass(frozen=True)
class DuplicateRule:
    """Two images are duplicates when the model's cosine is ≥ `threshold` and, when `verify` is set,
    their GeM descriptors' cosine is ≥ `verify` too."""

    threshold: float
    verify: float | None = None
    note: str = ""  # e.g. why the model's own rule is not used

    def describe(self) -> str:
        rule = f"model cosine ≥ {self.threshold:g}"
        return rule if self.verify is None else f"{rule}, confirmed by {VERIFIER} ≥ {self.verify:g}"

    def as_dict(self) -> dict:
        return {
            "threshold": self.threshold,
            "verifier": None if self.verify is None else "gem",
            "verify_threshold": self.verify,
            "rule": self.describe(),
            "note": self.note or None,
        }


def duplicate_rule(
    model: str | None, threshold: float | None = None, verify: bool | float | None = None
) -> DuplicateRule:
    """The rule for `model`'s vectors. Defaults (both None): the model's calibrated candidates
    confirmed by GeM, or one cosine ≥ 0.95 for a model without calibration. An explicit `threshold`
    alone keeps its old meaning (one threshold, no confirmation). `verify=True` confirms candidates at
    `threshold` (or the model's candidate threshold) by GeM; a float is the GeM threshold itself;
    `verify=False` is one threshold (the model's calibrated one unless `threshold` is given)."""
    cal = duplicate_calibration(model)
    if verify is None:
        verify = threshold is None and cal is not None
    confirm = verify is not False
    if threshold is not None:
        note = ""
    elif cal is not None:
        threshold, note = cal["candidate" if confirm else "single"], ""
    else:
        threshold = DEFAULT_THRESHOLD
        note = f"no calibrated duplicate threshold for {model}: using {DEFAULT_THRESHOLD} on its cosine"
    if not confirm:
        return DuplicateRule(float(threshold), None, note)
    if isinstance(verify, bool):
        verify = cal["verify"] if cal is not None else VERIFY_THRESHOLD
    return DuplicateRule(float(threshold), float(verify), note)


class GemVerifier:
    """Confirms candidate pairs (arrays of file ids a, b → bool per pair) by the cosine of GeM
    descriptors of EfficientNet-Lite0's last 1280×7×7 map. The torch network takes ~23 ms an image
    on 2 idle CPU cores (there is no ONNX feature-map path), so only candidates' images are described,
    each once per run (cached by file id). An image that no longer decodes confirms nothing."""

    batch = 16

    def __init__(
        self, paths: Callable[[list[int]], dict[int, str]], folder: Path, threshold: float, progress: bool = False
    ):
        self.paths, self.folder, self.threshold, self.progress = paths, Path(folder), float(threshold), progress
        self.cache: dict[int, np.ndarray | None] = {}

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.describe(sorted({int(i) for i in np.concatenate([a, b])} - set(self.cache)))
        out = np.zeros(len(a), bool)
        for k, (x, y) in enumerate(zip(a.tolist(), b.tolist())):
            dx, dy = self.cache.get(x), self.cache.get(y)
            out[k] = dx is not None and dy is not None and float(dx @ dy) >= self.threshold
        return out

    def describe(self, ids: list[int]) -> None:
        if not ids:
            return
        from cliplab.data.images import load_image
        from cliplab.errors import ImageError
        from cliplab.models.backends.pretrained import efficientnet
        from cliplab.models.features.feature_maps import cnn_feature_map
        from cliplab.models.features.pooling import gem
        from cliplab.progress import progress_bar

        net = efficientnet("lite0")
        where = self.paths(ids)
        with progress_bar(len(ids), "verifying candidates", self.progress) as step:
            for s in range(0, len(ids), self.batch):
                chunk, pixels = [], []
                for i in ids[s : s + self.batch]:
                    self.cache[i] = None
                    try:
                        pixels.append(net.preprocess(load_image(self.folder / where[i], draft=net.size)))
                        chunk.append(i)
                    except (KeyError, OSError, ImageError):  # gone from the index or the disk, unreadable
                        pass
                if chunk:
                    d = gem(cnn_feature_map(net.net, np.stack(pixels), "head")).numpy()
                    self.cache.update(zip(chunk, d.astype(np.float32)))
                step(len(ids[s : s + self.batch]))
