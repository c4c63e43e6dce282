"""Frame time of the page's Explore map while panning (issue 23, Benchmarks): headless Debian chromium
(Playwright), a live server, a folder of N tiny generated photos indexed with the toy encoder.

    python benchmarks/map_frames.py [--n 10000] [--frames 300] [--work DIR]

The photos are 16×16 PNGs in 12 colour families, so the map has structure; the toy encoder (tests/helpers.py:
a photo's vector is its mean colour) indexes them in seconds — the map's drawing cost depends on the number
of points, not on the model. The server computes the map as it does for any folder (UMAP when umap-learn
is installed, in the background: the page polls while it answers 202). Then a script in the page pans in a
circle, one step per animation frame, and collects the requestAnimationFrame timestamps (frame time = the gap
between two) and the time each redraw took (explore.js records it). Two views: the whole map (every point
a dot) and zoomed ×12 (few points on screen: thumbnails drawn, loaded while panning). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

from tests.serve.browser_helpers import chromium, live_server  # noqa: E402

PAN = """async ([frames, radius]) => {
  const ex = window.cliplab.explore;
  const stamps = [], first = ex.drawMs.length;
  await new Promise((resolve) => {
    let i = 0;
    const step = (ts) => {
      stamps.push(ts);
      if (i++ >= frames) { resolve(); return; }
      const a = (2 * Math.PI * i) / frames, b = (2 * Math.PI * (i - 1)) / frames;
      ex.panBy(radius * (Math.cos(a) - Math.cos(b)), radius * (Math.sin(a) - Math.sin(b)));
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  });
  return { stamps, draws: ex.drawMs.slice(first), thumbs: ex.thumbsLoaded };
}"""


def make_photos(folder: Path, n: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    families = rng.integers(30, 226, size=(12, 3))
    for i in range(n):
        colour = np.clip(families[i % 12] + rng.normal(0, 18, 3), 0, 255).astype(np.uint8)
        sub = folder / f"f{i % 12:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), tuple(int(c) for c in colour)).save(sub / f"p{i:05d}.png")


def percentile(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="photos (points on the map)")
    ap.add_argument("--frames", type=int, default=300, help="animation frames per scripted pan")
    ap.add_argument("--work", help="folder for the photos and the index (default: a temporary one)")
    a = ap.parse_args()

    from cliplab.serve import open_state
    from tests.helpers import ToyEncoder

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(a.work or tmp)
        os.environ["CLIPLAB_INDEX_HOME"] = str(work / "index-home")
        folder = work / f"map{a.n}"
        t0 = time.perf_counter()
        if not folder.is_dir():
            make_photos(folder, a.n)
        state = open_state([folder], model="toy", loader=lambda spec: ToyEncoder())
        print(f"{a.n} photos made and indexed in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        rows = []
        try:
            with live_server(state) as url, chromium() as browser:
                page = browser.new_page(viewport={"width": 1280, "height": 860}, device_scale_factor=1)
                page.set_default_timeout(600_000)
                t0 = time.perf_counter()
                page.goto(url + "/#explore")
                page.wait_for_function("n => window.cliplab.explore && window.cliplab.explore.count === n", arg=a.n)
                method = page.evaluate("document.querySelector('#map-summary').title.split(' ')[0]")
                print(f"map ({method}) shown after {time.perf_counter() - t0:.0f} s", file=sys.stderr)
                page.wait_for_timeout(500)
                for view, zoom in (("whole map (dots)", 1), ("zoomed ×12 (thumbnails)", 12)):
                    if zoom != 1:
                        page.evaluate(
                            "z => { const c = document.querySelector('#map-canvas');"
                            " window.cliplab.explore.zoomAt(c.clientWidth / 2, c.clientHeight / 2, z); }",
                            zoom,
                        )
                        page.wait_for_timeout(1500)
                    got = page.evaluate(PAN, [a.frames, 200])
                    gaps = list(np.diff(got["stamps"]))
                    draws = got["draws"]
                    rows.append(
                        (
                            view,
                            len(gaps),
                            statistics.median(gaps),
                            percentile(gaps, 95),
                            statistics.median(draws),
                            percentile(draws, 95),
                            got["thumbs"],
                        )
                    )
        finally:
            state.close()

    print(f"\nExplore map, {a.n} points, panning {a.frames} frames in headless chromium (software canvas, 1280×860);")
    print(f"{machine()}\n")
    print("| view | frames | frame median ms | frame p95 ms | redraw median ms | redraw p95 ms | thumbnails loaded |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for view, frames, fm, fp, dm, dp, thumbs in rows:
        print(f"| {view} | {frames} | {fm:.1f} | {fp:.1f} | {dm:.2f} | {dp:.2f} | {thumbs} |")


if __name__ == "__main__":
    main()
