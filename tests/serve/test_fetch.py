"""`--allow-urls`: only public addresses are fetched (checked after resolving, after every redirect
and for the connected peer), bounded in bytes and time, with one error text for every failure.
No traffic leaves loopback: the loopback cases use real local sockets, the other ranges a fake
resolver and a connect function that fails the test if it is ever called."""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import socket
import threading
import time

import pytest

from cliplab.data.fetch import GENERIC, FetchError, fetch_url
from tests.serve.test_api import png_bytes
from tests.serve.test_bad_input import expect_error

PNG = png_bytes((200, 10, 10))


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.end_headers()
        elif self.path == "/big":
            self.send_response(200)
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(64):
                    self.wfile.write(b"\0" * 65536)
        elif self.path == "/slow":
            self.send_response(200)
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gives up first
                for _ in range(100):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
        elif self.path == "/short":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"only a few bytes")
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)


@contextlib.contextmanager
def image_server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_loopback_urls_are_refused_alike(make_client):
    client, _ = make_client(allow_urls=True)
    with image_server() as port:
        urls = [
            f"http://127.0.0.1:{port}/a.png",
            f"http://localhost:{port}/a.png",
            f"http://2130706433:{port}/a.png",  # 127.0.0.1 as one integer
            f"http://127.1:{port}/a.png",
            f"http://0.0.0.0:{port}/a.png",
            f"http://[::1]:{port}/a.png",
            f"http://[::ffff:127.0.0.1]:{port}/a.png",
            f"http://127.0.0.1:{closed_port()}/a.png",  # a closed port reads the same as an open one
        ]
        texts = set()
        for url in urls:
            r = client.post("/knn-service", json={"image_url": url})
            expect_error(r, 400, "could not fetch")
            texts.add(r.json()["error"])
        assert texts == {f"image_url: {GENERIC}"}


def _no_connect(*args, **kwargs):
    pytest.fail(f"connect was called: {args}")


@pytest.mark.parametrize(
    "ip",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "0.0.0.0",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::",
        "::ffff:10.0.0.1",
        "2002:a00:1::1",
    ],
)
def test_private_and_special_ranges_are_refused_before_connecting(ip):
    def resolve(host, port, type=0):
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    with pytest.raises(FetchError) as e:
        fetch_url("http://images.example/a.png", 10**6, resolve=resolve, connect=_no_connect)
    assert str(e.value) == GENERIC and "not allowed" in e.value.reason


def test_one_private_address_among_public_ones_is_refused():
    def resolve(host, port, type=0):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in ("93.184.216.34", "10.0.0.1")]

    with pytest.raises(FetchError):
        fetch_url("http://images.example/a.png", 10**6, resolve=resolve, connect=_no_connect)


def _only(ip: str):
    return lambda addr: addr == ipaddress.ip_address(ip)


def test_redirects_and_the_connected_peer_are_checked_too():
    with image_server() as port:
        ok = fetch_url(f"http://127.0.0.1:{port}/a.png", 10**6, allowed=_only("127.0.0.1"))
        assert ok == PNG
        calls = []

        def connect(addr, timeout):
            calls.append(addr[0])
            return socket.create_connection(addr, timeout)

        with pytest.raises(FetchError) as e:  # redirected to an address that is not allowed
            url = f"http://127.0.0.1:{port}/redirect?to=http://127.0.0.2:{port}/a.png"
            fetch_url(url, 10**6, allowed=_only("127.0.0.1"), connect=connect)
        assert "not allowed" in e.value.reason and calls == ["127.0.0.1"]

        # DNS said public, but the socket ended up on loopback: the peer is what counts
        def resolve(host, p, type=0):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", p))]

        def to_loopback(addr, timeout):
            return socket.create_connection(("127.0.0.1", port), timeout)

        with pytest.raises(FetchError) as e:
            fetch_url(f"http://images.example:{port}/a.png", 10**6, resolve=resolve, connect=to_loopback)
        assert "connected address" in e.value.reason


def test_size_time_and_truncation_are_fetch_errors():
    with image_server() as port:
        base = f"http://127.0.0.1:{port}"
        with pytest.raises(FetchError) as e:
            fetch_url(base + "/big", 1024 * 1024, allowed=_only("127.0.0.1"))
        assert "larger" in e.value.reason
        t0 = time.monotonic()
        with pytest.raises(FetchError):  # a byte every 0.1 s: each read is quick, the total is not
            fetch_url(base + "/slow", 10**6, total_s=1.0, allowed=_only("127.0.0.1"))
        assert time.monotonic() - t0 < 3
        with pytest.raises(FetchError) as e:
            fetch_url(base + "/short", 10**6, allowed=_only("127.0.0.1"))
        assert "IncompleteRead" in e.value.reason
