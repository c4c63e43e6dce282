"""An index built from embedding shards (clip-retrieval's layout) served like a folder collection."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.helpers import ToyEncoder
from tests.serve.conftest import COLOURS, toy_loader


@pytest.fixture
def shards_client(pics, tmp_path):
    from fastapi.testclient import TestClient
    from PIL import Image

    from cliplab.data.writers import write_shard
    from cliplab.data.writers import write_shards_manifest as write_manifest
    from cliplab.index.large import build_from_embeddings
    from cliplab.serve import Settings, create_app, open_state

    enc = ToyEncoder()
    files = [pics / rel for rel in COLOURS]
    vecs = enc.encode_images([Image.open(f) for f in files])
    rows = [{"image_path": str(f), "caption": f"a {f.stem} square", "status": "ok"} for f in files]
    rows.append({"image_path": "https://example.com/far.jpg", "caption": "far away", "status": "ok"})
    emb = tmp_path / "emb"
    write_shard(emb, 0, list(vecs) + [enc.encode_images([Image.new("RGB", (9, 9), (0, 0, 0))])[0]], pd.DataFrame(rows))
    write_manifest(emb, {"model": "toy", "model_info": None})
    build_from_embeddings([emb], tmp_path / "idx")
    settings = Settings(allowed_hosts=["testserver"])  # TestClient's Host header
    state = open_state(index_dirs=[tmp_path / "idx"], loader=toy_loader, names=["laion-like"], settings=settings)
    with TestClient(create_app(state)) as client:
        yield client, pics
    state.close()


def test_shards_index_speaks_both_apis(shards_client):
    client, pics = shards_client
    (col,) = client.get("/api/collections").json()
    assert col["kind"] == "shards" and col["model"] == "toy" and col["images"] == len(COLOURS) + 1
    green = [20 / 255, 200 / 255, 20 / 255, 1.0]
    res = client.post(
        "/knn-service", json={"embedding_input": green, "num_images": 2, "indice_name": "laion-like"}
    ).json()
    assert res[0]["caption"] == "a green square" and res[0]["path"] == str(pics / "green.jpg")
    assert client.get(res[0]["url"].replace("http://testserver", "")).content == (pics / "green.jpg").read_bytes()
    black = client.post("/knn-service", json={"embedding_input": [0, 0, 0, 1.0], "num_images": 1}).json()[0]
    assert black["url"] == "https://example.com/far.jpg"  # a URL row: handed out, never fetched
    meta = client.post("/metadata", json={"ids": [res[0]["id"]], "indice_name": "laion-like"}).json()
    assert meta[0]["metadata"]["caption"] == "a green square"
    like = client.get("/api/search", params={"like": res[0]["id"], "n": 1}).json()["results"]
    assert like[0]["id"] != res[0]["id"]
    r = client.get("/api/search", params={"q": "x", "under": "sub"})
    assert r.status_code == 400 and "no folders" in r.json()["error"]


def test_text_modality_searches_the_captions(shards_client):
    client, pics = shards_client
    res = client.post("/knn-service", json={"text": "green", "modality": "text", "num_images": 5}).json()
    assert [r["caption"] for r in res] == ["a green square"] and res[0]["path"] == str(pics / "green.jpg")
    assert {"id", "similarity", "url", "caption", "path"} <= set(res[0])
    far = client.post("/knn-service", json={"text": "far away", "modality": "text", "num_images": 5}).json()
    assert [r["url"] for r in far] == ["https://example.com/far.jpg"]
    squares = client.post("/knn-service", json={"text": "square", "modality": "text", "num_images": 3}).json()
    assert len(squares) == 3 and squares[0]["similarity"] > squares[-1]["similarity"]
