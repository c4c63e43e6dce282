"""Which search mode is the default: semantic, keyword or hybrid (RRF), measured on Flickr8k-1k.

The collection: all 1,000 photos, each with its first caption stored beside it (`<photo>.txt`,
clip-retrieval's convention), indexed with `lite`. Queries: the other four captions of each photo,
whose target is that photo. Only the test split's 200 photos give queries: `lite` was trained on
the train split's captions, so its semantic scores there are memorised, not measured (54 % R@1 on
train captions against 13 % on test ones in a first run of this script). The mode is chosen on the
captions of half the test photos (400 queries) and reported on the other half's (400), in two
libraries: the one above, and the same photos with no caption stored (file names only, what most
photo libraries are). The rule is "hybrid when it does not lose R@1 to semantic on the selection
queries of either library, else semantic". A second test: each photo's file name (its stem) as
the query must find that photo at rank 1.

    python benchmarks/hybrid_search.py [--limit N]      (N queries per split, for a quick look)

`--rules` also compares keyword-match rules (RULES: how many of the query's words a match must
hold, how matches are ordered, where ties go in the fusion) on the same index, in keyword and
hybrid mode; `benchmarks/ocr_bench.py --rules` does the same on a library with documents' text.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, require_shared  # noqa: E402

from cliplab.index import Collection  # noqa: E402
from cliplab.runtime import load_encoder  # noqa: E402
from cliplab.search import parse, run  # noqa: E402

MODES = ("semantic", "keyword", "hybrid")
# name: (words a match must hold (all of a shorter query), every-word matches first) — cliplab.index.keywords
RULES = {
    "any word, BM25 (before)": (1, False),
    "any word, every-word matches first": (1, True),
    "two words, every-word first (cliplab's)": (2, True),
    "every word": (99, True),
}


def use_rule(name: str) -> None:
    """Switch cliplab's keyword-match rule to RULES[name] (for this comparison only)."""
    from cliplab.index import keywords

    keywords.MIN_WORDS, keywords.EVERY_WORD_FIRST = RULES[name]


def cached_texts(enc):
    """`enc` with its text vectors remembered: the rules compare the same queries many times."""
    memo, encode = {}, enc.encode_texts

    def encode_texts(texts):
        miss = [t for t in dict.fromkeys(texts) if t not in memo]
        if miss:
            memo.update(zip(miss, encode(miss)))
        return np.stack([memo[t] for t in texts])

    enc.encode_texts = encode_texts
    return enc


def recalls(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks)
    return {f"R@{k}": round(100 * sum(1 for r in ranks if r is not None and r <= k) / n, 1) for k in (1, 5, 10)}


def rank_of(col, query: str, target: str, mode: str) -> int | None:
    hits = run(col, parse(query), k=10, mode=mode)
    return next((h.rank for h in hits if h.relpath == target), None)


def compare_rules(col, halves: dict, captions: dict, names: list, limit: int | None) -> dict:
    """{rule: {(half, mode): recalls, "names": file name at rank 1 (hybrid), %}} on one library."""
    out = {}
    for rule in RULES:
        use_rule(rule)
        row = {}
        for which, photos in halves.items():
            queries = [(c, Path(p).name) for p in photos for c in captions[p][1:]][: limit or None]
            for mode in ("keyword", "hybrid"):
                row[(which, mode)] = recalls([rank_of(col, q, target, mode) for q, target in queries])
        row["names"] = 100 * sum(rank_of(col, Path(n).stem, n, "hybrid") == 1 for n in names) / len(names)
        out[rule] = row
    use_rule("two words, every-word first (cliplab's)")
    return out


