"""Only indexed images, by id; every traversal form is a 404; the token guards every API route."""

from __future__ import annotations

import pytest

from tests.serve.conftest import ids_by_path

TRAVERSALS = [
    "/image/pics/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/image/pics/%2E%2E%2Fnotes.txt",
    "/image/pics/..%2f.env",
    "/image/pics/..%5c..%5cnotes.txt",
    "/image/pics/%2fetc%2fpasswd",
    "/image/pics//etc/passwd",
    "/image/pics/%2F%2Fetc%2Fpasswd",
    "/image/%2e%2e/1",
    "/image/..%2fpics/1",
    "/image/pics/.env",
    "/image/pics/notes.txt",
    "/image/pics/red.jpg",
    "/image/pics/-1",
    "/image/pics/1.0",
    "/image/pics/0x1",
    "/image/pics/99999",
    "/thumb/pics/..%2f..%2fetc%2fpasswd",
    "/thumb/pics/.env",
    "/thumb/pics/notes.txt",
    "/thumb/nope/1",
    "/static/..%2f..%2fapp.py",
    "/static/%2e%2e/app.py",
    "/static/..%5capp.py",
    "/static/../app.py",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_and_non_images_are_404(client, path):
    r = client.get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert "do-not-serve" not in r.text and "root:" not in r.text and "import" not in r.text


def test_failed_files_are_not_served(client):
    """broken.jpg is in the catalog (as failed, with an id) but has no vector: never served."""
    ids = set(ids_by_path(client).values())
    for fid in range(max(ids) + 3):
        r = client.get(f"/image/pics/{fid}")
        assert (r.status_code == 200) == (fid in ids)


def test_token_guards_every_api_route(make_client):
    client, _ = make_client(token="s3cret")
    guarded = [
        ("get", "/api/collections", {}),
        ("get", "/api/search?q=x", {}),
        ("get", "/indices-list", {}),
        ("post", "/knn-service", {"json": {"text": "x"}}),
        ("post", "/metadata", {"json": {"ids": [1]}}),
        ("post", "/api/embed", {"json": {"texts": ["x"]}}),
        ("get", "/image/pics/1", {}),
        ("get", "/thumb/pics/1", {}),
        ("post", "/api/classify", {"data": {"labels": "a"}}),
        ("get", "/openapi.json", {}),  # the API description too (API.md: only the page and /healthz are open)
        ("get", "/docs", {}),
        ("get", "/redoc", {}),
    ]
    for method, path, kw in guarded:
        r = getattr(client, method)(path, **kw)
        assert r.status_code == 401, path
        assert "token" in r.json()["error"]
        r = getattr(client, method)(path, headers={"Authorization": "Bearer wrong"}, **kw)
        assert r.status_code == 401, path
    h = client.get("/healthz")
    assert h.status_code == 200 and h.json()["auth"] is True
    assert client.get("/").status_code == 200
    assert client.get("/api/collections", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/api/collections?token=s3cret").status_code == 200
    client.cookies.set("cliplab_token", "s3cret")  # what lets the page's <img> tags load images
    assert client.get("/api/collections").status_code == 200
    assert client.post("/knn-service", json={"text": "x"}).status_code == 200


def test_same_origin_by_default_and_named_cors_origins(make_client):
    client, _ = make_client()
    pre = client.options(
        "/knn-service", headers={"Origin": "http://front.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in pre.headers
    r = client.get("/indices-list", headers={"Origin": "http://front.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers

    anyone, _ = make_client(cors_origins=["*"])
    r = anyone.get("/indices-list", headers={"Origin": "http://front.example"})
    assert r.headers["access-control-allow-origin"] == "*"

    only, _ = make_client(cors_origins=["http://mine.example"])
    pre = only.options(
        "/knn-service", headers={"Origin": "http://mine.example", "Access-Control-Request-Method": "POST"}
    )
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "http://mine.example"
    ok = only.get("/indices-list", headers={"Origin": "http://mine.example"})
    assert ok.headers["access-control-allow-origin"] == "http://mine.example"
    other = only.get("/indices-list", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize(
    "host,ok",
    [
        ("127.0.0.1:8765", True),
        ("localhost:8765", True),
        ("LOCALHOST", True),
        ("[::1]:8765", True),
        ("127.0.0.2", True),
        ("app.localhost:1", True),
        ("pics.example:8765", True),  # --allowed-host
        ("evil.example:8765", False),  # DNS rebinding: the attacker's name, re-resolved to 127.0.0.1
        ("evil.example", False),
        ("192.168.1.5:8765", False),
        ("127.0.0.1.evil.example", False),
    ],
)
def test_host_header_must_name_this_server(make_client, host, ok):
    client, _ = make_client(allowed_hosts=["pics.example"])
    for path in ("/api/collections", "/"):
        r = client.get(path, headers={"Host": host})
        assert (r.status_code == 200) == ok, (host, path, r.status_code)
        if not ok:
            assert r.status_code == 421 and "Host" in r.json()["error"]


def test_bound_host_is_accepted(make_client):
    from cliplab.serve.app import host_ok
    from cliplab.serve.state import Settings

    assert host_ok("10.1.2.3:80", Settings(bind_host="10.1.2.3"))
    assert not host_ok("10.1.2.4:80", Settings(bind_host="10.1.2.3"))
    assert host_ok("10.1.2.4:80", Settings(bind_host="0.0.0.0"))  # any address of this machine
    assert not host_ok("evil.example", Settings(bind_host="0.0.0.0"))


def test_a_file_swapped_after_indexing_is_not_served(client, pics, tmp_path):
    """Until it is indexed again, an image whose file no longer matches the catalog (size, mtime,
    a regular file) is a 404: a symlink to a file outside the folder, or any other content."""
    import os

    from tests.serve.test_api import png_bytes

    ids = ids_by_path(client)
    red, green = ids["red.jpg"], ids["green.jpg"]
    assert client.get(f"/image/pics/{red}").status_code == 200
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(png_bytes((1, 2, 3)))
    (pics / "red.jpg").unlink()
    (pics / "red.jpg").symlink_to(outside)
    for route in ("image", "thumb"):
        r = client.get(f"/{route}/pics/{red}")
        assert r.status_code == 404 and png_bytes((1, 2, 3)) not in r.content
    green_file = pics / "green.jpg"
    st = green_file.stat()
    green_file.write_text("SECRET=not an image")
    os.utime(green_file, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime, other size
    assert client.get(f"/image/pics/{green}").status_code == 404
    assert client.get(f"/thumb/pics/{green}").status_code == 404
    (pics / "grey.jpg").unlink()
    (pics / "grey.jpg").mkdir()  # not a regular file any more
    assert client.get(f"/image/pics/{ids['grey.jpg']}").status_code == 404
    assert client.get(f"/image/pics/{ids['sub/red2.png']}").status_code == 200  # the others still are
