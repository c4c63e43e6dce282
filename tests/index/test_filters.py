"""Filters (dates, type, camera, size, orientation, GPS) narrow the nearest-neighbour step itself:
when at least k photos pass, exactly k come back, through the exact path and the FAISS one."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import cliplab.index.collection as collection_module
from cliplab.errors import QueryError
from cliplab.index import photos
from cliplab.index.filters import make_filters
from tests.index.helpers import TinyEncoder, make_dated_folder


@pytest.fixture
def col(dated_collection):
    return dated_collection


def meta_of(col, hits):
    return photos.get(col.catalog, [h.id for h in hits])


@pytest.mark.parametrize("exact_max", [10_000, 3])  # the exact path, and FAISS with an id selector
def test_exactly_k_that_all_pass(col, monkeypatch, exact_max):
    monkeypatch.setattr(collection_module, "SEARCH_EXACT_MAX", exact_max)
    q = col.catalog.vectors()[1][0]
    f = make_filters(after="2018", before="2019", camera="nikon")
    n = col.count_under(filters=f)
    assert 3 <= n < 36
    hits = col.search_vector(q, k=3, filters=f)
    assert len(hits) == 3
    for m in meta_of(col, hits).values():
        assert m["taken_at"][:4] in ("2018", "2019") and "NIKON" in m["camera_make"]
    everything = col.search_vector(q, k=50, filters=f)
    assert len(everything) == n  # all that pass, and nothing else


def test_each_filter(col):
    q = col.catalog.vectors()[1][0]

    def passing(**kw):
        return meta_of(col, col.search_vector(q, k=50, filters=make_filters(**kw)))

    assert {m["orientation"] for m in passing(orientation="portrait").values()} == {"portrait"}
    assert len(passing(has_gps=True)) == 9 and all(m["gps_lat"] == 48.85 for m in passing(has_gps=True).values())
    assert {m["width"] for m in passing(min_width=50).values()} == {64}
    assert {m["height"] for m in passing(min_height=50).values()} == {60}
    assert {m["format"] for m in passing(types="png").values()} == {"PNG"} and len(passing(types="png")) == 4
    assert len(passing(types="JPEG,.jpg")) == 32  # jpeg and jpg are one type
    assert {m["taken_at"][:7] for m in passing(after="2019-06", before="2019-06").values()} <= {"2019-06"}
    assert passing(camera="no such camera") == {}  # nothing passes: an empty result, not an error


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"after": "2019-13"}, "month must be in 1..12"),
        ({"before": "last year"}, "YYYY, YYYY-MM or YYYY-MM-DD"),
        ({"after": "2020", "before": "2019"}, "no date is in both"),
        ({"orientation": "diagonal"}, "landscape, portrait, square"),
        ({"min_width": 0}, "whole number of pixels"),
        ({"types": "jpg;drop table"}, "file extensions"),
    ],
)
def test_bad_filters_are_one_clear_error(kw, needle):
    with pytest.raises(QueryError, match=needle):
        make_filters(**kw)


def test_partial_dates_are_whole_periods():
    f = make_filters(after="2019", before="2019-02")
    assert (f.after, f.before) == ("2019-01-01T00:00:00", "2019-03-01T00:00:00")
    f = make_filters(before="2019-12-31")
    assert f.before == "2020-01-01T00:00:00" and f.describe() == "before 2019-12-31"


def test_cli_filters(tmp_path, monkeypatch):
    import cliplab.cli.index as cli_index
    from cliplab.cli import app

    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(cli_index, "load_model", lambda spec, *a, **k: TinyEncoder())
    folder = make_dated_folder(tmp_path / "photos")
    runner = CliRunner()
    base = ["search", "sunset", "--dir", str(folder), "--model", "lite", "-k", "5"]
    flags = ["--after", "2017", "--before", "2017", "--orientation", "landscape", "--has-gps"]
    r = runner.invoke(app, [*base, "--json", *flags])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["filters"] == {"after": "2017", "before": "2017", "orientation": "landscape", "has_gps": "yes"}
    assert len(out["results"]) == 5  # six photos pass: 2017, GPS, landscape
    r = runner.invoke(app, [*base, "--camera", "Leica"])
    assert r.exit_code == 0 and "no indexed photo matches camera Leica" in r.stderr
    r = runner.invoke(app, [*base, "--after", "2019-02-30"])
    assert r.exit_code == 2 and r.stderr.startswith("error:") and "day is out of range" in r.stderr


def test_facets_say_what_there_is_to_filter_by(col):
    f = photos.facets(col.catalog)
    assert [y["year"] for y in f["years"]] == ["2017", "2018", "2019", "2020"] and sum(
        y["count"] for y in f["years"]
    ) == 36
    assert {c["camera"]: c["count"] for c in f["cameras"]} == {
        "Canon EOS 5D": 12,
        "NIKON CORPORATION NIKON D750": 12,
        "Apple iPhone 12": 12,
    }
    assert {t["type"]: t["count"] for t in f["types"]} == {"jpg": 32, "png": 4}
    assert f["with_gps"] == 9 and f["orientations"] == {"portrait": 12, "landscape": 24}


def test_a_filtered_search_sees_what_an_update_added(tmp_path):
    """The ids a filter allows are kept between searches (a server's filter bar), but only for one
    generation of the catalog: a file indexed since is found by the next search."""
    from PIL import Image

    from cliplab.index import Collection

    for i in range(2):
        Image.new("RGB", (32, 24), (90 * i, 40, 200)).save(tmp_path / f"a{i}.png")
    with Collection(tmp_path, index_dir=tmp_path / "idx", encoder=TinyEncoder()) as col:
        col.update()
        q = col.catalog.vectors()[1][0]
        assert len(col.search_vector(q, k=10, glob="*.png")) == 2
        assert len(col.search_vector(q, k=10, glob="*.png")) == 2  # the second time from the kept ids
        Image.new("RGB", (32, 24), "green").save(tmp_path / "a2.png")
        col.update()
        assert sorted(h.relpath for h in col.search_vector(q, k=10, glob="*.png")) == ["a0.png", "a1.png", "a2.png"]
