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


def write_captions(shared: Path, folder: Path) -> Path:
    """folder/captions.csv: the Flickr8k captions (path,caption, five a photo) of folder/flickr/*.jpg."""
    import csv

    have = {p.name for p in (folder / "flickr").glob("*.jpg")}
    out = folder / "captions.csv"
    with open(shared / "data" / "flickr8k-1k" / "captions.csv", newline="") as src, open(out, "w", newline="") as dst:
        writer = csv.writer(dst)
        writer.writerow(["path", "caption"])
        for row in csv.DictReader(src):
            name = Path(row["path"]).name
            if name in have:
                writer.writerow([f"flickr/{name}", row["caption"]])
    return out


_MODEL_FOLDERS: dict[tuple, Path] = {}


def model_folder(shared: Path, tmp_path_factory, encoders: dict) -> Path:
    """The browser tests' photos (20 Flickr + 8 ImageNet: fewer than UMAP's minimum, so a map is a
    quick PCA) with their captions.csv, indexed with each of `encoders` ({model name: encoder});
    built once per test session. Its indexes live in folder.parent / "index-home" (CLIPLAB_INDEX_HOME)."""
    from cliplab.index import Collection

    key = tuple(encoders)
    if key not in _MODEL_FOLDERS:
        root = tmp_path_factory.mktemp("models")
        folder = photo_folder(shared, root / "Photos", flickr=20)
        write_captions(shared, folder)
        with _index_home(root / "index-home"):
            for name, encoder in encoders.items():
                with Collection(folder, model=name, loader=lambda spec, e=encoder: e) as col:
                    col.update()
        _MODEL_FOLDERS[key] = folder
    return _MODEL_FOLDERS[key]


@contextlib.contextmanager
def _index_home(home: Path):
    import os

    old = os.environ.get("CLIPLAB_INDEX_HOME")
    os.environ["CLIPLAB_INDEX_HOME"] = str(home)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("CLIPLAB_INDEX_HOME", None)
        else:
            os.environ["CLIPLAB_INDEX_HOME"] = old


@contextlib.contextmanager
def model_server(folder: Path, encoders: dict, **settings):
    """A live server on `folder` (built by `model_folder`) serving its first model's index, the
    others a `model_source` away. The tests must keep CLIPLAB_INDEX_HOME on folder.parent / "index-home"
    (the other models' indexes are found when first asked for)."""
    from cliplab.serve import Settings, open_state

    first = next(iter(encoders))
    with _index_home(folder.parent / "index-home"):
        state = open_state(
            [folder],
            model=first,
            loader=lambda spec: encoders.get(spec) or encoders[first],
            settings=Settings(**settings),
        )
    try:
        with live_server(state) as url:
            yield url
    finally:
        state.close()


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
def checked_page(
    browser,
    width: int = 1280,
    height: int = 720,
    console: bool = False,
    allow: tuple[str, ...] = (),
    color_scheme: str = "light",
    token: str | None = None,
):
    """A fresh page (own storage), failing the test on any uncaught JavaScript error and on any
    request that leaves this machine (the page must work offline). `console`: also on any console
    error (a failed request logs one) unless it contains one of `allow`. `token`: the page starts
    with it remembered, as after answering the token prompt once."""
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=color_scheme)
    if token:
        context.add_init_script(f"localStorage.setItem('cliplab_token', {token!r})")
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    if console:
        pg.on(
            "console",
            lambda m: (
                errors.append(f"console: {m.text}")
                if m.type == "error" and not any(a in m.text for a in allow)
                else None
            ),
        )
    requests = record_requests(pg)
    pg.set_default_timeout(30_000)
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert_local(requests)


def card_names(page) -> list[str]:
    return page.eval_on_selector_all(".card .name", "els => els.map(e => e.textContent)")
