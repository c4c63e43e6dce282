"""Every route through FastAPI's TestClient (toy encoder: plumbing, ranking by colour)."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

from tests.helpers import make_image
from tests.serve.conftest import COLOURS, ids_by_path


def png_bytes(colour, size=(30, 20), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, fmt)
    return buf.getvalue()


def test_healthz_and_collections(client, pics):
    h = client.get("/healthz").json()
    assert h["status"] == "ok" and h["collections"] == 1 and h["version"] and h["auth"] is False
    (col,) = client.get("/api/collections").json()
    assert col["name"] == "pics" and col["folder"] == str(pics.resolve())
    assert col["model"] == "toy" and col["dim"] == 4
    assert col["images"] == len(COLOURS) and col["failed"] == 1  # broken.jpg
    assert col["updated"]
    assert client.get("/indices-list").json() == ["pics"]


def test_text_search_matches_the_library(state_client):
    client, state = state_client
    col = state.sources["pics"].collection
    r = client.get("/api/search", params={"q": "a red square", "n": 3, "mode": "semantic"})
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "toy" and body["collection"] == "pics" and body["took_ms"] >= 0
    lib = col.search("a red square", k=3)
    assert [x["path"] for x in body["results"]] == [h.relpath for h in lib]
    assert [x["score"] for x in body["results"]] == [h.score for h in lib]
    assert [x["rank"] for x in body["results"]] == [1, 2, 3]
    first = body["results"][0]
    assert first["url"] == f"http://testserver/image/pics/{first['id']}"
    assert first["thumb_url"] == f"http://testserver/thumb/pics/{first['id']}"
    assert first["name"] == first["path"].rsplit("/", 1)[-1]


def test_image_upload_search_ranks_by_colour(client):
    r = client.post("/api/search", files={"image": ("q.png", png_bytes((225, 25, 20)), "image/png")}, data={"n": "2"})
    assert r.status_code == 200, r.text
    assert {x["path"] for x in r.json()["results"]} == {"red.jpg", "sub/red2.png"}
    assert r.json()["query"] == "q.png"


def test_n_in_the_url_counts_for_get_and_post(client):
    """`?n=3` works on the image POST as on the GET; the same value in both places is fine, two
    different values are a 400 naming the parameter (never a silent winner)."""
    upload = {"image": ("q.png", png_bytes((225, 25, 20)), "image/png")}
    assert len(client.get("/api/search", params={"q": "red", "n": 3}).json()["results"]) == 3
    r = client.post("/api/search?n=3", files=upload)
    assert r.status_code == 200, r.text
    assert len(r.json()["results"]) == 3
    assert len(client.post("/api/search", files=upload, data={"n": "2"}).json()["results"]) == 2
    assert len(client.post("/api/search?n=2", files=upload, data={"n": "2"}).json()["results"]) == 2
    r = client.post("/api/search?n=3", files=upload, data={"n": "2"})
    assert r.status_code == 400 and "n is given twice" in r.json()["error"], r.text
    under = client.post("/api/search?under=sub", files=upload).json()["results"]  # any parameter, not only n
    assert {x["path"] for x in under} == {"sub/red2.png", "sub/deep/blue.png"}


def test_more_like_this_leaves_the_image_out(client):
    ids = ids_by_path(client)
    res = client.get("/api/search", params={"like": ids["red.jpg"]}).json()["results"]
    assert res[0]["path"] == "sub/red2.png"
    assert "red.jpg" not in [x["path"] for x in res] and len(res) == len(COLOURS) - 1


def test_paging_threshold_folder_and_glob(client):
    q = {"like": ids_by_path(client)["grey.jpg"]}
    whole = client.get("/api/search", params={**q, "n": 4}).json()["results"]
    p1 = client.get("/api/search", params={**q, "n": 2}).json()["results"]
    p2 = client.get("/api/search", params={**q, "n": 2, "offset": 2}).json()["results"]
    assert [x["id"] for x in p1 + p2] == [x["id"] for x in whole]
    assert [x["rank"] for x in p2] == [3, 4]
    cut = whole[1]["score"] - 1e-5  # scores are rounded to 6 decimals
    above = client.get("/api/search", params={**q, "threshold": cut}).json()["results"]
    assert [x["id"] for x in above] == [x["id"] for x in whole[:2]]
    under = client.get("/api/search", params={**q, "under": "sub"}).json()["results"]
    assert {x["path"] for x in under} == {"sub/red2.png", "sub/deep/blue.png"}
    pngs = client.get("/api/search", params={**q, "glob": "*.png"}).json()["results"]
    assert {x["path"] for x in pngs} == {"sub/red2.png", "sub/deep/blue.png"}


def test_classify_uploads_and_ids_like_the_library(state_client):
    from cliplab.zeroshot import class_embeddings, zero_shot_probs

    client, state = state_client
    ids = ids_by_path(client)
    files = [
        ("images", ("r.png", png_bytes((220, 20, 20)), "image/png")),
        ("images", ("notes.png", b"not an image", "image/png")),
    ]
    r = client.post(
        "/api/classify", files=files, data={"labels": "red, green\nblue", "ids": str(ids["green.jpg"]), "k": "3"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["labels"] == ["red", "green", "blue"] and body["model"] == "toy"
    ok, bad, by_id = body["results"]
    assert bad["name"] == "notes.png" and "not an image" in bad["error"] and bad["predictions"] == []
    assert by_id["name"] == "green.jpg" and by_id["id"] == ids["green.jpg"] and by_id["error"] is None
    assert all(set(row) == {"name", "id", "error", "predictions"} for row in body["results"])  # one shape
    enc = state.encoders.get("toy").encoder
    cls = class_embeddings(enc, ["red", "green", "blue"], ["a photo of a {}."])
    vec = enc.encode_images([Image.new("RGB", (30, 20), (220, 20, 20))])
    want = dict(zip(["red", "green", "blue"], zero_shot_probs(vec, cls, enc.logit_scale)[0]))
    got = {p["label"]: p["prob"] for p in ok["predictions"]}
    assert got.keys() == want.keys() and all(abs(got[k] - want[k]) < 1e-5 for k in want)
    probs = [p["prob"] for p in ok["predictions"]]
    assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 1e-4


def test_classify_templates(client):
    files = [("images", ("r.png", png_bytes((220, 20, 20)), "image/png"))]
    for t in ("clip80", "none", "art of a {}"):
        r = client.post("/api/classify", files=files, data={"labels": "a,b", "templates": t})
        assert r.status_code == 200, r.text
    assert (
        client.post("/api/classify", files=files, data={"labels": "a,b", "templates": "clip80"}).json()["templates"]
        == 80
    )


def test_embed_texts_and_images(state_client):
    client, state = state_client
    enc = state.encoders.get("toy").encoder
    r = client.post("/api/embed", json={"texts": ["a dog", "a cat"]})
    assert r.status_code == 200, r.text
    assert r.json()["dim"] == 4
    np.testing.assert_allclose(r.json()["texts"], enc.encode_texts(["a dog", "a cat"]), atol=1e-6)
    r = client.post(
        "/api/embed",
        files=[
            ("images", ("g.png", png_bytes((20, 200, 20)), "image/png")),
            ("images", ("x.png", b"nope", "image/png")),
        ],
        data={"texts": "a dog"},
    )
    body = r.json()
    want = enc.encode_images([Image.new("RGB", (30, 20), (20, 200, 20))])[0]
    np.testing.assert_allclose(body["images"][0], want, atol=1e-6)
    assert body["images"][1] is None and body["errors"][0]["name"] == "x.png"
    assert len(body["texts"]) == 1


def test_image_and_thumbnail_by_id(state_client, pics):
    client, state = state_client
    ids = ids_by_path(client)
    r = client.get(f"/image/pics/{ids['sub/red2.png']}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content == (pics / "sub/red2.png").read_bytes()
    etag = r.headers["etag"]
    assert "max-age" in r.headers["cache-control"]
    assert client.get(f"/image/pics/{ids['sub/red2.png']}", headers={"If-None-Match": etag}).status_code == 304
    assert client.get(f"/image/pics/{ids['red.jpg']}").headers["content-type"] == "image/jpeg"

    t = client.get(f"/thumb/pics/{ids['red.jpg']}")
    assert t.status_code == 200 and t.headers["content-type"] == "image/jpeg" and t.headers["etag"]
    im = Image.open(io.BytesIO(t.content))
    assert im.format == "JPEG" and max(im.size) <= 256
    cached = list(state.sources["pics"].cache_dir().glob(f"{ids['red.jpg']}-*.jpg"))
    assert len(cached) == 1  # made once, then read from the cache
    again = client.get(f"/thumb/pics/{ids['red.jpg']}")
    assert again.content == t.content and again.headers["etag"] == t.headers["etag"]
    assert client.get(f"/thumb/pics/{ids['red.jpg']}", headers={"If-None-Match": t.headers["etag"]}).status_code == 304
    # an edited file is not served until it is indexed again; then it gets a new thumbnail and
    # ETag, and the old one leaves the cache
    make_image(pics / "red.jpg", size=(90, 40), color=(10, 10, 10))
    os.utime(pics / "red.jpg", ns=(1, 1))
    assert client.get(f"/thumb/pics/{ids['red.jpg']}").status_code == 404
    state.sources["pics"].collection.update()
    new = client.get(f"/thumb/pics/{ids['red.jpg']}")
    assert new.headers["etag"] != t.headers["etag"] and Image.open(io.BytesIO(new.content)).getpixel((5, 5))[0] < 50
    assert len(list(state.sources["pics"].cache_dir().glob(f"{ids['red.jpg']}-*.jpg"))) == 1


def test_knn_service_protocol(client):
    ids = ids_by_path(client)
    red = [220 / 255, 20 / 255, 20 / 255, 1.0]
    # the clip-retrieval front posts its JSON as text/plain
    body = (
        '{"embedding_input": %s, "num_images": 3, "deduplicate": false, "indice_name": "pics", '
        '"use_safety_model": true, "use_violence_detector": true, "aesthetic_score": 9, '
        '"aesthetic_weight": 0.5, "use_mclip": false, "modality": "image", "num_result_ids": 3}' % red
    )
    r = client.post("/knn-service", content=body, headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert r.status_code == 200, r.text
    res = r.json()
    assert [x["path"] for x in res[:2]] == ["red.jpg", "sub/red2.png"] and len(res) == 3
    assert set(res[0]) == {"id", "similarity", "url", "caption", "path"}
    assert res[0]["id"] == ids["red.jpg"] and res[0]["caption"] == "red.jpg"
    assert res[0]["url"] == f"http://testserver/image/pics/{ids['red.jpg']}"
    sims = [x["similarity"] for x in res]
    assert sims == sorted(sims, reverse=True)
    # deduplicate (the default) drops red2, whose vector is ≥ 0.98 cosine to red's
    dedup = client.post("/knn-service", json={"embedding_input": red, "num_images": 3}).json()
    assert "sub/red2.png" not in [x["path"] for x in dedup] and dedup[0]["path"] == "red.jpg"
    assert len(dedup) == 3
    # text and image queries answer too
    assert len(client.post("/knn-service", json={"text": "anything", "num_images": 2}).json()) == 2
    import base64

    b64 = base64.b64encode(png_bytes((20, 20, 220))).decode()
    assert client.post("/knn-service", json={"image": b64, "num_images": 1}).json()[0]["path"] == "sub/deep/blue.png"
    assert (
        client.post("/knn-service", json={"image": "data:image/png;base64," + b64, "num_images": 1}).json()[0]["path"]
        == "sub/deep/blue.png"
    )


def test_num_images_is_clamped(client):
    assert len(client.post("/knn-service", json={"text": "x", "num_images": 0}).json()) == 1
    assert len(client.post("/knn-service", json={"text": "x", "num_images": 5000, "deduplicate": False}).json()) == len(
        COLOURS
    )
    from cliplab.serve.query import clamp_count

    assert clamp_count(5000) == 1000 and clamp_count(0) == 1 and clamp_count("7") == 7


def test_metadata(client):
    ids = ids_by_path(client)
    r = client.post(
        "/metadata",
        content='{"ids": [%d, %d, 99999], "indice_name": "pics"}' % (ids["green.jpg"], ids["sub/deep/blue.png"]),
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 200
    got = r.json()
    assert [x["id"] for x in got] == [ids["green.jpg"], ids["sub/deep/blue.png"]]
    assert got[1]["metadata"] == {
        "url": f"http://testserver/image/pics/{ids['sub/deep/blue.png']}",
        "caption": "blue.png",
        "path": "sub/deep/blue.png",
    }


def test_page_and_docs(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()  # offline: Swagger UI served locally
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert asset in docs.text and client.get(f"/static-docs/{asset}").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for p in (
        "/healthz",
        "/indices-list",
        "/knn-service",
        "/metadata",
        "/api/collections",
        "/api/search",
        "/api/classify",
        "/api/embed",
        "/image/{collection}/{image_id}",
        "/thumb/{collection}/{image_id}",
    ):
        assert p in paths
