"""Retrieval evaluation on an indexed folder's own captions, from the stored image vectors."""

from __future__ import annotations

import pytest

from cliplab.errors import CliplabError
from cliplab.eval.collection import evaluate_collection
from tests.eval.conftest import ColourEncoder, write_colour_images


class CountingColour(ColourEncoder):
    """The colour model, counting the images it is asked to embed (an evaluation must embed none)."""

    images = 0

    def encode_image_batch(self, batch):
        CountingColour.images += len(batch)
        return super().encode_image_batch(batch)


@pytest.fixture
def col(tmp_path, monkeypatch):
    from cliplab.index import Collection

    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "home"))
    write_colour_images(tmp_path / "pics", per_class=1)  # red_0, green_0, blue_0
    c = Collection(tmp_path / "pics", model="colour", encoder=CountingColour())
    c.update()
    CountingColour.images = 0
    yield c
    c.close()


def test_captions_csv_gives_both_directions(col):
    (col.folder / "captions.csv").write_text(
        "path,caption\nred_0.png,a red square\nred_0.png,something red\ngreen_0.png,a green square\n"
        "blue_0.png,a red thing\nmissing.png,not indexed\n"
    )
    got = evaluate_collection(col)
    assert got["captions"] == "captions.csv" and got["model"] == "colour"
    assert got["images"] == 3 and got["captions_count"] == 4  # missing.png is not in the index
    assert got["R@1"] == 0.75  # 3 of 4: "a red thing" (blue_0's caption) finds red_0
    # image→text: green only (red_0 ties with blue_0's "a red thing", and ties count against the model)
    assert got["R@10"] == 1.0 and got["image_R@1"] == pytest.approx(1 / 3, abs=1e-4)
    assert CountingColour.images == 0  # the stored vectors, never the images again


def test_sidecar_captions_when_there_is_no_file(col):
    for name in ("red", "green", "blue"):
        (col.folder / f"{name}_0.txt").write_text(f"a {name} photo\n")
    got = evaluate_collection(col)
    assert got["captions"] == "sidecar .txt" and got["captions_count"] == 3 and got["R@1"] == 1.0


def test_no_captions_is_one_clear_error(col):
    with pytest.raises(CliplabError, match="has no captions"):
        evaluate_collection(col)
    (col.folder / "captions.jsonl").write_text('{"path": "elsewhere.png", "caption": "a red square"}\n')
    with pytest.raises(CliplabError, match="has no captions of its colour index.s photos: no row of captions.jsonl"):
        evaluate_collection(col)
