"""Explore over HTTP: /api/map (202 while computing, then pages of points, json and bin),
/api/clusters, /api/map/members and the search filter from a selection (toy encoder, PCA)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import make_image
from tests.serve.conftest import toy_loader


def ready(client, url: str):
    """The first call starts the map (202); the job is awaited, then the answer is the map's."""
    first = client.get(url)
    if first.status_code == 202:
        body = first.json()
        assert body["computing"] is True and 0 <= body["done"] <= 1 and body["method"] == "pca"
        assert client.app.state.explore_jobs.wait(60)
    got = client.get(url)
    assert got.status_code == 200, got.text
    return first, got


def test_map_is_computed_in_the_background_then_served(state_client):
    client, state = state_client
    first, got = ready(client, "/api/map?method=pca")
    assert first.status_code == 202  # nothing cached yet: deterministic
    m = got.json()
    cat = state.source(None).collection.catalog
    assert m["count"] == 5 and m["method"] == "pca" and m["clusters"] == 2
    assert sorted(m["points"]["id"]) == sorted(cat.ids_matching(None, None).tolist())
    assert m["stale"] is False and m["computing"] is False and m["next_offset"] is None
    x0, y0, x1, y1 = m["bounds"]
    assert min(m["points"]["x"]) == pytest.approx(x0, abs=1e-4) and max(m["points"]["y"]) == pytest.approx(y1, abs=1e-4)
    assert all(len(str(v).split(".")[-1]) <= 4 for v in m["points"]["x"])  # rounded to 4 decimals
    # red and red2 are one colour: same cluster, next to each other
    by_path = {cat.paths([i])[i]: (x, y, c) for i, x, y, c in zip(*m["points"].values())}
    red, red2, blue = by_path["red.jpg"], by_path["sub/red2.png"], by_path["sub/deep/blue.png"]
    assert red[2] == red2[2]
    assert np.hypot(red[0] - red2[0], red[1] - red2[1]) < np.hypot(red[0] - blue[0], red[1] - blue[1])


def test_map_pages_and_binary_layout(client):
    _, whole = ready(client, "/api/map?method=pca")
    points = whole.json()["points"]
    pages, offset = [], 0
    while offset is not None:
        page = client.get(f"/api/map?method=pca&limit=2&offset={offset}").json()
        assert page["limit"] == 2 and len(page["points"]["id"]) <= 2
        pages += page["points"]["id"]
        offset = page["next_offset"]
    assert pages == points["id"]
    raw = client.get("/api/map?method=pca&format=bin&offset=1&limit=3")
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.headers["x-map-count"] == "5" and raw.headers["x-map-method"] == "pca"
    assert len(raw.headers["x-map-bounds"].split(",")) == 4
    rec = np.frombuffer(raw.content, dtype=[("id", "<u4"), ("x", "<f4"), ("y", "<f4"), ("cluster", "<i4")])
    assert len(raw.content) == 3 * 16 and rec["id"].tolist() == points["id"][1:4]
    assert rec["cluster"].tolist() == points["cluster"][1:4]
    np.testing.assert_allclose(rec["x"], points["x"][1:4], atol=1e-4)


def test_clusters_names_sizes_dates_and_summary(client):
    _, got = ready(client, "/api/clusters?method=pca")
    body = got.json()
    assert body["k"] == 2 and "silhouette" in body["rule"]
    assert sum(c["size"] for c in body["clusters"]) == 5
    for c in body["clusters"]:
        assert len(c["names"]) == 3 and all(isinstance(n["name"], str) and -1 <= n["score"] <= 1 for n in c["names"])
        assert 1 <= len(c["representatives"]) <= min(8, c["size"]) and len(c["center"]) == 2
        assert c["dates"] is None  # no EXIF date: a file's mtime is not when it was taken
    assert body["summary"]["images"] == 5 and body["summary"]["text"].startswith("5 photos in 2 groups: ")


def test_members_of_a_cluster_and_a_region(client):
    _, got = ready(client, "/api/clusters?method=pca")
    big = max(got.json()["clusters"], key=lambda c: c["size"])
    rows = client.get(f"/api/map/members?method=pca&cluster={big['cluster']}").json()
    assert rows["total"] == big["size"] and [r["id"] for r in rows["results"]][:1] == big["representatives"][:1]
    assert all(r["url"].endswith(f"/image/pics/{r['id']}") and r["cluster"] == big["cluster"] for r in rows["results"])
    assert [r["rank"] for r in rows["results"]] == list(range(1, big["size"] + 1))
    paged = client.get(f"/api/map/members?method=pca&cluster={big['cluster']}&offset=1&n=1").json()
    assert paged["total"] == big["size"] and [r["rank"] for r in paged["results"]] == [2]
    text = client.get(f"/api/map/members?method=pca&cluster={big['cluster']}&format=paths")
    assert text.headers["content-type"].startswith("text/plain")
    assert text.headers["content-disposition"].startswith("attachment")
    assert text.text.splitlines() == [r["path"] for r in rows["results"]]
    region = client.get("/api/map/members?method=pca&region=1,1,-1,-1").json()  # the whole map, any corner order
    assert region["total"] == 5


