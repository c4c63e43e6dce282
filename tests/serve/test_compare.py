"""/api/compare, /api/compare/ranks and /api/compare/eval on a folder indexed by two toy models.

"toy2" sees colours with red and blue swapped, so its rankings differ from "toy"'s. Its index was
built while the folder held one more photo (0first.jpg, since deleted): its ids are not the served
index's, and a hit on that photo is one the served index lacks (`missing`)."""

from __future__ import annotations

import base64
from contextlib import contextmanager

import pytest

from tests.helpers import ToyEncoder, make_image
from tests.serve.conftest import ids_by_path


class SwappedToy(ToyEncoder):
    name = "toy2"

    def encode_image_batch(self, batch):
        return super().encode_image_batch(batch[:, ::-1])


def loader(spec: str):
    return SwappedToy() if spec == "toy2" else ToyEncoder()


@contextmanager
def served(pics, **settings):
    """(client, ids by path, state) of `pics` served with model toy, also indexed by toy2 and toy3."""
    from fastapi.testclient import TestClient

    from cliplab.index import Collection
    from cliplab.serve import Settings, create_app, open_state

    first = make_image(pics / "0first.jpg", size=(60, 40), color=(30, 30, 200))
    for spec in ("toy2", "toy3"):
        with Collection(pics, model=spec, loader=loader) as col:
            col.update()
    first.unlink()
    state = open_state([pics], model="toy", loader=loader, settings=Settings(allowed_hosts=["testserver"], **settings))
    try:
        with TestClient(create_app(state)) as client:
            yield client, ids_by_path(client), state
    finally:
        state.close()


@pytest.fixture
def cmp(pics):
    with served(pics) as (client, ids, _):
        yield client, ids


