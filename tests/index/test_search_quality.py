"""Real images, real model: a class-name query ranks that class's CIFAR-10 images first."""

from __future__ import annotations

import numpy as np
import pytest

from cliplab.index import Collection
from tests.index.helpers import cifar_subset

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.mark.slow
def test_text_query_precision_at_5(shared, tmp_path, conse_encoder):
    folder = tmp_path / "cifar"
    labels = cifar_subset(shared, folder, per_class=10)  # 100 images, chance P@5 = 0.10
    col = Collection(folder, encoder=conse_encoder)
    s = col.update()
    assert (s.embedded, s.failed) == (100, 0)
    p5 = {c: np.mean([labels[h.relpath] == c for h in col.search(c, k=5)]) for c in CLASSES}
    # measured 0.54 with conse (frog/horse 1.0, deer/cat/bird 0.2); 0.40 leaves margin, 4× chance
    assert np.mean(list(p5.values())) >= 0.40, p5
    # the same query restricted to a sub-folder only returns images from it
    assert {labels[h.relpath] for h in col.search("a dog", k=10, under="cat")} == {"cat"}
