"""`/api/search` with mode keyword or hybrid on an index built from embeddings: its captions by their
words; filters and date sort stay refused (such an index has no photo metadata)."""

from __future__ import annotations

import pytest

from cliplab.search.query import RRF_K
from tests.index.test_captions import caption_index
from tests.serve.conftest import toy_loader


@pytest.fixture
def client(tmp_path):
    from fastapi.testclient import TestClient

    from cliplab.serve import Settings, create_app, open_state

    state = open_state(
        index_dirs=[caption_index(tmp_path)], loader=toy_loader, settings=Settings(allowed_hosts=["testserver"])
    )
    try:
        with TestClient(create_app(state)) as c:
            yield c
    finally:
        state.close()


def test_keyword_and_hybrid_search_the_captions(client):
    body = client.get("/api/search", params={"q": "black dog grass", "mode": "keyword", "n": 5}).json()
    assert body["mode"] == "keyword" and [r["id"] for r in body["results"]][0] == 0
    assert {r["id"] for r in body["results"]} == {0, 4, 7} and body["results"][0]["score"] == round(1 / (RRF_K + 1), 6)
    assert body["results"][0]["caption"] == "a black dog runs on the grass"
    body = client.get("/api/search", params={"q": "a dog on the beach", "mode": "hybrid", "n": 3}).json()
    assert body["mode"] == "hybrid" and body["results"][0]["id"] == 2 and len(body["results"]) == 3
    # like:ID takes the row's stored vector, and the row itself is left out
    body = client.get("/api/search", params={"q": "like:2 + dog beach", "mode": "hybrid", "n": 8}).json()
    assert 2 not in [r["id"] for r in body["results"]] and body["results"]
    plain = client.get("/api/search", params={"q": "a dog on the beach", "n": 3}).json()
    assert plain["results"][0]["id"] == 2 and plain["results"][0]["score"] > 0.99  # semantic by default


@pytest.mark.parametrize(
    "params, needle",
    [
        ({"q": "dog", "mode": "keyword", "camera": "canon"}, "no photo metadata"),
        ({"q": "dog", "mode": "hybrid", "sort": "date"}, "no photo metadata"),
        ({"q": "dog", "sort": "-date"}, "no photo metadata"),
        ({"q": "dog", "mode": "fuzzy"}, "unknown mode"),
        ({"q": "like:99 + dog", "mode": "hybrid"}, "no indexed image has this id"),
    ],
)
def test_what_such_an_index_cannot_do_is_a_400(client, params, needle):
    r = client.get("/api/search", params=params)
    assert r.status_code == 400 and needle in r.json()["error"], r.text
