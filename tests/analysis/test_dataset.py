"""Every dataset layout `analyze` accepts, and clear errors for malformed ones (no model needed)."""

import json

import numpy as np
import pandas as pd
import pytest

from cliplab.analysis.clusters import purity
from cliplab.analysis.dataset import category_phrase, load_dataset
from cliplab.analysis.scores import similarity_stats
from cliplab.errors import DataError
from tests.helpers import make_image


@pytest.fixture
def folder(tmp_path):
    for cat in ("1_cats", "2_cars"):
        for i in range(3):
            make_image(tmp_path / "ds" / cat / f"{cat}_{i}.jpg", color=(40 * i, 80, 200 if cat == "2_cars" else 20))
    return tmp_path / "ds"


def test_seed_mapping(folder):
    mapping = {f"{c}/{c}_{i}.jpg": f"caption {c} {i}" for c in ("2_cars", "1_cats") for i in range(3)}
    (folder / "captions.json").write_text(json.dumps(mapping))
    ds = load_dataset(folder)
    assert ds.layout == "seed" and len(ds.images) == 6 and len(ds.captions) == 6
    assert list(ds.images["category"]) == ["1_cats"] * 3 + ["2_cars"] * 3  # grouped by category
    for _, row in ds.captions.iterrows():
        assert ds.display_path(ds.images["path"][row["image"]]) in mapping
        assert mapping[ds.display_path(ds.images["path"][row["image"]])] == row["caption"]
    rel = ds.relevance()
    assert rel.shape == (6, 6) and rel.sum() == 6 and (rel.sum(axis=1) == 1).all()


def test_seed_list_with_categories_and_several_captions(folder):
    items = [
        {"file": "1_cats/1_cats_0.jpg", "captions": ["a cat", "a small cat"], "category": "felines"},
        {"path": "2_cars/2_cars_0.jpg", "text": "a car"},
    ]
    (folder / "captions.json").write_text(json.dumps(items))
    ds = load_dataset(folder / "captions.json")
    assert sorted(ds.images["category"]) == ["2_cars", "felines"]
    assert any("4 image(s)" in n and "left out" in n for n in ds.notes)  # the unlisted ones
    assert len(ds.captions) == 3
    cat_img = ds.images.index[ds.images["category"] == "felines"][0]
    assert (ds.captions["image"] == cat_img).sum() == 2


@pytest.mark.parametrize(
    "content, needle",
    [
        ({"1_cats/nope.jpg": "x"}, "entry 0 ('1_cats/nope.jpg'): image file not found"),
        ({"1_cats/1_cats_0.jpg": None}, "caption must be a string or a list of strings, got NoneType"),
        ({"1_cats/1_cats_0.jpg": "  "}, "empty caption"),
        ([{"image": "1_cats/1_cats_0.jpg", "caption": "ok"}, "just a string"], "entry 1: expected an object"),
        ([{"image": "1_cats/1_cats_0.jpg"}], "missing a caption key"),
        ([{"image": 7, "caption": "x"}], "image path must be a non-empty string"),
        ([{"image": "1_cats/1_cats_0.jpg", "caption": "x", "category": ["a"]}], "category must be a string"),
        ("a string", "expected a JSON object"),
        ({}, "no entries"),
    ],
)
def test_malformed_seed_json(folder, content, needle):
    (folder / "captions.json").write_text(json.dumps(content))
    with pytest.raises(DataError) as e:
        load_dataset(folder)
    assert needle in str(e.value) and "captions.json" in str(e.value)
    assert "\n" not in str(e.value)


def test_captions_table_with_and_without_category(folder, tmp_path):
    rows = [
        {"path": f"{c}/{c}_{i}.jpg", "caption": f"{c} number {i}", "split": "test" if i else "train"}
        for c in ("1_cats", "2_cars")
        for i in range(3)
    ]
    pd.DataFrame(rows).to_csv(folder / "pairs.csv", index=False)
    ds = load_dataset(folder / "pairs.csv")
    assert ds.layout == "captions-table" and set(ds.images["category"]) == {"1_cats", "2_cars"}
    assert load_dataset(folder / "pairs.csv", split="test").images.shape[0] == 4
    pd.DataFrame([dict(r, category="animal" if "cats" in r["path"] else "vehicle") for r in rows]).to_json(
        folder / "pairs.jsonl", orient="records", lines=True
    )
    assert set(load_dataset(folder / "pairs.jsonl").images["category"]) == {"animal", "vehicle"}
    with pytest.raises(DataError, match="no rows with split == 'val'"):
        load_dataset(folder / "pairs.csv", split="val")


def test_imagefolder_generates_one_caption_per_category(folder):
    ds = load_dataset(folder)
    assert ds.generated_captions and ds.layout == "imagefolder"
    assert list(ds.captions["caption"]) == ["a photo of a cats.", "a photo of a cars."]
    assert any("generated" in n for n in ds.notes)
    rel = ds.relevance()
    assert rel.shape == (6, 2) and (rel.sum(axis=1) == 1).all() and (rel.sum(axis=0) == 3).all()


def test_missing_dataset_and_category_phrase(tmp_path):
    with pytest.raises(DataError, match="no such dataset"):
        load_dataset(tmp_path / "nothing")
    assert category_phrase("1_drivers_emotions") == "drivers emotions"
    assert category_phrase("dog") == "dog"


def test_similarity_stats_and_purity():
    sim = np.array([[0.9, 0.1, 0.2], [0.0, 0.8, 0.1]])
    rel = np.array([[True, False, False], [False, True, False]])
    s = similarity_stats(sim, rel, ["a", "b"], ["a", "b", "a"])
    assert s["matched_mean"] == pytest.approx(0.85) and s["gap"] == pytest.approx(0.85 - 0.05)
    assert s["mismatched_n"] == 2  # the third caption describes no image: left out
    assert purity(["a", "a", "b", "b"], [0, 0, 0, 1]) == pytest.approx(0.75)
