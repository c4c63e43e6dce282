"""Resource limits: bodies counted as they arrive (chunked too), multipart limits, bounded
classify work. Real sockets on loopback where the point is what the server reads."""

from __future__ import annotations

import select
import socket
from urllib.parse import urlsplit

from tests.serve.browser_helpers import live_server
from tests.serve.conftest import toy_loader
from tests.serve.test_api import png_bytes
from tests.serve.test_bad_input import expect_error


def _serve(pics, **settings):
    from cliplab.serve import Settings, open_state

    return open_state([pics], model="toy", loader=toy_loader, settings=Settings(**settings))


def _send_chunked(url: str, path: str, head: bytes, total: int) -> tuple[int, bytes]:
    """POST a chunked multipart body of up to `total` bytes; stop when the server answers or
    closes. → (bytes sent, what came back)."""
    u = urlsplit(url)
    boundary = b"xyzzy"
    sock = socket.create_connection((u.hostname, u.port), timeout=30)
    sock.sendall(
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n\r\n"
    )
    first = b"--" + boundary + b"\r\n" + head + b"\r\n\r\n"
    chunk = b"\0" * (256 * 1024)
    sent, got = 0, b""
    try:
        for i in range(total // len(chunk)):
            data = first + chunk if i == 0 else chunk
            sock.sendall(b"%x\r\n" % len(data) + data + b"\r\n")
            sent += len(data)
            if select.select([sock], [], [], 0)[0]:
                break
        sock.settimeout(10)
        while not got.endswith(b"}") and (part := sock.recv(65536)):
            got += part
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()
    return sent, got


def test_chunked_bodies_stop_at_the_limit(pics):
    """No Content-Length: the server counts what arrives and answers 413 within a few MB of the
    limit (1 MB upload → ~2.3 MB body), instead of spooling 200 MB first."""
    state = _serve(pics, max_upload_mb=1)
    try:
        with live_server(state) as url:
            for path, head in [
                ("/api/search", b'Content-Disposition: form-data; name="image"; filename="a.png"'),
                ("/api/embed", b'Content-Disposition: form-data; name="images"; filename="a.png"'),
                ("/api/classify", b'Content-Disposition: form-data; name="images"; filename="a.png"'),
                ("/knn-service", b""),
            ]:
                sent, got = _send_chunked(url, path, head, 200 * 2**20)
                assert sent < 12 * 2**20, (path, sent)
                assert got.startswith(b"HTTP/1.1 413"), (path, got[:200])
                assert b'"error"' in got
    finally:
        state.close()


def test_multipart_counts_are_limited(client):
    png = png_bytes((1, 2, 3))
    files = [("images", (f"{i}.png", png, "image/png")) for i in range(65)]
    expect_error(client.post("/api/classify", files=files, data={"labels": "a"}), 400, "files")
    expect_error(client.post("/api/embed", files=files), 400, "files")
    big_field = {"labels": "a," * (600 * 1024)}  # a 1.2 MB text field
    expect_error(client.post("/api/classify", files=files[:1], data=big_field), 400, "exceeded")


def test_a_template_is_text_with_one_placeholder(state_client):
    """`{}` is replaced as text: format specs pad nothing, two placeholders are a 400, not a 500."""
    client, state = state_client
    encoder = state.encoders.get("toy").encoder
    seen: list[str] = []
    real = encoder.encode_texts
    encoder.encode_texts = lambda texts: (seen.extend(texts), real(texts))[1]
    files = [("images", ("r.png", png_bytes((200, 10, 10)), "image/png"))]
    r = client.post("/api/classify", files=files, data={"labels": "cat,dog", "templates": "{{}}{:>10000000}"})
    assert r.status_code == 200, r.text
    assert seen == ["{cat}{:>10000000}", "{dog}{:>10000000}"]
    expect_error(client.post("/api/classify", files=files, data={"labels": "a", "templates": "{} {}"}), 400, "one {}")
    long = "a photo of a {}" + "." * 300
    expect_error(client.post("/api/classify", files=files, data={"labels": "a", "templates": long}), 400, "characters")


def test_prompts_per_request_are_capped(client):
    files = [("images", ("r.png", png_bytes((200, 10, 10)), "image/png"))]
    labels = ",".join(f"label{i}" for i in range(1000))
    r = client.post("/api/classify", files=files, data={"labels": labels, "templates": "clip80"})
    expect_error(r, 400, "80 templates", "4000 prompts")
    expect_error(client.post("/api/classify", files=files, data={"labels": "x" * 300}), 400, "longer than")


def test_class_embeddings_cache_is_bounded_and_in_memory(state_client, tmp_path, monkeypatch):
    from cliplab.serve.classes import ClassCache

    monkeypatch.setenv("CLIPLAB_CACHE", str(tmp_path / "cache"))
    client, state = state_client
    encoder = state.encoders.get("toy").encoder
    calls = []
    real = encoder.encode_texts
    encoder.encode_texts = lambda texts: (calls.append(len(texts)), real(texts))[1]
    files = [("images", ("r.png", png_bytes((200, 10, 10)), "image/png"))]
    for _ in range(2):
        assert client.post("/api/classify", files=files, data={"labels": "cat,dog"}).status_code == 200
    assert calls == [2]  # the second request was a cache hit
    assert not (tmp_path / "cache" / "classes").exists()  # nothing written per request
    cache = ClassCache(max_bytes=1000)  # toy vectors: 4 float32 = 16 bytes per label
    for i in range(100):
        cache.get(encoder, [f"l{i}", f"m{i}"], ["{}"])
        assert cache.nbytes <= 1000
    assert 0 < len(cache) <= 1000 // 32


def test_large_decodes_share_a_pixel_budget(make_client):
    """Decodes hold their pixels in one budget: over it, a request waits, then gets a 503 with
    Retry-After; once the budget is free again the same request works."""
    import threading

    client, state = make_client(decode_budget_pixels=1000, decode_wait_s=0.2)
    png = png_bytes((200, 10, 10), size=(30, 20))  # 600 pixels
    with state.pixels.hold(600):  # another request's decode in progress
        r = client.post("/api/search", files={"image": ("q.png", png, "image/png")})
        assert r.status_code == 503 and r.headers["retry-after"] == "2" and "try again" in r.json()["error"]
        r = client.post("/api/embed", files=[("images", ("q.png", png, "image/png"))])
        assert r.status_code == 503
        r = client.post("/api/classify", files=[("images", ("q.png", png, "image/png"))], data={"labels": "a"})
        assert r.status_code == 503
    assert state.pixels.in_use == 0
    assert client.post("/api/search", files={"image": ("q.png", png, "image/png")}).status_code == 200

    hold = state.pixels.hold(600)
    hold.__enter__()
    threading.Timer(0.05, hold.__exit__, (None, None, None)).start()  # freed while the request waits
    assert client.post("/api/search", files={"image": ("q.png", png, "image/png")}).status_code == 200
    assert state.pixels.in_use == 0


def test_memory_is_handed_back_after_a_large_decode(monkeypatch):
    from cliplab.serve import budget

    trims = []
    monkeypatch.setattr(budget, "release_memory", lambda: trims.append(1))
    pixels = budget.PixelBudget(10**8)
    with pixels.hold(5_000_000):
        with pixels.hold(5_000_000):
            pass
        assert trims == []  # another large decode still holds memory
    assert trims == [1]
    with pixels.hold(1000):
        pass
    assert trims == [1]  # small decodes don't pay for a trim
