"""Near-duplicate groups: the ANN path agrees with the exact one; a model's calibrated rule groups
transformed copies and not distinct photos of one kind; only candidates are verified."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image, ImageOps
from typer.testing import CliRunner

import cliplab.index.collection as collection
from cliplab.cli.app import app
from cliplab.index import Collection
from cliplab.index.duplicates import duplicate_groups
from cliplab.index.verify import DEFAULT_THRESHOLD, duplicate_rule

# flickr8k-1k test photos. SOURCES get copies; LOOKALIKES are two different cyclists in traffic, which
# `lite` scores 0.86 (above its best single threshold, 0.783) and GeM 0.65 (not confirmed).
SOURCES = ("1088767354_2acee738cf.jpg", "1107246521_d16a476380.jpg")
LOOKALIKES = ("2070831523_5035d5537e.jpg", "2073174497_18b779999c.jpg")
CYCLISTS = ["cyclist0.jpg", "cyclist1.jpg"]


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


def test_confirm_sees_each_candidate_pair_once_and_only_those():
    angles = np.array([0.0, 0.1, 0.3, 1.5])  # cosines: 0~1 0.995, 1~2 0.98, 0~2 0.955, 3 far from all
    vecs = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    ids = np.array([10, 11, 12, 13])
    seen = []

    def confirm(a, b):
        seen.extend(zip(a.tolist(), b.tolist()))
        return np.array([{x, y} != {11, 12} for x, y in zip(a, b)])

    groups = duplicate_groups(ids, vecs, 0.95, confirm=confirm)
    assert sorted(tuple(sorted(p)) for p in seen) == [(10, 11), (10, 12), (11, 12)]
    assert [sorted(m) for m, _, _ in groups] == [[10, 11, 12]]  # 10~11 and 10~12 still join them
    assert duplicate_groups(ids, vecs, 0.95, confirm=lambda a, b: np.zeros(len(a), bool)) == []


def test_rule_comes_from_the_model_unless_given():
    lite = duplicate_rule("lite")
    assert lite.verify is not None and lite.threshold < 0.7 and not lite.note
    assert duplicate_rule("lite", threshold=0.9) == duplicate_rule("lite", 0.9, verify=False)
    assert duplicate_rule("lite", threshold=0.9).verify is None  # an explicit threshold keeps its meaning
    assert duplicate_rule("lite", 0.9, verify=True).verify == lite.verify
    assert duplicate_rule("lite", verify=0.5).verify == 0.5
    assert 0.7 < duplicate_rule("lite", verify=False).threshold < 0.95  # lite's calibrated single threshold
    hub = duplicate_rule("openai/clip-vit-base-patch32")
    assert (hub.threshold, hub.verify) == (DEFAULT_THRESHOLD, None)
    assert hub.note == "no calibrated duplicate threshold for openai/clip-vit-base-patch32: using 0.95 on its cosine"
    assert duplicate_rule("conse", verify=True).verify is not None  # the verifier works for any model


def _copies(src, folder, stem: str) -> list[str]:
    with Image.open(src) as im:
        im = im.convert("RGB")
    w, h = im.size
    small = im.copy()
    small.thumbnail((120, 120))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=30)
    made = {
        f"{stem}.jpg": im,
        f"{stem}-120px.jpg": small,
        f"{stem}-q30.jpg": Image.open(buf),
        f"{stem}-crop.png": im.crop((w // 13, h // 13, w - w // 13, h - h // 13)),
        f"{stem}-mirror.png": ImageOps.mirror(im),
        f"{stem}-grey.png": im.convert("L"),
    }
    for name, img in made.items():
        img.save(folder / name, quality=95) if name.endswith(".jpg") and "q30" not in name else img.save(folder / name)
    return sorted(str(folder / n) for n in made)


@pytest.fixture
def copies(shared, tmp_path, lite_encoder):
    """Two photos with five copies each, and two look-alike photos, indexed with `lite`."""
    src, folder = shared / "data" / "flickr8k-1k" / "images", tmp_path / "dups"
    folder.mkdir()
    groups = [_copies(src / name, folder, f"photo{i}") for i, name in enumerate(SOURCES)]
    for i, name in enumerate(LOOKALIKES):
        shutil.copy(src / name, folder / CYCLISTS[i])
    with Collection(folder, encoder=lite_encoder) as col:
        col.update()
    return folder, groups


def test_lite_groups_copies_and_not_lookalikes(copies, lite_encoder):
    folder, expected = copies
    with Collection(folder, encoder=lite_encoder) as col:
        assert sorted(g.paths for g in col.duplicates()) == expected
        single = col.duplicates(verify=False)  # lite's best single threshold joins the cyclists
        assert [str(folder / n) for n in CYCLISTS] in [g.paths for g in single]
        assert not any(str(folder / "photo0-120px.jpg") in g.paths for g in col.duplicates(threshold=0.95))


def test_cli_names_the_rule(copies):
    folder, expected = copies
    runner = CliRunner()
    res = runner.invoke(app, ["duplicates", str(folder), "--no-update", "--format", "table"])
    assert res.exit_code == 0, res.stderr
    lite = duplicate_rule("lite")
    assert res.stdout.startswith(
        f"duplicates: model cosine ≥ {lite.threshold:g}, confirmed by GeM of EfficientNet-Lite0 ≥ {lite.verify:g}\n"
    )
    assert "cyclist" not in res.stdout and "group 2: 6 images" in res.stdout
    res = runner.invoke(app, ["duplicates", str(folder), "--no-update", "--threshold", "0.8", "--json"])
    out = json.loads(res.stdout)
    assert (out["threshold"], out["verifier"], out["rule"]) == (0.8, None, "model cosine ≥ 0.8")
    assert [str(folder / n) for n in CYCLISTS] in [g["paths"] for g in out["groups"]]
    res = runner.invoke(app, ["duplicates", str(folder), "--no-update", "--threshold", "0.8", "--verify", "--json"])
    assert json.loads(res.stdout)["verify_threshold"] == lite.verify and len(json.loads(res.stdout)["groups"]) == 2
    res = runner.invoke(app, ["duplicates", str(folder), "--no-update", "--no-verify", "--verify-threshold", "0.5"])
    assert res.exit_code == 2 and res.stderr.startswith("error: --verify-threshold")


def test_cli_says_when_a_model_has_no_calibration(photos, tiny):
    shutil.copy(photos / "img003.jpg", photos / "copy3.jpg")
    with Collection(photos, encoder=tiny) as col:
        col.update()
    res = CliRunner().invoke(app, ["duplicates", str(photos), "--no-update", "--format", "tsv"])
    assert res.exit_code == 0, res.stderr
    assert f"no calibrated duplicate threshold for {tiny.name}: using 0.95 on its cosine\n" in res.stderr
    assert "duplicates: model cosine ≥ 0.95\n" in res.stderr and str(photos / "copy3.jpg") in res.stdout
