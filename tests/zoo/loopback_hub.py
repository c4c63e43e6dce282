"""A throwaway Hugging Face hub on 127.0.0.1, in a thread: the endpoints huggingface_hub 2.x calls to
download a model, in their real shape.

- GET  /api/models/{repo}[/revision/{rev}]?blobs=True   → {"id", "sha", "siblings": [{rfilename, size,
  blobId, lfs: {size, sha256, pointerSize}}]} (HfApi.model_info(files_metadata=True))
- HEAD /{repo}/resolve/{rev}/{file}                      → X-Repo-Commit, ETag (git sha1), and for LFS
  files X-Linked-Etag (sha256) + X-Linked-Size (file_download.get_hf_file_metadata)
- GET  /{repo}/resolve/{rev}/{file}  (+ Range: bytes=N-) → 200, or 206 with Content-Range (http_get)

Faults, one per file name: `cut` sends half the bytes then drops the connection (once); `corrupt`
serves other bytes of the same length (always). Every request is recorded in `log`.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_SUFFIXES = (".safetensors", ".bin")


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class LoopbackHub:
    def __init__(self, repos: dict[str, Path]):
        self.files = {
            repo: {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()} for repo, d in repos.items()
        }
        self.log: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.cut: set[str] = set()
        self.corrupt: set[str] = set()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                hub._serve(self, body=False)

            def do_GET(self):
                hub._serve(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> LoopbackHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def requests(self, method: str, name: str) -> list[str | None]:
        """The Range headers of every `method` request for a file called `name`."""
        return [r for m, p, r in self.log if m == method and p.endswith("/" + name)]

    # --- responses ------------------------------------------------------------------------------
    def _listing(self, repo: str) -> dict:
        siblings = []
        for name, data in self.files[repo].items():
            s = {"rfilename": name, "size": len(data), "blobId": git_sha1(data)}
            if name.endswith(LFS_SUFFIXES):
                s["lfs"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "pointerSize": 134}
            siblings.append(s)
        return {"id": repo, "modelId": repo, "sha": COMMIT, "private": False, "siblings": siblings}

    def _serve(self, h: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlparse(h.path).path)
        self.log.append((h.command, path, h.headers.get("Range")))
        if path.startswith("/api/models/"):
            repo = path[len("/api/models/") :].split("/revision/")[0]
            if repo not in self.files:
                return self._send(h, 404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"}, body)
            return self._send(
                h, 200, json.dumps(self._listing(repo)).encode(), {"Content-Type": "application/json"}, body
            )
        repo, sep, rest = path.lstrip("/").partition("/resolve/")
        name = rest.partition("/")[2]
        if not sep or repo not in self.files:
            return self._send(h, 404, b"not found", {"X-Error-Code": "RepoNotFound"}, body)
        if name not in self.files[repo]:
            return self._send(h, 404, b"not found", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT}, body)
        data = self.files[repo][name]
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{git_sha1(data)}"', "Accept-Ranges": "bytes"}
        if name.endswith(LFS_SUFFIXES):
            headers |= {"X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Linked-Size": str(len(data))}
        if body and name in self.corrupt:
            data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]  # same length, other bytes
        start = 0
        rng = h.headers.get("Range")
        if body and rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        part = data[start:]
        if body and name in self.cut:
            self.cut.discard(name)  # once
            h.send_response(206 if start else 200)
            for k, v in {**headers, "Content-Length": str(len(part))}.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(part[: len(part) // 2])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(h, 206 if start else 200, part, headers, body)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, code: int, data: bytes, headers: dict, body: bool) -> None:
        h.send_response(code)
        for k, v in {**headers, "Content-Length": str(len(data))}.items():
            h.send_header(k, v)
        h.end_headers()
        if body:
            h.wfile.write(data)


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
