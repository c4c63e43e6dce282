"""Helpers for the real-browser tests (and `tools/serve_screenshot.py`): a folder of real photos,
a live uvicorn server in a thread, a static file server for clip-retrieval's front, and Debian's
chromium driven by Playwright through `executable_path` (no browser can be downloaded here)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
# unpacked by `make test` (Makefile: clip-retrieval's wheel, which ships its built web front)
CLIP_RETRIEVAL_DIR = ROOT / ".venv" / "clip-retrieval"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# a few ImageNet sample photos, under readable names, so the folder filter and classify have meaning
IMAGENET = {
    "n02099601": "golden_retriever",
    "n02088364": "beagle",
    "n02123045": "tabby_cat",
    "n04285008": "sports_car",
    "n07873807": "pizza",
    "n02814860": "lighthouse",
    "n02504458": "elephant",
    "n03792782": "mountain_bike",
}


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("chromium not found: `make test` installs it (apt-get install chromium)")
    return path


def photo_folder(shared: Path, dest: Path, flickr: int = 34) -> Path:
    """dest/flickr/*.jpg (the first `flickr` Flickr8k photos) + dest/imagenet/<class>.jpg."""
    src = sorted((shared / "data" / "flickr8k-1k" / "images").glob("*.jpg"))[:flickr]
    (dest / "flickr").mkdir(parents=True, exist_ok=True)
    (dest / "imagenet").mkdir(parents=True, exist_ok=True)
    for p in src:
        shutil.copy(p, dest / "flickr" / p.name)
    for wnid, name in IMAGENET.items():
        shutil.copy(shared / "data" / "imagenet-samples" / "images" / f"{wnid}.jpg", dest / "imagenet" / f"{name}.jpg")
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:g} s")


@contextlib.contextmanager
def live_server(state):
    """The real app (`create_app(state)`) under uvicorn on a free port, in a thread; yields its URL."""
    import uvicorn

    from cliplab.serve import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        _wait_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@contextlib.contextmanager
def static_server(folder: Path):
    """A plain static file server for `folder` on a free port (another origin than the API)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def chromium():
    """A headless Debian chromium under Playwright; yields the Browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def record_requests(page) -> list[str]:
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    return urls


def assert_local(urls: list[str]) -> None:
    remote = [u for u in urls if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).hostname != "127.0.0.1"]
    assert urls and not remote, f"requests to other hosts: {remote}"


@contextlib.contextmanager
def checked_page(browser, width: int = 1280, height: int = 720):
    """A fresh page (own storage), failing the test on any uncaught JavaScript error and on any
    request that leaves this machine (the page must work offline)."""
    context = browser.new_context(viewport={"width": width, "height": height})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    requests = record_requests(pg)
    pg.set_default_timeout(30_000)
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert_local(requests)


def card_names(page) -> list[str]:
    return page.eval_on_selector_all(".card .name", "els => els.map(e => e.textContent)")
