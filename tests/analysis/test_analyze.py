"""`analyze` end to end on the tiny seed dataset (real Flickr8k photos and captions) with preclip,
lite and a tiny random CLIP: files, shapes, labels, report integrity, and the headline comparison."""

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from cliplab.cli import app

SLUGS = ("preclip", "lite", "tiny-clip")
N_IMAGES, N_CATS = 20, 4


def test_summary_has_every_model(analysis):
    _, summary = analysis
    assert list(summary["models"]) == list(SLUGS)
    assert summary["dataset"]["images"] == N_IMAGES and summary["dataset"]["categories"] == N_CATS
    assert summary["dataset"]["layout"] == "seed" and not summary["dataset"]["generated_captions"]
    json.loads((analysis[0] / "summary.json").read_text())  # valid JSON (no NaN)


@pytest.mark.parametrize("slug", SLUGS)
def test_model_files_shapes_and_labels(analysis, seed_dataset, slug):
    out, summary = analysis
    d = out / slug
    m = summary["models"][slug]
    img, txt = np.load(d / "image_embeddings.npy"), np.load(d / "text_embeddings.npy")
    assert img.shape == (N_IMAGES, m["dim"]) and txt.shape == (N_IMAGES, m["dim"])
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(txt, axis=1), 1, atol=1e-4)

    captions = json.loads((seed_dataset / "captions.json").read_text())
    imeta = pd.read_csv(d / "image_metadata.csv")
    assert len(imeta) == N_IMAGES and (imeta["status"] == "ok").all()
    assert (imeta["category"] == imeta["image"].str.split("/").str[0]).all()  # category = parent folder
    assert set(imeta["image"]) == set(captions)
    tmeta = pd.read_csv(d / "text_metadata.csv")
    assert len(tmeta) == N_IMAGES
    assert all(captions[i] == t for i, t in zip(tmeta["image"], tmeta["text"]))  # caption ↔ its image
    assert (imeta["image"].to_numpy()[tmeta["image_row"]] == tmeta["image"]).all()

    sim = pd.read_csv(d / "similarity_matrix.csv", index_col=0)
    assert sim.shape == (N_IMAGES, N_IMAGES)
    assert list(sim.index) == list(imeta["image"]) and list(sim.columns) == list(tmeta["text"])
    np.testing.assert_allclose(sim.to_numpy(), img @ txt.T, atol=1e-5)

    # the reported gap is the one in the saved matrix
    matched = np.diag(sim.to_numpy())
    mismatched = sim.to_numpy()[~np.eye(N_IMAGES, dtype=bool)]
    assert m["gap"] == pytest.approx(matched.mean() - mismatched.mean(), abs=1e-5)
    assert m["k"] == N_CATS and 0 <= m["purity"] <= 1 and 0 <= m["nmi"] <= 1 and -1 <= m["ari"] <= 1
    clusters = pd.read_csv(d / "clusters.csv")
    assert len(clusters) == N_IMAGES and clusters["cluster"].nunique() <= N_CATS
    per_cat = pd.read_csv(d / "per_category.csv")
    assert list(per_cat["category"]) == sorted({c.split("/")[0] for c in captions})
    assert (per_cat["images"] == 5).all()


@pytest.mark.parametrize("slug", SLUGS)
def test_pngs_are_valid_images(analysis, slug):
    out, summary = analysis
    figs = summary["models"][slug]["figures"]
    assert {"heatmap", "projection_pca", "projection_tsne", "contact_sheet"} <= set(figs)
    for name in figs.values():
        p = out / slug / name
        assert p.stat().st_size > 1000
        with Image.open(p) as im:
            im.verify()
        with Image.open(p) as im:
            assert im.format == "PNG" and min(im.size) > 50


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href"):
                self.refs.append(v)


def test_report_html_is_one_self_contained_file(analysis):
    out, _ = analysis
    parser = _Refs()
    parser.feed((out / "report.html").read_text(encoding="utf-8"))
    parser.close()
    assert "table" in parser.tags and "img" in parser.tags
    # every figure inlined: the file alone can be mailed or opened anywhere
    assert parser.refs and all(r.startswith("data:image/png;base64,") for r in parser.refs)
    assert len(parser.refs) >= 1 + 4 * len(SLUGS)
    import base64

    first = base64.b64decode(parser.refs[0].split(",", 1)[1])
    assert first == (out / "comparison.png").read_bytes()


