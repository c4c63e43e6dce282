"""`/api/search` with expressions, filters, mode and sort: the same functions as `cliplab search`."""

from __future__ import annotations

from cliplab.search import parse, run
from tests.serve.conftest import COLOURS, ids_by_path


def test_an_expression_ranks_as_the_library_does(state_client):
    client, state = state_client
    col = state.sources["pics"].collection
    ids = ids_by_path(client)
    first = next(iter(COLOURS))
    q = f'2:"a red square" - "blue" + like:{ids[first]}'
    body = client.get("/api/search", params={"q": q, "n": 3, "mode": "semantic"}).json()
    assert [t["kind"] for t in body["terms"]] == ["text", "text", "like"] and body["mode"] == "semantic"
    assert [x["path"] for x in body["results"]] == [h.relpath for h in run(col, parse(q), k=3, mode="semantic")]
    assert first not in [x["path"] for x in body["results"]]  # the like: image is left out


def test_filters_mode_and_sort_reach_the_search(client):
    r = client.get("/api/search", params={"q": "red", "type": "png", "n": 5})
    assert r.status_code == 200 and all(x["path"].endswith(".png") for x in r.json()["results"])
    assert r.json()["filters"] == {"type": "png"}
    r = client.get("/api/search", params={"q": "red", "after": "2999"})
    assert r.status_code == 200 and r.json()["results"] == []  # nothing passes: empty, not an error
    body = client.get("/api/search", params={"q": "red", "sort": "-date", "n": 3}).json()
    assert body["sort"]["by"] == "-date" and "cutoff" in body["sort"]
    body = client.get("/api/search", params={"q": "red", "mode": "keyword"}).json()
    assert body["mode"] == "keyword"


def test_bad_values_are_400s_with_a_sentence(client):
    for params, needle in [
        ({"q": '"unclosed'}, "unbalanced quotes"),
        ({"q": "red", "after": "2019-13"}, "month must be in 1..12"),
        ({"q": "red", "min_width": "wide"}, "min_width must be a whole number"),
        ({"q": "red", "orientation": "diagonal"}, "landscape, portrait, square"),
        ({"q": "red", "mode": "fuzzy"}, "unknown mode"),
        ({"q": "red", "sort": "size"}, "unknown sort"),
        ({"q": "like:99999999"}, "no indexed image has this id"),
        ({"q": " + ".join(["a"] * 17)}, "at most 16"),
        ({"q": '"a" OR 1=1 --', "mode": "keyword"}, None),  # plain words, never FTS or SQL syntax
    ]:
        r = client.get("/api/search", params=params)
        if needle is None:
            assert r.status_code == 200, r.text
        else:
            assert r.status_code == 400 and needle in r.json()["error"], (params, r.text)


def test_facets(client, pics):
    body = client.get("/api/facets").json()
    assert body["collection"] == "pics"
    assert {t["type"]: t["count"] for t in body["types"]} == {"jpg": 3, "png": 2}  # broken.jpg is not indexed
    assert sum(y["count"] for y in body["years"]) == 5  # no EXIF here: the files' mtimes
    assert body["cameras"] == [] and body["with_gps"] == 0 and body["orientations"] == {"landscape": 5}
    assert client.get("/api/facets", params={"collection": "nope"}).status_code == 404


def test_results_carry_the_date_the_date_sort_orders_by(tmp_path):
    """Each result of a folder's search says when the photo was taken and from where (EXIF here), so
    the page can show the dates of a date-sorted list; newest first means `taken` descending."""
    from fastapi.testclient import TestClient

    from cliplab.serve import Settings, create_app, open_state
    from tests.index.helpers import make_dated_folder
    from tests.serve.conftest import toy_loader

    folder = make_dated_folder(tmp_path / "dated", n=12)
    state = open_state([folder], model="toy", loader=toy_loader, settings=Settings(allowed_hosts=["testserver"]))
    with TestClient(create_app(state)) as client:
        rows = client.get("/api/search", params={"q": "a photo", "sort": "-date", "n": 12}).json()["results"]
        plain = client.get("/api/search", params={"q": "a photo", "n": 3}).json()["results"]
    state.close()
    taken = [r["taken"] for r in rows]
    assert rows and taken == sorted(taken, reverse=True) and taken[0].startswith("2020-12-15")
    assert {r["taken_from"] for r in rows} == {"DateTimeOriginal"}
    assert all(r["taken"][:4] in ("2017", "2018", "2019", "2020") for r in plain)  # not only in date sort
