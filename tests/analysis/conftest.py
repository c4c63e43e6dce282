"""A tiny captioned dataset in the seed layout, built from real Flickr8k photos and their captions:
4 categories × 5 images, grouped by caption keywords (dog / child / bike / water)."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest

KEYWORDS = {
    "1_dogs": r"\bdogs?\b",
    "2_children": r"\b(?:child|children|kid|kids|boy|girl)\b",
    "3_bikes": r"\b(?:bike|bikes|bicycle|biker|cyclist)\b",
    "4_water": r"\b(?:water|ocean|lake|swimming|pool|waves?)\b",
}
PER_CATEGORY = 5


def pick_images(captions: pd.DataFrame, per_category: int = PER_CATEGORY) -> dict[str, list[tuple[str, str]]]:
    """category → [(relative path, caption)]: images whose captions mention exactly one keyword group
    (in at least 3 of their 5 captions); the caption kept is the first one that mentions it."""
    chosen: dict[str, list[tuple[str, str]]] = {c: [] for c in KEYWORDS}
    for path, group in captions.groupby("path", sort=True):
        caps = group["caption"].tolist()
        hits = {c: sum(bool(re.search(p, t.lower())) for t in caps) for c, p in KEYWORDS.items()}
        cats = [c for c, n in hits.items() if n > 0]
        if len(cats) != 1 or hits[cats[0]] < 3 or len(chosen[cats[0]]) >= per_category:
            continue
        cap = next(t for t in caps if re.search(KEYWORDS[cats[0]], t.lower()))
        chosen[cats[0]].append((path, cap.strip()))
    return chosen


@pytest.fixture(scope="session")
def seed_dataset(shared, tmp_path_factory):
    """dataset/<category>/<image>.jpg + captions.json {relative path: caption}."""
    src = shared / "data" / "flickr8k-1k"
    captions = pd.read_csv(src / "captions.csv")
    chosen = pick_images(captions)
    assert all(len(v) == PER_CATEGORY for v in chosen.values()), {k: len(v) for k, v in chosen.items()}
    root = tmp_path_factory.mktemp("seed") / "dataset"
    mapping = {}
    for cat, items in chosen.items():
        (root / cat).mkdir(parents=True)
        for rel, cap in items:
            name = f"{cat.split('_', 1)[1]}_{len(mapping):02d}.jpg"
            shutil.copyfile(src / rel, root / cat / name)
            mapping[f"{cat}/{name}"] = cap
    (root / "captions.json").write_text(json.dumps(mapping, indent=1))
    return root


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    from cliplab.data.shared import shared_path
    from cliplab.models.backends.clip_hf import build_random_clip

    cfg = shared_path("models", "clip-vit-b32-config")
    if cfg is None:
        pytest.skip("shared CLIP config ../shared/models/clip-vit-b32-config is absent")
    return build_random_clip(tmp_path_factory.mktemp("clip") / "tiny-clip", cfg, tiny=True, seed=0)


@pytest.fixture(scope="session")
def analysis(seed_dataset, lite_encoder, tiny_clip, tmp_path_factory):
    """One `analyze` run of preclip, lite and a tiny random CLIP on the seed dataset (shared by tests)."""
    from cliplab.analysis import analyze

    out = tmp_path_factory.mktemp("results")
    summary = analyze(seed_dataset, models=["preclip", lite_encoder, str(tiny_clip)], out=out)
    return out, summary
