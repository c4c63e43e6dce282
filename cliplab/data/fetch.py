"""Fetching an image URL for a server, safely: `fetch_url(url, ...)` → bytes or FetchError.

Every address is vetted before connecting: the name is resolved first and loopback, private,
link-local, shared, multicast, reserved and unspecified addresses are refused, again after each
redirect and for the peer actually connected to (the socket's, not DNS's, answer counts). Bytes
and total time are capped. Every failure has the same text, so answers don't tell a closed port
from an open one or a refused address.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

from cliplab.errors import ImageError

GENERIC = "could not fetch the URL (unreachable, refused, too slow, too large or not allowed)"
MAX_REDIRECTS = 3


class FetchError(ImageError):
    """A URL that was not fetched; `reason` says why (for logs, never for the client)."""

    def __init__(self, reason: str):
        super().__init__(GENERIC)
        self.reason = reason


def public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Only globally routable unicast addresses."""
    mapped = getattr(ip, "ipv4_mapped", None) or getattr(ip, "sixtofour", None)
    if mapped is not None and not public_address(mapped):
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_loopback)


def fetch_url(
    url: str,
    max_bytes: int,
    total_s: float = 20.0,
    allowed: Callable[[ipaddress.IPv4Address | ipaddress.IPv6Address], bool] = public_address,
    resolve: Callable = socket.getaddrinfo,
    connect: Callable = socket.create_connection,
) -> bytes:
    """GET `url` (http/https), following up to MAX_REDIRECTS redirects; at most `max_bytes` bytes
    within `total_s` seconds in all. `resolve` / `connect` are socket's, replaceable in tests."""
    deadline = time.monotonic() + total_s
    for _ in range(MAX_REDIRECTS + 1):
        status, location, body = _get(url, max_bytes, deadline, allowed, resolve, connect)
        if status in (301, 302, 303, 307, 308) and location:
            url = urljoin(url, location)
            continue
        if status != 200:
            raise FetchError(f"HTTP {status}")
        if not body:
            raise FetchError("empty response")
        return body
    raise FetchError("too many redirects")


def _get(url, max_bytes, deadline, allowed, resolve, connect) -> tuple[int, str | None, bytes]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("not an http(s) URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = resolve(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError, UnicodeError) as e:
        raise FetchError(f"cannot resolve: {e}") from None
    ips = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not ips or not all(allowed(ip) for ip in ips):
        raise FetchError(f"address not allowed: {[str(ip) for ip in ips]}")
    sock = None
    try:
        sock = connect((str(ips[0]), port), timeout=_left(deadline))
        peer = ipaddress.ip_address(sock.getpeername()[0].split("%")[0])
        if not allowed(peer):
            raise FetchError(f"connected address not allowed: {peer}")
        if parts.scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
        conn = http.client.HTTPConnection(parts.hostname, port)
        conn.sock = sock  # already connected to the vetted address
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", target, headers={"Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": "cliplab"})
        sock.settimeout(_left(deadline))
        resp = conn.getresponse()
        if resp.status != 200:
            return resp.status, resp.getheader("location"), b""
        chunks, size = [], 0
        while True:
            sock.settimeout(_left(deadline))  # one deadline for the whole transfer, not per read
            chunk = resp.read1(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(f"larger than {max_bytes} bytes")
            chunks.append(chunk)
        if resp.length:  # the peer closed before its Content-Length
            raise FetchError(f"IncompleteRead: {resp.length} bytes missing")
        return 200, None, b"".join(chunks)
    except FetchError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as e:  # incl. timeouts, IncompleteRead
        raise FetchError(f"{type(e).__name__}: {e}") from None
    finally:
        if sock is not None:
            sock.close()


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError("took too long")
    return left
