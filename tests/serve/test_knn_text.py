"""clip-retrieval's `/knn-service` with `modality: "text"`: the stored captions searched by their words
(a folder's keyword index; an embeddings index's captions, indexed in place on first use)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from tests.helpers import ToyEncoder
from tests.serve.conftest import COLOURS, toy_loader

ROOT = Path(__file__).resolve().parents[2]
CLIP_CLIENT = ROOT / ".venv" / "clip-retrieval" / "clip_retrieval" / "clip_client.py"


@pytest.fixture
def captioned(pics):
    (pics / "green.txt").write_text("a meadow in spring\n")  # clip-retrieval's caption file beside the image
    return pics


def test_clip_retrieval_client_text_modality(make_client, captioned):
    client, _ = make_client()
    if not CLIP_CLIENT.is_file():
        pytest.fail(f"{CLIP_CLIENT} is missing: `make test` puts it there (see tests/serve/test_process.py)")
    spec = importlib.util.spec_from_file_location("clip_client", CLIP_CLIENT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # the client's own request, answered by the app in this process instead of over a socket
    mod.requests = SimpleNamespace(post=lambda url, data, timeout: client.post("/knn-service", content=data))
    cc = mod.ClipClient(url="http://testserver/knn-service", indice_name="pics", modality=mod.Modality.TEXT)
    meadow = cc.query(text="spring meadow")
    assert [r["path"] for r in meadow] == ["green.jpg"] and {"id", "similarity", "url", "caption"} <= set(meadow[0])
    assert (
        client.get(meadow[0]["url"].replace("http://testserver", "")).content == (captioned / "green.jpg").read_bytes()
    )
    assert [r["path"] for r in cc.query(text="blue")] == ["sub/deep/blue.png"]  # a file name's words
    assert cc.query(text="nothing here matches") == []  # no match: an empty list, not an error
    reds = cc.query(text="red")
    assert {r["path"] for r in reds} == {"red.jpg", "sub/red2.png"}  # no de-duplication: no caption vectors


def test_text_modality_bad_input(client):
    for body, needle in [
        ({"modality": "text", "embedding_input": [0, 0, 0, 1.0]}, "give text"),
        ({"modality": "text", "text": "red", "embedding_input": [0, 0, 0, 1.0]}, "give text"),
        ({"modality": "text", "text": "   "}, "give text"),
        ({"modality": "text", "text": 42}, "give text"),
        ({"modality": "video", "text": "red"}, "modality must be"),
    ]:
        r = client.post("/knn-service", json=body)
        assert r.status_code == 400 and needle in r.json()["error"], (body, r.text)
    r = client.post("/knn-service", json={"modality": "text", "text": '"a" OR 1=1 --', "num_images": 3})
    assert r.status_code == 200 and isinstance(r.json(), list)  # plain words, never FTS or SQL syntax


def _embeddings(tmp_path: Path, pics: Path, captions: bool) -> Path:
    from PIL import Image

    from cliplab.data.writers import write_shard
    from cliplab.data.writers import write_shards_manifest as write_manifest

    files = [pics / rel for rel in COLOURS]
    rows = [{"image_path": str(f), "status": "ok"} for f in files]
    if captions:
        for r, f in zip(rows, files):
            r["caption"] = f"a {f.stem} square" if f.stem != "grey" else None
    emb = tmp_path / f"emb-{captions}"
    write_shard(emb, 0, ToyEncoder().encode_images([Image.open(f) for f in files]), pd.DataFrame(rows))
    write_manifest(emb, {"model": "toy", "model_info": None})
    return emb


def _serve(index_dir: Path):
    from fastapi.testclient import TestClient

    from cliplab.serve import Settings, create_app, open_state

    state = open_state(index_dirs=[index_dir], loader=toy_loader, settings=Settings(allowed_hosts=["testserver"]))
    return state, TestClient(create_app(state))


def test_an_index_built_before_gets_its_caption_index_in_place(pics, tmp_path):
    from cliplab.index.captions import CAPTIONS_FILE
    from cliplab.index.large import INDEX_FILE, build_from_embeddings
    from cliplab.index.shards import ShardsIndex

    idx = tmp_path / "idx"
    info = build_from_embeddings([_embeddings(tmp_path, pics, True)], idx)
    assert info["captions"] == 4  # grey has none
    (idx / CAPTIONS_FILE).unlink()  # as an index built before caption indexes existed
    faiss_bytes = (idx / INDEX_FILE).read_bytes()
    state, client = _serve(idx)
    try:
        with client:
            res = client.post("/knn-service", json={"text": "blue", "modality": "text"}).json()
            assert [r["caption"] for r in res] == ["a blue square"]
    finally:
        state.close()
    assert (idx / CAPTIONS_FILE).is_file() and (idx / INDEX_FILE).read_bytes() == faiss_bytes  # nothing re-embedded
    hits = ShardsIndex(idx, loader=toy_loader).keyword_search("red square", k=2)
    assert [h.caption for h in hits] == ["a red square"] and hits[0].score > 0  # "red2" is another word
    hits = ShardsIndex(idx, loader=toy_loader).keyword_search("square blue", k=3)
    assert [h.caption for h in hits] == ["a blue square"]  # a match holds two of the words (keywords.py's rule)


def test_an_index_without_captions_says_so(pics, tmp_path):
    from cliplab.index.large import build_from_embeddings

    idx = tmp_path / "idx"
    assert build_from_embeddings([_embeddings(tmp_path, pics, False)], idx)["captions"] == 0
    state, client = _serve(idx)
    try:
        with client:
            r = client.post("/knn-service", json={"text": "blue", "modality": "text"})
            assert r.status_code == 400 and "holds no captions" in r.json()["error"]
            assert client.post("/knn-service", json={"text": "blue"}).status_code == 200  # images as before
    finally:
        state.close()
