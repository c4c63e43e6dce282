"""Text inside images (OCR, issue 22): what reading text costs per photo, and what it finds.

The library: the first N Flickr8k-1k photos (default 300, longest side 320 px) and D generated
documents (default 40: receipts, street signs, scanned pages, screenshots drawn with Pillow's
TrueType font), each holding one distinctive phrase (three words no other document has) among
ordinary words that many share ("TOTAL", "Thank you", "Page 1"). File names say nothing (scan_NNN).
Indexed with `lite`, then `ocr.fill`, each file's reading timed.

Reported:
- ms per photo without text (the Flickr photos, and the same photos scaled to a 12 MP phone size,
  decoded with JPEG draft and bounded to 1280 px) and with text (the documents), for cliplab's
  settings and RapidOCR's defaults (detector at ≥ 736 px on the short side, angle classifier on);
- R@1 / R@5 of the documents' phrases as queries in semantic, keyword and hybrid mode;
- R@1 of Flickr test-split captions of the photos (queries about photos) in hybrid mode with and
  without the documents' text in the keyword index: does text from documents get in the way?

    nice -n 10 python benchmarks/ocr_bench.py [--photos 300] [--docs 40] [--compare 20] [--rules]

`--rules`: the keyword-match rules of `hybrid_search.py` compared on this library, documents and
photo queries each split in a selection half (even positions) and a reported half (odd).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402
from hybrid_search import cached_texts, flickr_captions  # noqa: E402

import cliplab.index.ocr as text_in_images  # noqa: E402
from cliplab.data.ocr import read_text  # noqa: E402
from cliplab.index import Collection  # noqa: E402
from cliplab.runtime import load_encoder  # noqa: E402
from cliplab.search import parse, run  # noqa: E402

ADJ = "amber brisk copper dusty emerald frosty golden hollow ivory jolly lunar misty noble olive polar quiet rusty".split()
NOUN = (
    "anchor badger candle falcon garden harbour island kettle lantern meadow orchard pebble quarry river saddle".split()
)
THING = "bakery bridge clinic depot ferry gallery hostel market museum office pantry studio tavern tower".split()


def phrases(n: int, rng: random.Random) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        out.add(f"{rng.choice(ADJ)} {rng.choice(NOUN)} {rng.choice(THING)}")
    return sorted(out, key=lambda _: rng.random())


def _draw(size, bg, lines, fg, font, x=30, y=30, gap=2.1) -> Image.Image:
    im = Image.new("RGB", size, bg)
    d, f = ImageDraw.Draw(im), ImageFont.load_default(size=font)
    for i, line in enumerate(lines):
        d.text((x, y + i * int(font * gap)), line, fill=fg, font=f)
    return im


def document(kind: str, phrase: str, rng: random.Random) -> Image.Image:
    """A receipt, a street sign, a scanned page or a screenshot holding `phrase`."""
    p = phrase.split()
    if kind == "receipt":
        items = [f"{w.title()} {rng.randint(1, 9)}.{rng.randint(0, 99):02d}" for w in rng.sample(NOUN, 3)]
        lines = [
            f"{p[0].upper()} {p[1].upper()} {p[2].upper()}",
            *items,
            f"TOTAL {rng.randint(10, 99)}.50",
            "Thank you",
        ]
        return _draw((420, 560), (248, 246, 240), lines, "black", 24)
    if kind == "sign":
        bg = rng.choice([(20, 70, 160), (15, 110, 60), (150, 30, 30)])
        return _draw(
            (1600, 700), bg, [f"{p[0].title()} {p[1].title()}", f"{p[2].title()} Street"], "white", 110, 60, 150
        )
    if kind == "page":
        body = [f"Minutes of the {p[0]} {p[1]} {p[2]} meeting", "Present: the committee and two guests"]
        body += ["The budget was approved without changes", "Next meeting on the first Monday", "Page 1"]
        return _draw((760, 520), (236, 236, 230), body, (30, 30, 30), 20, 40, 2.4)
    lines = [f"Welcome to {p[0].title()} {p[1].title()}", f"Open the {p[2]} settings", "Cancel    OK"]
    return _draw((900, 420), (32, 34, 40), lines, (230, 230, 230), 26, 40)


def rank_of(col, query: str, target: str, mode: str) -> int | None:
    hits = run(col, parse(query), k=10, mode=mode)
    return next((h.rank for h in hits if h.relpath == target), None)


def recall(ranks, k) -> float:
    return round(100 * sum(r is not None and r <= k for r in ranks) / len(ranks), 1)


def ms(xs) -> str:
    return f"{1000 * statistics.mean(xs):.0f} (median {1000 * statistics.median(xs):.0f})"


def default_engine_ms(paths: list[Path]) -> list[float]:
    """RapidOCR as it comes (no size bound, detector at ≥ 736 px short side, angle classifier on)."""
    import numpy as np
    from rapidocr_onnxruntime import RapidOCR

    from cliplab.data.images import load_image

    eng, out = RapidOCR(), []
    eng(np.full((240, 320, 3), 255, np.uint8))  # warm: sessions built, first-run costs paid
    for p in paths:
        t = time.perf_counter()
        eng(np.ascontiguousarray(np.asarray(load_image(p))[:, :, ::-1]))
        out.append(time.perf_counter() - t)
    return out


def compare_rules(col, docs: dict, queries: list) -> None:
    """hybrid_search.RULES on this library: selection half / reported half of the documents' phrases
    and of the photo queries (halves by photo, as hybrid_search.py splits them)."""
    from hybrid_search import RULES, use_rule

    doc_q = [(phrase, d) for d, (_, phrase) in docs.items()]
    targets = list(dict.fromkeys(t for _, t in queries))
    half = {t: ("select", "report")[i % 2] for i, t in enumerate(targets)}
    print("\n**keyword-match rules** (selection / reported half)\n")
    print("| rule | documents R@1, keyword | documents R@1, hybrid | photo captions R@1, hybrid |")
    print("|---|---|---|---|")
    for rule in RULES:
        use_rule(rule)
        cells = []
        for mode in ("keyword", "hybrid"):
            ranks = [rank_of(col, q, d, mode) for q, d in doc_q]
            cells.append(f"{recall(ranks[::2], 1)} / {recall(ranks[1::2], 1)}")
        photo = {w: [rank_of(col, q, t, "hybrid") for q, t in queries if half[t] == w] for w in ("select", "report")}
        cells.append(f"{recall(photo['select'], 1)} / {recall(photo['report'], 1)}")
        print(f"| {rule} | " + " | ".join(cells) + " |")
    use_rule("two words, every-word first (cliplab's)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=300)
    ap.add_argument("--docs", type=int, default=40)
    ap.add_argument("--phone", type=int, default=20, help="photos also measured at 12 MP (4032x3024 JPEG)")
    ap.add_argument("--compare", type=int, default=20, help="files of each kind also read with RapidOCR's defaults")
    ap.add_argument("--rules", action="store_true", help="also compare keyword-match rules (hybrid_search.RULES)")
    a = ap.parse_args()
    root, captions, split = flickr_captions()
    photos = sorted(captions)[: a.photos]
    rng = random.Random(22)
    kinds = ("receipt", "sign", "page", "screenshot")
    print(f"# OCR on {len(photos)} Flickr8k photos + {a.docs} generated documents, lite ({machine()})\n")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "library"
        folder.mkdir()
        for rel in photos:
            (folder / Path(rel).name).symlink_to(root / rel)
        docs = {}
        for i, phrase in enumerate(phrases(a.docs, rng)):
            name = f"scan_{i:03d}.png" if i % 2 else f"scan_{i:03d}.jpg"
            document(kinds[i % 4], phrase, rng).save(folder / name, **({"quality": 90} if name.endswith("jpg") else {}))
            docs[name] = (kinds[i % 4], phrase)
        phone = Path(tmp) / "phone"
        phone.mkdir()
        for rel in photos[: a.phone]:
            Image.open(root / rel).convert("RGB").resize((4032, 3024), Image.BICUBIC).save(
                phone / Path(rel).name, quality=90
            )

        col = Collection(folder, index_dir=Path(tmp) / "idx", encoder=cached_texts(load_encoder("lite")))
        t = time.perf_counter()
        col.update()
        print(f"indexed {col.count} files in {time.perf_counter() - t:.1f} s (lite)", file=sys.stderr)
        queries = [(c, Path(p).name) for p in photos if split[p] == "test" for c in captions[p]]
        before = [rank_of(col, q, target, "hybrid") for q, target in queries]  # no text read yet

        times: dict[str, float] = {}
        read = text_in_images.read_file

        def timed(path: Path):
            t0 = time.perf_counter()
            out = read(path)
            times[path.name] = time.perf_counter() - t0
            return out

        text_in_images.read_file = timed
        read_text(Image.new("RGB", (320, 240), "white"))  # warm: the engine loads once per process (~1 s)
        t = time.perf_counter()
        text_in_images.remember(col.catalog, True)
        n = text_in_images.fill(col.catalog, col.folder)
        total = time.perf_counter() - t
        text_in_images.read_file = read
        cov = text_in_images.coverage(col.catalog)
        print(f"read {n} files in {total:.1f} s: {cov}", file=sys.stderr)
        phone_t = []
        for p in sorted(phone.iterdir()):
            t0 = time.perf_counter()
            text_in_images.read_file(p)
            phone_t.append(time.perf_counter() - t0)

        no_text = [times[Path(p).name] for p in photos]
        with_text = [times[d] for d in docs]
        false_text = len(text_in_images.texts(col.catalog, [col.catalog.id_of(Path(p).name) for p in photos]))
        doc_text = text_in_images.texts(col.catalog, [col.catalog.id_of(d) for d in docs])
        exact = sum(
            phrase in " ".join(doc_text.get(col.catalog.id_of(d), "").lower().split())
            for d, (_, phrase) in docs.items()
        )
        print("**ms per file (mean, median), cliplab's settings vs RapidOCR's defaults**\n")
        print("| files | cliplab (bounded 1280 px, detector at native size, no angle pass) | RapidOCR defaults |")
        print("|---|---|---|")
        cmp_photos = default_engine_ms([root / p for p in photos[: a.compare]]) if a.compare else []
        cmp_docs = default_engine_ms([folder / d for d in list(docs)[: a.compare]]) if a.compare else []
        cmp_phone = default_engine_ms(sorted(phone.iterdir())[: a.compare // 4]) if a.compare else []
        fmt = lambda xs: ms(xs) if xs else "–"  # noqa: E731
        print(
            f"| {len(no_text)} photos without text (320 px) | {ms(no_text)} | {fmt(cmp_photos)} ({len(cmp_photos)} files) |"
        )
        print(f"| {len(phone_t)} photos at 12 MP (JPEG) | {fmt(phone_t)} | {fmt(cmp_phone)} ({len(cmp_phone)} files) |")
        print(f"| {len(with_text)} documents with text | {ms(with_text)} | {fmt(cmp_docs)} ({len(cmp_docs)} files) |")
        by_kind = {k: [times[d] for d, (kk, _) in docs.items() if kk == k] for k in kinds}
        print("\nby kind (cliplab): " + ", ".join(f"{k} {ms(v)}" for k, v in by_kind.items()))
        print(
            f"\nphotos given some text (false positives): {false_text} of {len(photos)}; documents whose phrase was read "
            f"word for word: {exact} of {len(docs)}\n"
        )

        print("**documents found by their phrase** (query: the three words; target: the document)\n")
        print("| mode | R@1 | R@5 |")
        print("|---|---|---|")
        for mode in ("semantic", "keyword", "hybrid"):
            ranks = [rank_of(col, phrase, d, mode) for d, (_, phrase) in docs.items()]
            print(f"| {mode} | {recall(ranks, 1)} | {recall(ranks, 5)} |")
        after = [rank_of(col, q, target, "hybrid") for q, target in queries]
        print(
            f"\nphoto queries (Flickr test-split captions of these photos, {len(after)} queries), hybrid R@1: "
            f"{recall(before, 1)} without the documents' text in the keyword index, {recall(after, 1)} with it"
        )
        if a.rules:
            compare_rules(col, docs, queries)
        col.close()


if __name__ == "__main__":
    main()
