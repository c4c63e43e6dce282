"""The real default model (`lite`) behind the server: search finds the right photo, classify gives
exactly what the library (and so the CLI) gives."""

from __future__ import annotations

import shutil

import pytest

CLASSES = {
    "goldfish": "n01443537",
    "school bus": "n04146614",
    "pizza": "n07873807",
    "volcano": "n09472597",
    "banana": "n07753592",
    "castle": "n02980441",
    "umbrella": "n04507155",
    "tabby cat": "n02123045",
}


@pytest.fixture
def lite_client(shared, tmp_path, lite_encoder):
    from fastapi.testclient import TestClient

    from cliplab.serve import Settings, create_app, open_state

    folder = tmp_path / "photos"
    folder.mkdir()
    for name, wnid in CLASSES.items():
        shutil.copy(
            shared / "data" / "imagenet-samples" / "images" / f"{wnid}.jpg", folder / f"{name.replace(' ', '_')}.jpg"
        )
    settings = Settings(allowed_hosts=["testserver"])  # TestClient's Host header
    state = open_state([folder], model="lite", loader=lambda spec: lite_encoder, settings=settings)
    with TestClient(create_app(state)) as client:
        yield client, folder
    state.close()


def test_lite_search_and_classify(lite_client):
    from cliplab.api import classify

    client, folder = lite_client
    for name in ("goldfish", "school bus", "pizza", "volcano"):
        res = client.get("/api/search", params={"q": f"a photo of a {name}", "n": 1}).json()
        assert res["model"] == "lite"
        assert res["results"][0]["path"] == f"{name.replace(' ', '_')}.jpg"
    labels = "goldfish,pizza,castle"
    files = [("images", (p, (folder / p).read_bytes(), "image/jpeg")) for p in ("goldfish.jpg", "castle.jpg")]
    got = client.post("/api/classify", files=files, data={"labels": labels}).json()["results"]
    enc = client.app.state.cliplab.encoders.get("lite").encoder
    want = classify([str(folder / "goldfish.jpg"), str(folder / "castle.jpg")], labels, enc).top(3)
    for g, w in zip(got, want):
        assert [p["label"] for p in g["predictions"]] == [p["label"] for p in w["predictions"]]
        for a, b in zip(g["predictions"], w["predictions"]):
            assert abs(a["prob"] - b["prob"]) < 1e-4
    assert got[0]["predictions"][0]["label"] == "goldfish" and got[1]["predictions"][0]["label"] == "castle"
    (col,) = client.get("/api/collections").json()
    assert col["runtime"].startswith("torch fp32")  # the status names the runtime that answers
