"""`make demo`: the main job on the embedded default model, offline, on the shared sample images.

1. zero-shot classify a few ImageNet sample photos against a small label set;
2. index the Flickr8k test photos into a collection (incremental, so a second run does no model
   work) and search it by text and by example image.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from cliplab.data.shared import shared_dir  # noqa: E402

LABELS = ["goldfish", "tabby cat", "golden retriever", "sports car", "pizza", "mountain bike", "lighthouse"]
SAMPLES = ["n01443537", "n02123045", "n02099601", "n04285008", "n07873807", "n03792782", "n03874293"]
QUERIES = ["a dog running on the grass", "children playing in the water", "a man riding a bicycle",
           "a snowy mountain"]


def run(argv: list[str]) -> None:
    from cliplab.cli import app

    print(f"\n$ cliplab {' '.join(argv)}", flush=True)
    try:
        app(argv, standalone_mode=False)
    except SystemExit as e:
        if e.code:
            raise


def main() -> int:
    root = shared_dir()
    if root is None:
        print("demo needs the shared data folder (../shared or $CLIPLAB_SHARED)", file=sys.stderr)
        return 1
    imnet = root / "data" / "imagenet-samples" / "images"
    flickr = root / "data" / "flickr8k-1k"
    run(["classify", *[str(imnet / f"{w}.jpg") for w in SAMPLES], "--labels", ",".join(LABELS), "-k", "2"])
    work = Path(os.environ.get("CLIPLAB_DEMO_DIR", Path(tempfile.gettempdir()) / "cliplab-demo"))
    photos = work / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    test = pd.read_csv(flickr / "captions.csv").query("split == 'test'")["path"].unique()
    for rel in test:
        link = photos / Path(rel).name
        if not link.exists():
            link.symlink_to(flickr / rel)
    try:
        import cliplab.cli.index  # noqa: F401
        from cliplab.cli.app import app as _app

        has_index = any(c.name == "search" or (c.callback and c.callback.__name__ == "search")
                        for c in _app.registered_commands)
    except ImportError:
        has_index = False
    if not has_index:
        run(["embed", str(photos), "--out", str(work / "run")])
        return 0
    run(["index", str(photos), "--index", str(work / "index")])
    for q in QUERIES:
        run(["search", q, "--dir", str(photos), "--index", str(work / "index"), "-n", "3"])
    run(["search", "--image", str(photos / Path(test[0]).name), "--dir", str(photos),
         "--index", str(work / "index"), "-n", "3"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
