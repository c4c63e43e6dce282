"""`make demo`: the main job on the embedded default model, offline, through the real CLI.

1. zero-shot classify a few ImageNet sample photos against a small label set;
2. index the 1,000 Flickr8k sample photos (incremental: a second run does no model work) and
   search them by text and by example image;
3. index them with two more models (`conse`, and the seed's Pre-CLIP baseline `preclip`) and compare
   the three on one query;
4. explore the folder: its photos in clusters named by zero-shot (the map is cached with the index).
"""

from __future__ import annotations

import os
import shlex
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from cliplab.data.shared import shared_dir  # noqa: E402

LABELS = ["goldfish", "tabby cat", "golden retriever", "sports car", "pizza", "mountain bike", "lighthouse"]
SAMPLES = ["n01443537", "n02123045", "n02099601", "n04285008", "n07873807", "n03792782", "n02814860"]
QUERIES = [
    "a dog running on the beach",
    "children playing in the snow",
    "a man riding a bicycle",
    "a boat on the water",
]


def run(argv: list[str]) -> None:
    from cliplab.cli import app

    print(f"\n$ cliplab {shlex.join(argv)}", flush=True)
    app(argv, standalone_mode=False)


def _index_is_stale(folder: str) -> bool:
    """An index left by an earlier demo whose `lite` weights have since been retrained."""
    from cliplab.index import Collection, IndexMismatchError

    try:
        Collection.find(folder).encoder()
    except IndexMismatchError:
        print("\n(the demo's index was built with an earlier model: rebuilding it)", flush=True)
        return True
    return False


def main() -> int:
    root = shared_dir()
    if root is None:
        print("the demo needs the shared data folder (../shared or $CLIPLAB_SHARED)", file=sys.stderr)
        return 1
    imagenet = root / "data" / "imagenet-samples" / "images"
    photos = str(root / "data" / "flickr8k-1k" / "images")
    run(["classify", *[str(imagenet / f"{w}.jpg") for w in SAMPLES], "--labels", ",".join(LABELS), "-k", "2"])
    run(["index", photos, *(["--reindex"] if _index_is_stale(photos) else [])])
    for q in QUERIES:
        run(["search", q, "--dir", photos, "-k", "3"])
    run(["search", "--image", os.path.join(photos, sorted(os.listdir(photos))[0]), "--dir", photos, "-k", "3"])
    run(["index", photos, "--model", "conse", "--model", "preclip"])  # one index per model of the same folder
    run(["search", QUERIES[0], "--dir", photos, "--model", "lite", "--model", "conse", "--model", "preclip", "-k", "5"])
    run(["explore", photos])
    return 0


if __name__ == "__main__":
    sys.exit(main())
