"""Near-duplicate groups: the neighbour (ANN) path used for large collections finds what the exact one does."""

from __future__ import annotations

import shutil

from PIL import Image

import cliplab.index.collection as collection
from cliplab.index import Collection


def test_ann_path_agrees_with_exact(photos, tiny, monkeypatch):
    shutil.copy(photos / "img007.jpg", photos / "copy7.jpg")
    Image.open(photos / "img007.jpg").resize((64, 64)).save(photos / "big7.png")
    shutil.copy(photos / "img011.jpg", photos / "copy11.jpg")
    col = Collection(photos, encoder=tiny)
    col.update()
    exact = [g.as_dict() for g in col.duplicates(threshold=0.99)]
    monkeypatch.setattr(collection, "EXACT_FILTER_MAX", 5)  # 33 images now count as "large"
    approx = [g.as_dict() for g in col.duplicates(threshold=0.99)]
    assert approx == exact and len(exact) >= 2
    seven = next(g["paths"] for g in exact if any("copy7" in p for p in g["paths"]))
    assert [g.paths for g in col.duplicates(threshold=0.99, glob="*7*")] == [seven]