@pytest.mark.parametrize(
    "query, status",
    [
        ("/api/map?method=pca&format=xml", 400),
        ("/api/map?method=pca&limit=0", 400),
        ("/api/map?method=pca&offset=-1", 400),
        ("/api/map?method=tsne", 400),
        ("/api/map?model=lite", 404),
        ("/api/map?collection=nope", 404),
        ("/api/map/members?method=pca", 400),
        ("/api/map/members?method=pca&cluster=1&region=0,0,1,1", 400),
        ("/api/map/members?method=pca&cluster=99", 400),
        ("/api/map/members?method=pca&cluster=x", 400),
        ("/api/map/members?method=pca&region=0,0,1", 400),
        ("/api/map/members?method=pca&region=0,0,1,nan", 400),
    ],
)
def test_bad_input_is_a_clear_4xx(client, query, status):
    ready(client, "/api/map?method=pca")
    got = client.get(query)
    assert got.status_code == status and "error" in got.json(), got.text


def test_search_filtered_by_a_cluster_or_region(client):
    no_map = client.get("/api/search?q=red&cluster=0&mode=semantic")
    assert no_map.status_code == 409 and "GET /api/map" in no_map.json()["error"]
    ready(client, "/api/map")  # 5 photos: auto is PCA
    clusters = client.get("/api/clusters").json()["clusters"]
    for c in clusters:
        got = client.get(f"/api/search?q=red&cluster={c['cluster']}&mode=semantic&n=10").json()
        members = {r["id"] for r in client.get(f"/api/map/members?cluster={c['cluster']}").json()["results"]}
        assert {r["id"] for r in got["results"]} == members
        assert got["filters"]["selection"] == f"cluster {c['cluster']} of the toy map"
    post = client.post("/api/search", json={"q": "red", "cluster": 0, "mode": "keyword"})
    assert post.status_code == 200
    nothing = client.get("/api/search?q=red&region=5,5,6,6&mode=hybrid").json()
    assert nothing["results"] == [] and "selection" in nothing["message"]
    assert client.get("/api/search?q=red&map=toy").status_code == 400


def test_another_models_map_in_the_served_ids(pics):
    from fastapi.testclient import TestClient

    from cliplab.index import Collection
    from cliplab.serve import Settings, create_app, open_state

    make_image(pics / "only-toy2.png", size=(60, 40), color=(240, 240, 10))
    with Collection(pics, model="toy2", loader=toy_loader) as col:
        col.update()
        toy2_ids = col.catalog.ids_matching(None, None).tolist()
    (pics / "only-toy2.png").unlink()  # the served index (made next) lacks it
    state = open_state([pics], model="toy", loader=toy_loader, settings=Settings(allowed_hosts=["testserver"]))
    with TestClient(create_app(state)) as client:
        _, got = ready(client, "/api/map?model=toy2&method=pca")
        m = got.json()
        served = state.source(None).collection.catalog
        assert m["model"] == "toy2" and m["missing"] == 1 and m["count"] == 5
        assert sorted(m["points"]["id"]) == sorted(served.ids_matching(None, None).tolist())
        assert sorted(m["points"]["id"]) != sorted(toy2_ids)
        c = m["points"]["cluster"][0]
        hits = client.get(f"/api/search?q=red&cluster={c}&map=toy2&mode=semantic&n=10").json()["results"]
        assert hits and all(served.paths([r["id"]]) for r in hits)
    state.close()


def test_a_changed_collection_is_served_stale_then_recomputed(state_client):
    client, state = state_client
    ready(client, "/api/map?method=pca")
    col = state.source(None).collection
    for i in range(3):  # 3 new photos on 5 mapped: far past 5 %
        make_image(col.folder / f"new{i}.png", size=(60, 40), color=(10, 10 + 60 * i, 200))
    from cliplab.index import Collection

    with Collection(col.folder, model="toy", loader=toy_loader) as writer:
        writer.update()
    got = client.get("/api/map?method=pca")
    assert got.status_code == 200
    body = got.json()
    assert body["stale"] is True and body["computing"] is True and body["count"] == 5
    assert client.app.state.explore_jobs.wait(60)
    fresh = client.get("/api/map?method=pca").json()
    assert fresh["stale"] is False and fresh["count"] == 8


def test_a_failed_computation_is_told_once_then_tried_again(state_client, monkeypatch):
    from cliplab.analysis import explore

    client, _ = state_client
    build = explore.build

    def broken(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(explore, "build", broken)
    assert client.get("/api/map?method=pca").status_code == 202
    assert client.app.state.explore_jobs.wait(60)
    failed = client.get("/api/map?method=pca")
    assert failed.status_code == 500 and "disk on fire" in failed.json()["error"]
    monkeypatch.setattr(explore, "build", build)
    _, got = ready(client, "/api/map?method=pca")
    assert got.json()["count"] == 5
