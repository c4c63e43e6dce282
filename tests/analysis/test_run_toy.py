"""`analyze` plumbing with the weight-free ToyEncoder: generated captions, unreadable images."""

import json

import pandas as pd

from cliplab.analysis import analyze
from cliplab.analysis.run import model_slug
from tests.helpers import ToyEncoder, make_bad_files, make_image

COLORS = {"1_red_things": (220, 20, 20), "2_blue_things": (20, 20, 220)}


def _folder(root):
    for cat, rgb in COLORS.items():
        for i in range(4):
            make_image(root / cat / f"{i}.jpg", color=tuple(max(0, c - 15 * i) for c in rgb))
    return root


def test_imagefolder_report_says_captions_were_generated(tmp_path):
    summary = analyze(_folder(tmp_path / "ds"), models=[ToyEncoder()], out=tmp_path / "res", projections=("pca",))
    assert summary["dataset"]["generated_captions"] and summary["dataset"]["captions"] == 2
    m = summary["models"]["toy"]
    assert m["images"] == 8 and m["k"] == 2 and m["purity"] == 1.0  # colours separate perfectly
    text = pd.read_csv(tmp_path / "res" / "toy" / "text_metadata.csv")
    assert list(text["text"]) == ["a photo of a red things.", "a photo of a blue things."]
    assert (text["image_row"] == -1).all()
    for name in ("compare.md", "report.html"):
        assert "generated" in (tmp_path / "res" / name).read_text(encoding="utf-8")
    assert any("generated" in r for r in summary["reading"])


def test_unreadable_images_are_skipped_and_reported(tmp_path):
    root = _folder(tmp_path / "ds")
    bad = make_bad_files(root / "1_red_things")
    mapping = {f"{c}/{i}.jpg": f"a {c} number {i}" for c in COLORS for i in range(4)}
    mapping["1_red_things/truncated.jpg"] = "a broken file"
    mapping["1_red_things/notes.png"] = "not an image"
    for f in bad.values():  # only the two listed ones belong to the dataset
        if f.name not in ("truncated.jpg", "notes.png"):
            f.unlink()
    (root / "captions.json").write_text(json.dumps(mapping))
    summary = analyze(root, models=[ToyEncoder()], out=tmp_path / "res", projections=())
    m = summary["models"]["toy"]
    assert m["images"] == 8 and m["failed_images"] == 2 and m["captions"] == 10
    meta = pd.read_csv(tmp_path / "res" / "toy" / "image_metadata.csv")
    assert len(meta) == 10 and set(meta.loc[meta["status"] != "ok", "image"]) == {
        "1_red_things/truncated.jpg",
        "1_red_things/notes.png",
    }
    sim = pd.read_csv(tmp_path / "res" / "toy" / "similarity_matrix.csv", index_col=0)
    assert sim.shape == (8, 10)
    assert m["matched_n"] == 8  # captions of unreadable images are left out of the statistics
    assert any("could not be read" in r for r in summary["reading"])


def test_model_slugs(tmp_path):
    (tmp_path / "my-clip").mkdir()
    assert model_slug("lite") == "lite"
    assert model_slug("openai/clip-vit-base-patch32") == "openai-clip-vit-base-patch32"
    assert model_slug(str(tmp_path / "my-clip")) == "my-clip"
    assert model_slug("lite", taken=["lite"]) == "lite-2"