def test_compare_md_links_exist_and_numbers_match(analysis):
    out, summary = analysis
    md = (out / "compare.md").read_text(encoding="utf-8")
    import re

    for link in re.findall(r"\]\(([^)]+)\)", md):
        assert (out / link).is_file(), link
    for slug, m in summary["models"].items():
        row = next(line for line in md.splitlines() if line.startswith(f"| {slug} |"))
        assert f"{m['gap']:+.3f}" in row and f"{m['i2t_top1']:.1%}" in row


def test_lite_separates_matched_from_mismatched_better_than_preclip(analysis):
    _, summary = analysis
    lite, pre = summary["models"]["lite"], summary["models"]["preclip"]
    assert lite["gap"] > pre["gap"]
    assert lite["gap"] > 0.05 and lite["gap_in_sd"] > 0.5  # lite is aligned, clearly
    assert lite["i2t_top1"] > lite["i2t_chance"]


def test_reading_is_derived_from_numbers(analysis):
    _, summary = analysis
    models = summary["models"]
    best_gap = max(models, key=lambda s: models[s]["gap"])
    sentence = next(r for r in summary["reading"] if "largest matched-vs-mismatched" in r)
    assert sentence.startswith(best_gap) and f"{models[best_gap]['gap']:+.3f}" in sentence
    assert any("separates the 4 categories best in its image space alone" in r for r in summary["reading"])
    # models are ranked on retrieval / zero-shot figures (never on k-means NMI), and the sentence says so
    ranking = next(r for r in summary["reading"] if r.startswith("Ranking by retrieval and zero-shot figures"))
    mean = {s: np.mean([m[k] for k in ("t2i_top1", "i2t_top1", "category_top1")]) for s, m in models.items()}
    order = sorted(mean, key=lambda s: -mean[s])
    assert [part.split()[0] for part in ranking.split(": ", 1)[1].split(" > ")] == order
    assert order.index("lite") < order.index("preclip")
    assert any(r.startswith("preclip fits its PCA") for r in summary["reading"])


def test_cli_analyze_json(seed_dataset, tmp_path, lite_encoder):
    r = CliRunner().invoke(
        app,
        [
            "analyze",
            str(seed_dataset),
            "--model",
            "lite",
            "--projection",
            "pca",
            "--out",
            str(tmp_path / "res"),
            "--json",
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert list(summary["models"]) == ["lite"]
    assert (tmp_path / "res" / "report.html").is_file() and (tmp_path / "res" / "lite" / "projection_pca.png").is_file()
    assert not (tmp_path / "res" / "lite" / "projection_tsne.png").exists()


@pytest.mark.parametrize(
    "content, needle",
    [
        ('{"1_dogs/missing.jpg": "a dog"}', "'1_dogs/missing.jpg'"),
        ('{"1_dogs/a.jpg": 42}', "entry 0 ('1_dogs/a.jpg')"),
        ('[{"image": "1_dogs/a.jpg", "caption": "a dog"}, {"caption": "no image"}]', "entry 1"),
        ('[{"image": "1_dogs/a.jpg", "caption": ["ok", 3]}]', "entry 0 ('1_dogs/a.jpg')"),
        ('{"1_dogs/a.jpg": "a dog",', "not valid JSON"),
    ],
)
def test_cli_malformed_captions_json_is_one_line_error(tmp_path, content, needle):
    from tests.helpers import make_image

    make_image(tmp_path / "ds" / "1_dogs" / "a.jpg")
    (tmp_path / "ds" / "captions.json").write_text(content)
    r = CliRunner().invoke(app, ["analyze", str(tmp_path / "ds"), "--out", str(tmp_path / "res")])
    assert r.exit_code != 0
    assert needle in r.stderr and "captions.json" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not Path(tmp_path / "res").exists()  # fails before any work
