"""`/api/search`: the default mode (hybrid on a folder's index), what the answer says it ran, and
POST with a JSON list of terms (texts, indexed ids, base64 images, weights)."""

from __future__ import annotations

import base64

from cliplab.search import parse, run
from tests.serve.conftest import COLOURS, ids_by_path
from tests.serve.test_api import png_bytes
from tests.serve.test_shards import shards_client  # noqa: F401 (a fixture)


def test_plain_text_on_a_folder_is_hybrid_like_the_library(state_client):
    client, state = state_client
    col = state.sources["pics"].collection
    body = client.get("/api/search", params={"q": "red", "n": 3}).json()
    assert body["mode"] == "hybrid" and body["sort"] == {"by": "relevance", "rule": None}
    assert [x["path"] for x in body["results"]] == [h.relpath for h in run(col, parse("red"), k=3)]
    assert {x["path"] for x in body["results"][:2]} == {"red.jpg", "sub/red2.png"}  # the file names hold "red"
    semantic = client.get("/api/search", params={"q": "red", "n": 3, "mode": "semantic"}).json()
    assert semantic["mode"] == "semantic"
    assert [x["score"] for x in semantic["results"]] == [h.score for h in col.search("red", k=3)]


def test_date_sort_names_its_cut_off_rule(client):
    body = client.get("/api/search", params={"q": "red", "sort": "date", "mode": "semantic"}).json()
    assert body["sort"]["by"] == "date" and "top − 0.65 × (top − typical)" in body["sort"]["rule"]
    assert body["sort"]["cutoff"] <= body["sort"]["top"] and body["sort"]["relevant"] == len(body["results"])
    hybrid = client.get("/api/search", params={"q": "red", "sort": "-date"}).json()
    assert "every keyword match" in hybrid["sort"]["rule"]


def test_an_empty_result_carries_a_message(client):
    body = client.get("/api/search", params={"q": "red", "after": "2999", "type": "png"}).json()
    assert body["results"] == [] and "after 2999" in body["message"] and "type png" in body["message"]
    assert "message" not in client.get("/api/search", params={"q": "red"}).json()


def test_json_terms_rank_as_the_expression_does(state_client):
    client, state = state_client
    col = state.sources["pics"].collection
    ids = ids_by_path(client)
    terms = [{"text": "a red square", "weight": 2}, {"image_id": ids["green.jpg"]}, {"text": "blue", "weight": -1}]
    body = client.post("/api/search", json={"terms": terms, "n": 4, "mode": "semantic"}).json()
    want = run(col, parse(f'2:"a red square" + like:{ids["green.jpg"]} - "blue"'), k=4, mode="semantic")
    assert [x["path"] for x in body["results"]] == [h.relpath for h in want]
    assert [t["kind"] for t in body["terms"]] == ["text", "like", "text"] and body["terms"][2]["weight"] == -1
    assert "green.jpg" not in [x["path"] for x in body["results"]]  # an image_id is left out, as like: is


def test_json_base64_image_with_filters_and_an_expression(client):
    red = base64.b64encode(png_bytes((225, 25, 20))).decode()
    body = client.post("/api/search", json={"terms": [{"image": red, "name": "q.png"}], "n": 2}).json()
    assert {x["path"] for x in body["results"]} == {"red.jpg", "sub/red2.png"}
    assert body["terms"] == [{"kind": "image", "value": "q.png", "weight": 1.0}]
    body = client.post("/api/search?type=png", json={"terms": [{"image": "data:image/png;base64," + red}]}).json()
    assert body["results"][0]["path"] == "sub/red2.png" and body["filters"] == {"type": "png"}
    ids = ids_by_path(client)
    body = client.post("/api/search", json={"q": f"like:{ids['grey.jpg']}", "terms": [{"image": red}]}).json()
    assert len(body["terms"]) == 2 and "grey.jpg" not in [x["path"] for x in body["results"]]


def test_bad_terms_are_400s_never_500s(make_client):
    client, _ = make_client(raise_server_exceptions=False)
    many = [{"text": f"t{i}"} for i in range(17)]
    for body, needle in [
        ({"terms": many}, "at most 16"),
        ({"terms": [{"image_id": 99999999}]}, "no indexed image has this id"),
        ({"terms": [{"image_id": "x1"}]}, "image_id must be"),
        ({"terms": [{"text": "a", "weight": 0}]}, "non-zero"),
        ({"terms": [{"text": "a", "weight": -1}]}, "at least one term to look for"),
        ({"terms": [{"text": "a", "weight": 1}, {"text": "a", "weight": -1}]}, "cancel out"),
        ({"terms": [{"text": "a", "image_id": 1}]}, "exactly one of"),
        ({"terms": [{"text": "a", "weight": "2"}]}, "weight must be a finite number"),
        ({"terms": [{"text": "a", "weight": 10**400}], "threshold": 10**400}, "finite number"),
        ({"terms": [{"image": "not base64!"}]}, "base64"),
        ({"terms": [{"image": base64.b64encode(b"hello").decode()}]}, "image"),
        ({"terms": "a beach"}, "terms must be a list"),
        ({"q": '"unclosed'}, "unbalanced quotes"),
        ({"terms": [{"text": "a"}], "after": "2019-13"}, "month must be in 1..12"),
        ({"terms": [{"text": "a"}], "under": "../.."}, "sub-folder"),
        ({}, "JSON like"),
    ]:
        r = client.post("/api/search", json=body)
        assert r.status_code == 400 and needle in r.json()["error"], (body, r.text)
    r = client.post("/api/search", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    assert len(COLOURS) == len(client.get("/api/search", params={"q": "red"}).json()["results"])  # still serving


def test_an_index_built_from_embeddings_is_semantic_by_default_without_filters(shards_client):  # noqa: F811
    client, _ = shards_client
    green = base64.b64encode(png_bytes((20, 200, 20))).decode()
    body = client.post("/api/search", json={"terms": [{"image": green}], "n": 1}).json()
    assert body["mode"] == "semantic" and body["results"][0]["caption"] == "a green square"
    first = body["results"][0]["id"]
    body = client.get("/api/search", params={"q": f'like:{first} + 0.5:"grass"', "n": 2}).json()
    assert body["mode"] == "semantic" and first not in [x["id"] for x in body["results"]]
    for params in ({"q": "green", "type": "png"}, {"q": "green", "sort": "date"}):  # no photo metadata there
        r = client.get("/api/search", params=params)
        assert r.status_code == 400 and "folder's index" in r.json()["error"], (params, r.text)
    r = client.get("/api/search", params={"q": "like:123456"})
    assert r.status_code == 400 and "no indexed image has this id" in r.json()["error"]
