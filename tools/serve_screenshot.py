"""Screenshots of `cliplab serve`'s page with real results (lite and conse on Flickr8k + ImageNet sample photos).

    .venv/bin/python tools/serve_screenshot.py                 # → docs/serve.png, docs/serve-classify.png,
                                                               #   docs/compare(-dark).png, docs/explore(-dark).png
    .venv/bin/python tools/serve_screenshot.py --url http://127.0.0.1:8765 --out /tmp/s.png --views-dir ""   # a running server

Builds the same photo folder as the browser tests, indexes it with `lite` and `conse`, serves it (lite)
on a free port, and drives Debian's chromium (see tests/serve/browser_helpers.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.serve.browser_helpers import chromium, live_server, photo_folder


@contextlib.contextmanager
def own_server(tmp: Path):
    from cliplab.data.shared import shared_dir
    from cliplab.index import Collection
    from cliplab.serve import open_state

    os.environ["CLIPLAB_INDEX_HOME"] = str(tmp / "index-home")
    folder = photo_folder(shared_dir(), tmp / "Photos")
    with Collection(folder, model="conse") as col:  # a second model for Compare
        col.update()
    state = open_state([folder], model="lite")
    try:
        with live_server(state) as url:
            yield url
    finally:
        state.close()


def shrink(path: Path) -> None:
    """A 256-colour PNG: a third of the size, and the photos still read well (it goes into git)."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    im.save(path, optimize=True)


def shoot(url: str, out: Path, classify_out: Path | None, query: str, dark: bool) -> None:
    with chromium() as browser, tempfile.TemporaryDirectory() as tmp:
        page = browser.new_page(
            viewport={"width": 1280, "height": 860}, device_scale_factor=1, color_scheme="dark" if dark else "light"
        )
        page.goto(url + "/")
        page.fill("#q", query)
        page.press("#q", "Enter")
        page.wait_for_selector(".card.loaded")
        # every thumbnail that is (even partly) on screen has loaded, and faded in
        page.wait_for_function(
            "[...document.querySelectorAll('.card')]"
            ".filter(c => c.getBoundingClientRect().top < innerHeight)"
            ".every(c => c.classList.contains('loaded'))"
        )
        page.wait_for_timeout(500)
        page.screenshot(path=str(out))
        shrink(out)
        print(f"wrote {out}")
        if classify_out:
            images = ROOT.parent / "shared" / "data" / "imagenet-samples" / "images"
            files = []
            for wnid, name in [("n02099601", "golden_retriever"), ("n04285008", "sports_car"), ("n07873807", "pizza")]:
                files.append(Path(tmp) / f"{name}.jpg")
                shutil.copy(images / f"{wnid}.jpg", files[-1])
            page.click("#tab-classify")
            page.set_input_files("#classify-files", [str(p) for p in files])
            page.wait_for_function("document.querySelectorAll('.classify-card').length === 3")
            page.screenshot(path=str(classify_out))
            shrink(classify_out)
            print(f"wrote {classify_out}")


LOADED = (
    "sel => [...document.querySelectorAll(sel)].filter(i => i.getBoundingClientRect().top < innerHeight)"
    ".every(i => i.complete && i.naturalWidth > 0)"
)


def shoot_views(url: str, folder: Path, query: str, dark: bool) -> None:
    """docs/compare.png (two models side by side, one photo's ranks open) and docs/explore.png (the map)."""
    suffix = "-dark" if dark else ""
    with chromium() as browser:
        page = browser.new_page(
            viewport={"width": 1280, "height": 860}, device_scale_factor=1, color_scheme="dark" if dark else "light"
        )
        page.set_default_timeout(180_000)  # the first map is computed in the background
        page.goto(f"{url}/#compare?q={query.replace(' ', '+')}&models=lite,conse&n=10")
        page.wait_for_selector(".compare-column .cmp-card")
        page.locator(".cmp-card.only button").first.click()
        page.wait_for_selector("#compare-ranks:not([hidden]) li")
        page.mouse.move(5, 300)
        page.wait_for_function(LOADED, arg=".cmp-card img")
        page.screenshot(path=str(folder / f"compare{suffix}.png"))
        page.goto(f"{url}/#explore?model=lite")
        page.reload()  # a fresh start at the address
        page.wait_for_function("window.cliplab.explore && window.cliplab.explore.model === 'lite'")
        page.wait_for_function("window.cliplab.explore.thumbsLoaded >= Math.min(window.cliplab.explore.count, 40)")
        box = page.locator("#map-canvas").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.5)
        page.wait_for_timeout(600)
        page.screenshot(path=str(folder / f"explore{suffix}.png"))
        for out in [folder / f"compare{suffix}.png", folder / f"explore{suffix}.png"]:
            shrink(out)
            print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="a running server (default: start one on the sample photos)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "serve.png"))
    ap.add_argument("--classify-out", default=str(ROOT / "docs" / "serve-classify.png"))
    ap.add_argument("--query", default="a dog running on the grass")
    ap.add_argument("--dark", action="store_true")
    ap.add_argument("--views-dir", default=str(ROOT / "docs"), help="where compare/explore (+ -dark) go; '' for none")
    a = ap.parse_args()
    with contextlib.ExitStack() as stack:
        url = a.url or stack.enter_context(own_server(Path(stack.enter_context(tempfile.TemporaryDirectory()))))
        shoot(url, Path(a.out), Path(a.classify_out) if a.classify_out else None, a.query, a.dark)
        if a.views_dir:
            for dark in (False, True):
                shoot_views(url, Path(a.views_dir), a.query, dark)


if __name__ == "__main__":
    main()
