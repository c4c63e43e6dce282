"""The library's comparison: one query on each model's index of one folder, matched by path."""

from __future__ import annotations

import pytest

from cliplab.errors import CliplabError, QueryError
from cliplab.search import parse
from cliplab.search.compare import compare, open_models, ranks
from tests.helpers import ToyEncoder, make_image
from tests.serve.test_compare import SwappedToy

COLOURS = {"red.jpg": (220, 20, 20), "green.jpg": (20, 200, 20), "blue.jpg": (20, 20, 220), "grey.jpg": (128,) * 3}


def loader(spec: str):
    return SwappedToy() if spec == "toy2" else ToyEncoder()


@pytest.fixture
def cols(tmp_path, monkeypatch):
    from cliplab.index import Collection

    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "home"))
    pics = tmp_path / "pics"
    for name, colour in COLOURS.items():
        make_image(pics / name, color=colour)
    late = make_image(pics / "late.jpg", color=(200, 200, 20))
    with Collection(pics, model="toy2", loader=loader) as c:
        c.update()  # toy2's index holds late.jpg; toy's (made below) does not
    late.unlink()
    with Collection(pics, model="toy", loader=loader) as c:
        c.update()
    opened = open_models(pics, ["toy", "toy2"], loader=loader)
    yield opened
    for c in opened:
        c.close()


def test_columns_by_path_with_the_references_ids(cols):
    toy, toy2 = cols
    got = compare(cols, parse("a red photo"), k=4)
    assert [c.model for c in got.columns] == ["toy", "toy2"]
    for c in got.columns:
        assert c.paths == [h.relpath for h in c.hits]
        assert all(c.ids[p] == toy.catalog.id_of(p) for p in c.ids)  # the reference's (toy's) ids
    assert got.columns[1].missing == ("late.jpg" in got.columns[1].paths)
    shared = set(got.columns[0].paths) & set(got.columns[1].paths)
    assert got.columns[0].only_here == set(got.columns[0].paths) - shared
    assert got.agreement["overlap"]["toy|toy2"] == round(len(shared) / 4, 4)


def test_like_id_is_the_same_photo_under_every_model(cols):
    toy, toy2 = cols
    red = toy.catalog.id_of("red.jpg")
    assert red != toy2.catalog.id_of("red.jpg")  # each index has its own ids
    got = compare(cols, parse(f"like:{red}"), k=5)
    assert all("red.jpg" not in c.paths for c in got.columns)  # the query's photo is left out under both
    out = ranks(cols, parse(f"like:{red}"), ["grey.jpg", "red.jpg", "late.jpg"])
    assert [r["rank"] for r in out["red.jpg"]] == [None, None]
    assert out["late.jpg"][0]["rank"] is None and out["late.jpg"][1]["rank"] is not None  # only toy2 has it
    assert [r["of"] for r in out["grey.jpg"]] == [3, 4]


def test_a_photo_one_index_lacks_cannot_be_the_query(cols):
    toy, toy2 = cols
    late = toy2.catalog.id_of("late.jpg")
    with pytest.raises(QueryError, match=r"like:\d+ \(late.jpg\) is not in the toy index .* --model toy"):
        compare([toy2, toy], parse(f"like:{late}"), k=3)  # toy2 is the reference: toy lacks late.jpg


def test_refusals(cols, tmp_path):
    with pytest.raises(QueryError, match="no indexed image has this id"):
        compare(cols, parse("like:999"), k=3)
    with pytest.raises(CliplabError, match="at most 4"):
        compare(cols * 3, parse("red"), names=list("abcdef"))
    with pytest.raises(CliplabError, match="has no toy3 index; run cliplab index"):
        open_models(cols[0].folder, ["toy", "toy3"], loader=loader)


def test_an_uploaded_image_is_each_models_own_vector(cols):
    """An image sent as a vector belongs to one model: with every model's vector of it (image_vectors)
    each column searches by its own; without them, the others refuse it."""
    from PIL import Image

    from cliplab.search import Term

    toy, toy2 = cols
    red = Image.new("RGB", (40, 30), COLOURS["red.jpg"])
    vectors = {"toy": ToyEncoder().encode_images([red])[0], "toy2": SwappedToy().encode_images([red])[0]}
    terms = [Term("image", "upload.png", 1.0, vectors["toy"])]
    got = compare(cols, terms, k=2, image_vectors=vectors)
    assert [c.paths[0] for c in got.columns] == ["red.jpg", "red.jpg"]
    assert all(c.hits[0].score == pytest.approx(1.0, abs=1e-4) for c in got.columns)
    out = ranks(cols, terms, ["red.jpg", "blue.jpg"], image_vectors=vectors)
    assert [r["rank"] for r in out["red.jpg"]] == [1, 1] and [r["of"] for r in out["red.jpg"]] == [4, 5]
    with pytest.raises(QueryError, match="belongs to one model"):
        compare(cols, terms, k=2)
    with pytest.raises(CliplabError, match="no toy2 vector"):
        compare(cols, terms, k=2, image_vectors={"toy": vectors["toy"]})
    with pytest.raises(QueryError, match="2 images sent as vectors"):
        compare(cols, terms * 2, k=2, image_vectors=vectors)