def measure(
    root: Path, captions: dict, split: dict, stored: bool, limit: int | None, rules: bool = False
) -> tuple[dict, dict, int]:
    """(recall table, file-name rank-1 rates, number of names) for one library: with each photo's
    first caption stored beside it, or with nothing but its file name (most photo libraries).
    `rules`: the table also holds `("rules", rule)` rows from `compare_rules`."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for rel, caps in captions.items():
            name = Path(rel).name
            (folder / name).symlink_to(root / rel)
            if stored:
                (folder / name).with_suffix(".txt").write_text(caps[0])
        col = Collection(folder, index_dir=Path(tmp) / "idx", encoder=cached_texts(load_encoder("lite")))
        t = time.perf_counter()
        col.update()
        print(f"indexed {col.catalog.count_vectors()} photos in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        table = {}
        test = [p for p in captions if split[p] == "test"]
        halves = {"select": test[::2], "report": test[1::2]}
        for which in ("select", "report"):
            queries = [(c, Path(p).name) for p in halves[which] for c in captions[p][1:]]
            queries = queries[:limit] if limit else queries
            for mode in MODES:
                table[(which, mode)] = recalls([rank_of(col, q, target, mode) for q, target in queries])
            table[(which, "n")] = len(queries)
        names = [Path(p).name for p in captions][: limit or None]
        by_name = {m: 100 * sum(rank_of(col, Path(n).stem, n, m) == 1 for n in names) / len(names) for m in MODES}
        if rules:
            table["rules"] = compare_rules(col, halves, captions, names, limit)
        col.close()
    return table, by_name, len(names)


def flickr_captions() -> tuple[Path, dict[str, list[str]], dict[str, str]]:
    """Flickr8k-1k's folder, each photo's captions and its split (also used by ocr_bench.py)."""
    root = require_shared() / "data" / "flickr8k-1k"
    captions, split = defaultdict(list), {}
    with open(root / "captions.csv", newline="") as f:
        for row in csv.DictReader(f):
            captions[row["path"]].append(row["caption"])
            split[row["path"]] = row["split"]
    return root, captions, split


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None, help="queries per split (default: all)")
    ap.add_argument("--rules", action="store_true", help="also compare keyword-match rules (RULES)")
    a = ap.parse_args()
    root, captions, split = flickr_captions()
    print(f"# search modes on Flickr8k-1k, lite ({machine()})\n")
    rules = {}
    for stored in (True, False):
        table, by_name, n_names = measure(root, captions, split, stored, a.limit, a.rules)
        print(f"**{'first caption stored beside each photo' if stored else 'no captions: file names only'}**\n")
        print("| mode | selection R@1 / R@5 / R@10 | reported R@1 / R@5 / R@10 | file name at rank 1 |")
        print("|---|---|---|---|")
        for m in MODES:
            tr, te = table[("select", m)], table[("report", m)]
            print(
                f"| {m} | {tr['R@1']} / {tr['R@5']} / {tr['R@10']} | {te['R@1']} / {te['R@5']} / {te['R@10']} | {by_name[m]:.1f} % |"
            )
        print(
            f"\nqueries: {table[('select', 'n')]} selection, {table[('report', 'n')]} reported, {n_names} file names\n"
        )
        if a.rules:
            print(
                "| keyword-match rule | keyword R@1 sel. / rep. | hybrid selection R@1 / R@5 / R@10 | "
                "hybrid reported R@1 / R@5 / R@10 | file name at rank 1 |"
            )
            print("|---|---|---|---|---|")
            for rule, row in table["rules"].items():
                ks, kr, hs, hr = (
                    row[("select", "keyword")],
                    row[("report", "keyword")],
                    row[("select", "hybrid")],
                    row[("report", "hybrid")],
                )
                print(
                    f"| {rule} | {ks['R@1']} / {kr['R@1']} | {hs['R@1']} / {hs['R@5']} / {hs['R@10']} | "
                    f"{hr['R@1']} / {hr['R@5']} / {hr['R@10']} | {row['names']:.1f} % |"
                )
            print()
        rules[stored] = table[("select", "hybrid")]["R@1"] >= table[("select", "semantic")]["R@1"]
    choose = "hybrid" if all(rules.values()) else "semantic"
    print(
        f"rule: hybrid unless it loses R@1 to semantic on the selection queries of either library → default: **{choose}**"
    )


if __name__ == "__main__":
    main()
