"""Bad input → a 4xx JSON `{"error": ...}` naming the problem; never a 500; the server keeps answering."""

from __future__ import annotations

import base64
import functools
import io

import pytest
from PIL import Image

from tests.serve.test_api import png_bytes


@functools.lru_cache(maxsize=1)
def bomb_png() -> bytes:
    """81 megapixels (> the 64 MP guard) in a few kB: mode "1" keeps it small to make."""
    buf = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buf, "PNG")
    return buf.getvalue()


def expect_error(r, status: int, *words: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    msg = r.json()["error"]
    assert isinstance(msg, str) and msg
    for w in words:
        assert w.lower() in msg.lower(), (w, msg)


KNN_CASES = [
    ("{not json", 400, ["invalid JSON"]),
    ('["a list"]', 400, ["JSON object"]),
    ('{"image": "%%%not base64%%%"}', 400, ["base64"]),
    ('{"image": "%s"}' % base64.b64encode(b"just some text, not a picture").decode(), 400, ["not an image"]),
    ('{"text": "x", "indice_name": "nope"}', 404, ["unknown collection", "nope"]),
    ("{}", 400, ["nothing to search"]),
    ('{"text": "", "image": null}', 400, ["nothing to search"]),
    ('{"embedding_input": [1, 2, 3]}', 400, ["3 dimensions", "4"]),
    ('{"embedding_input": [NaN, 1, 1, 1]}', 400, ["NaN"]),
    ('{"embedding_input": [Infinity, 1, 1, 1]}', 400, ["infinite"]),
    ('{"embedding_input": ["a", "b", "c", "d"]}', 400, ["numbers"]),
    ('{"embedding_input": [0, 0, 0, 0]}', 400, ["zeros"]),
    ('{"text": "x", "num_images": -1}', 400, ["num_images", "negative"]),
    ('{"text": "x", "num_images": "many"}', 400, ["num_images"]),
    ('{"text": "x", "modality": "video"}', 400, ["modality"]),
    ('{"image_url": "http://example.com/a.jpg"}', 400, ["--allow-urls"]),
    ('{"text": "x", "image_url": "http://example.com/a.jpg"}', 400, ["one query"]),
]


@pytest.mark.parametrize("body,status,words", KNN_CASES, ids=[c[0][:30] for c in KNN_CASES])
def test_knn_service_bad_input(client, body, status, words):
    expect_error(client.post("/knn-service", content=body, headers={"Content-Type": "text/plain"}), status, *words)
    assert client.get("/healthz").status_code == 200


def test_decompression_bomb_is_400(client):
    b64 = base64.b64encode(bomb_png()).decode()
    expect_error(client.post("/knn-service", json={"image": b64}), 400, "too large")
    expect_error(
        client.post("/api/search", files={"image": ("bomb.png", bomb_png(), "image/png")}), 400, "bomb.png", "too large"
    )


def test_upload_limit_is_413(make_client):
    client, _ = make_client(max_upload_mb=0.01)  # 10 kB
    big = png_bytes((1, 2, 3), size=(600, 600), fmt="BMP")  # ~1 MB
    expect_error(client.post("/api/search", files={"image": ("big.bmp", big, "image/bmp")}), 413, "limit")
    expect_error(client.post("/knn-service", json={"image": base64.b64encode(big[:40_000]).decode()}), 413)
    files = [("images", ("big.bmp", big[:20_000], "image/bmp"))]
    expect_error(client.post("/api/classify", files=files, data={"labels": "a,b"}), 413)
    # a small one still works on the same server
    ok = client.post("/api/search", files={"image": ("s.png", png_bytes((9, 9, 9)), "image/png")})
    assert ok.status_code == 200


SEARCH_CASES = [
    ({}, 400, ["nothing to search"]),
    ({"q": "x", "n": "-3"}, 400, ["negative"]),
    ({"q": "x", "n": "lots"}, 400, ["whole number"]),
    ({"q": "x", "offset": "-1"}, 400, ["offset"]),
    ({"q": "x", "offset": "99999999"}, 400, ["offset"]),
    ({"q": "x", "threshold": "high"}, 400, ["threshold"]),
    ({"q": "x", "threshold": "nan"}, 400, ["threshold"]),
    ({"q": "x", "collection": "nope"}, 404, ["unknown collection"]),
    ({"q": "x", "under": "../.."}, 400, ["sub-folder"]),
    ({"like": "99999"}, 404, ["99999"]),
    ({"like": "../1"}, 404, []),
    ({"q": "x", "like": "1"}, 400, ["one query"]),
]


@pytest.mark.parametrize("params,status,words", SEARCH_CASES, ids=[str(c[0]) for c in SEARCH_CASES])
def test_search_bad_input(client, params, status, words):
    expect_error(client.get("/api/search", params=params), status, *words)


def test_other_routes_bad_input(client):
    png = ("r.png", png_bytes((1, 2, 3)), "image/png")
    expect_error(client.post("/api/search"), 400)  # no file
    expect_error(client.post("/api/search", files={"image": ("t.txt", b"hello", "text/plain")}), 400, "not an image")
    expect_error(client.post("/api/search", files={"image": ("e.png", b"", "image/png")}), 400, "empty")
    expect_error(client.post("/api/classify", files=[("images", png)]), 400, "labels")
    expect_error(client.post("/api/classify", data={"labels": "a,b"}), 400, "no images")
    expect_error(client.post("/api/classify", files=[("images", png)], data={"labels": " , "}), 400, "no labels")
    expect_error(
        client.post("/api/classify", files=[("images", png)], data={"labels": "a", "templates": "x"}), 400, "templates"
    )
    # a server-side path is never read as a templates or labels file
    r = client.post(
        "/api/classify", files=[("images", png)], data={"labels": "/etc/passwd", "templates": "/etc/passwd"}
    )
    expect_error(r, 400, "templates")
    assert "root" not in r.text
    expect_error(client.post("/api/embed", content="{bad", headers={"Content-Type": "application/json"}), 400, "JSON")
    expect_error(client.post("/api/embed", json={"texts": []}), 400, "nothing to embed")
    expect_error(client.post("/api/embed", json={"texts": [1, 2]}), 400, "texts")
    expect_error(client.post("/api/embed", json={"texts": ["a"], "collection": "zzz"}), 404, "zzz")
    expect_error(client.post("/metadata", content="nope"), 400, "JSON")
    expect_error(client.post("/metadata", json={"ids": "1"}), 400, "ids")
    expect_error(client.post("/metadata", json={"ids": [1], "indice_name": "zzz"}), 404, "zzz")
    expect_error(client.get("/no/such/route"), 404, "not found")
    expect_error(client.put("/api/search"), 405)
    assert client.get("/healthz").status_code == 200


def test_a_bug_is_a_json_500_and_the_server_goes_on(make_client):
    client, state = make_client(raise_server_exceptions=False)
    src = state.sources["pics"]

    def broken(*a, **k):
        raise RuntimeError("boom")

    src.search = src.run = broken
    r = client.get("/api/search", params={"q": "x"})
    assert r.status_code == 500 and r.json() == {"error": "internal error (RuntimeError); see the server log"}
    assert "Traceback" not in r.text
    assert client.get("/api/collections").status_code == 200


CRASH_CASES = [  # each was a 500 with a traceback
    ("/knn-service", "[" * 100_000 + "]" * 100_000, ["nested"]),
    ("/metadata", '{"ids": [%d]}' % 2**70, None),
    ("/metadata", '{"ids": [1], "indice_name": ["pics"]}', ["string"]),
    ("/knn-service", '{"text": "x", "indice_name": {"a": 1}}', ["string"]),
    ("/knn-service", '{"embedding_input": [%d, 1, 1, 1]}' % 10**400, ["too large"]),
    ("/knn-service", '{"embedding_input": ["1", "1", "1", "1"]}', ["numbers"]),
    ("/knn-service", '{"embedding_input": [true, 1, 1, 1]}', ["numbers"]),
    ("/knn-service", '{"embedding_input": [[1, 1], 1, 1, 1]}', ["numbers"]),
    ("/api/embed", '{"texts": ["a"], "collection": ["pics"]}', ["string"]),
]


@pytest.mark.parametrize("path,body,words", CRASH_CASES, ids=[f"{c[0]}-{c[1][:25]}" for c in CRASH_CASES])
def test_odd_json_is_4xx_not_500(make_client, path, body, words):
    client, _ = make_client(raise_server_exceptions=False)
    r = client.post(path, content=body, headers={"Content-Type": "application/json"})
    if words is None:  # a valid request: an id no image has
        assert r.status_code == 200 and r.json() == [], r.text
    else:
        expect_error(r, 400, *words)