def test_one_column_per_model_with_the_agreement(cmp):
    client, _ = cmp
    r = client.get("/api/compare", params={"q": "a red photo", "models": "toy,toy2", "n": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["collection"] == "pics" and body["query"] == "a red photo" and body["k"] == 3
    assert [m["model"] for m in body["models"]] == ["toy", "toy2"]
    for col in body["models"]:
        assert {"results", "missing", "took_ms"} <= set(col)
        for row in col["results"]:
            keys = {"rank", "id", "score", "path", "name", "caption", "url", "thumb_url", "only_here"}
            assert keys <= set(row)
    agree = body["agreement"]
    assert set(agree) == {"union", "overlap", "spearman", "kendall", "mean_overlap"}
    assert list(agree["overlap"]) == ["toy|toy2"] and agree["mean_overlap"] == agree["overlap"]["toy|toy2"]
    marked = [r["path"] for m in body["models"] for r in m["results"] if r["only_here"]]
    assert len(marked) == 2 and agree["overlap"]["toy|toy2"] == round(2 / 3, 4)  # one photo differs each side


def test_only_here_marks_and_served_ids(cmp):
    client, ids = cmp
    red = ids["red.jpg"]
    body = client.get("/api/compare", params={"q": f"like:{red}", "models": "toy2,toy", "n": 5}).json()
    cols = {m["model"]: m for m in body["models"]}
    # toy2's index still holds 0first.jpg: its hit is left out and counted
    assert cols["toy2"]["missing"] == 1 and cols["toy"]["missing"] == 0
    paths = {m: [r["path"] for r in c["results"]] for m, c in cols.items()}
    assert "red.jpg" not in paths["toy"] + paths["toy2"]  # the query's own photo, under both models
    for m, c in cols.items():
        other = set(paths["toy2" if m == "toy" else "toy"])
        for row in c["results"]:
            assert row["id"] == ids[row["path"]]  # the served collection's id, whatever index found it
            assert row["only_here"] == (row["path"] not in other)
    assert body["agreement"]["union"] == 5  # 4 photos both found + 0first.jpg
    row = cols["toy2"]["results"][0]
    got = client.get(row["url"])
    assert (
        got.status_code == 200
        and got.content == (client.app.state.cliplab.source(None).collection.folder / row["path"]).read_bytes()
    )
    assert client.get(row["thumb_url"]).status_code == 200


def test_post_takes_a_list_of_models_and_defaults_to_every_model(cmp):
    client, _ = cmp
    r = client.post("/api/compare", json={"q": '"red" + "sunset"', "models": ["toy", "toy3"], "n": 2})
    assert r.status_code == 200, r.text
    assert [m["model"] for m in r.json()["models"]] == ["toy", "toy3"]
    r = client.get("/api/compare", params={"q": "red"})
    assert [m["model"] for m in r.json()["models"]] == ["toy", "toy2", "toy3"]
    assert list(r.json()["agreement"]["overlap"]) == ["toy|toy2", "toy|toy3", "toy2|toy3"]


def test_ranks_of_one_photo_under_each_model(cmp):
    client, ids = cmp
    q = f"like:{ids['red.jpg']}"
    r = client.get("/api/compare/ranks", params={"q": q, "id": ids["sub/red2.png"], "models": "toy,toy2"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == ids["sub/red2.png"] and body["path"] == "sub/red2.png"
    # red2 is red's nearest under both; toy ranks the 4 other photos, toy2 also its 0first.jpg
    assert body["ranks"] == [
        {"model": "toy", "rank": 1, "score": pytest.approx(body["ranks"][0]["score"]), "of": 4},
        {"model": "toy2", "rank": 1, "score": pytest.approx(body["ranks"][1]["score"]), "of": 5},
    ]
    own = client.get("/api/compare/ranks", params={"q": q, "id": ids["red.jpg"], "models": "toy"}).json()
    assert own["ranks"] == [{"model": "toy", "rank": None, "score": None, "of": 4}]  # the query itself


def test_eval_on_the_folders_captions(cmp, pics):
    client, _ = cmp
    r = client.get("/api/compare/eval", params={"models": "toy,toy2"})
    assert r.status_code == 404 and "has no captions" in r.json()["error"]
    (pics / "captions.csv").write_text("path,caption\nred.jpg,a red photo\ngreen.jpg,a green photo\ngrey.jpg,grey\n")
    r = client.get("/api/compare/eval", params={"models": "toy,toy2"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["captions"] == "captions.csv" and body["images"] == 3 and body["captions_count"] == 3
    assert [m["model"] for m in body["models"]] == ["toy", "toy2"]
    for row in body["models"]:
        assert all(0 <= row[k] <= 1 for k in ("R@1", "R@5", "R@10", "image_R@1", "image_R@5", "image_R@10"))
        assert row["R@5"] == 1.0  # three images: every caption's image is in the top 5
    assert client.get("/api/compare/eval", params={"models": "toy,toy2"}).json() == body  # kept, not re-encoded
    (pics / "captions.csv").write_text("path,caption\nred.jpg,a red photo\ngreen.jpg,a green photo\n")
    again = client.get("/api/compare/eval", params={"models": "toy"}).json()
    assert again["images"] == 2 and again["captions_count"] == 2  # a changed captions file is read again


@pytest.mark.parametrize(
    "params, status, words",
    [
        ({"q": "red", "models": "toy,lite"}, 404, "its models: toy, toy2, toy3"),
        ({"q": "red", "models": "a,b,c,d,e"}, 400, "at most 4"),
        ({"q": "", "models": "toy"}, 400, "non-empty query"),
        ({"models": "toy"}, 400, "non-empty query"),
        ({"q": "red", "n": "-1"}, 400, "must not be negative"),
        ({"q": "red", "mode": "fuzzy"}, 400, "unknown mode"),
        ({"q": "red", "under": "../x"}, 400, "sub-folder"),
        ({"q": "red", "after": "yesterday"}, 400, "after"),
        ({"q": "like:999999"}, 400, "no indexed image"),
        ({"q": "red", "collection": "nope"}, 404, "unknown collection"),
    ],
)
def test_bad_compare_requests(cmp, params, status, words):
    client, _ = cmp
    r = client.get("/api/compare", params=params)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


@pytest.mark.parametrize(
    "body, words",
    [
        (["red"], "JSON object"),
        ({"q": "red", "models": [1, 2]}, "model names"),
        ({"q": "red", "colour": "x"}, "unknown field 'colour'"),
        ({"q": 3}, "non-empty query"),
        ({"q": "red", "threshold": 10**400}, "threshold must be a number"),  # a JSON integer no float holds
    ],
)
def test_bad_compare_posts(cmp, body, words):
    client, _ = cmp
    r = client.post("/api/compare", json=body)
    assert r.status_code == 400 and words in r.json()["error"], r.text


def test_bad_ranks_and_eval_requests(cmp):
    client, ids = cmp
    red = ids["red.jpg"]
    assert client.get("/api/compare/ranks", params={"q": "red", "id": "abc"}).status_code == 400
    r = client.get("/api/compare/ranks", params={"q": "red", "id": "999999"})
    assert r.status_code == 404 and "no indexed image" in r.json()["error"]
    r = client.get("/api/compare/ranks", params={"q": "", "id": red})
    assert r.status_code == 400
    r = client.get("/api/compare/eval", params={"models": "toy,nope"})
    assert r.status_code == 404 and "its models" in r.json()["error"]


def b64(path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_compare_by_an_uploaded_image(cmp, pics):
    """Each model encodes the upload with its own image tower: red.jpg's own bytes find red.jpg first
    under toy and under toy2 (toy's vector of it would point toy2, which swaps red and blue, at blue)."""
    client, ids = cmp
    body = {"image": "data:image/jpeg;base64," + b64(pics / "red.jpg"), "image_name": "mine.jpg"}
    r = client.post("/api/compare", json={**body, "models": ["toy", "toy2"], "n": 3})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["query"] == "mine.jpg" and got["image"] == "mine.jpg"
    for col in got["models"]:
        top = col["results"][0]
        assert top["path"] == "red.jpg" and top["id"] == ids["red.jpg"], col["model"]
        assert top["score"] == pytest.approx(1.0, abs=1e-4)  # the same pixels through the same model
    union = {row["path"] for col in got["models"] for row in col["results"]}
    assert set(got["ranks"]) == union  # the page cannot send the image again: every listed photo's ranks
    assert got["ranks"]["red.jpg"] == [
        {"model": "toy", "rank": 1, "score": pytest.approx(1.0, abs=1e-4), "of": 5},
        {"model": "toy2", "rank": 1, "score": pytest.approx(1.0, abs=1e-4), "of": 6},  # + 0first.jpg
    ]
    for path, rows in got["ranks"].items():
        for col, row in zip(got["models"], rows):
            listed = {x["path"]: x["rank"] for x in col["results"]}
            assert row["model"] == col["model"] and (path not in listed or row["rank"] == listed[path])
    # with words: one more term, weight 1, as in search's expressions
    r = client.post("/api/compare", json={**body, "q": "red", "models": ["toy", "toy2"], "n": 2})
    assert r.status_code == 200 and r.json()["query"] == "red + mine.jpg"
    assert "ranks" not in client.get("/api/compare", params={"q": "red", "models": "toy,toy2"}).json()


@pytest.mark.parametrize(
    "body, status, words",
    [
        ({"image": "not base64!"}, 400, "not valid base64"),
        ({"image": base64.b64encode(b"no picture").decode()}, 400, "mine.jpg"),
        ({"image": base64.b64encode(b"x" * 3000).decode()}, 413, "upload limit"),
        ({"image_name": "mine.jpg"}, 400, "without an image"),
        ({"image": 12}, 400, "base64 string"),
    ],
)
def test_bad_image_compares(pics, body, status, words):
    with served(pics, max_upload_mb=2000 / 2**20) as (client, _, _):
        r = client.post("/api/compare", json={"image_name": "mine.jpg", **body, "models": ["toy", "toy2"]})
    assert r.status_code == status and words in r.json()["error"], r.text


def test_an_image_compare_waits_for_the_pixel_budget(pics):
    with served(pics, decode_budget_pixels=3000, decode_wait_s=0.2) as (client, _, state):
        body = {"image": b64(pics / "red.jpg"), "models": ["toy", "toy2"]}  # 60×40: 2400 pixels
        with state.pixels.hold(2400):  # another request's decode in progress
            r = client.post("/api/compare", json=body)
            assert r.status_code == 503 and "try again" in r.json()["error"]
        assert client.post("/api/compare", json=body).status_code == 200
        assert state.pixels.in_use == 0
