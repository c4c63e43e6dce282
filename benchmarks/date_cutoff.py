"""The relevance cutoff behind `search --sort date`: which photos are relevant enough to be put in
date order. No fixed cosine works across queries (immich and rclip users report it; the scores of
one model move with the query), so the rule is relative to the query's own scores:

    keep a photo when  score ≥ top − λ · (top − typical)      (relative to the best)
                  or  score ≥ typical + z · spread          (relative to the crowd)

where `top` is the query's best score, `typical` the median score of the query against the
collection (a sample of it) and `spread` their standard deviation. λ and z are chosen here on CIFAR-10-dev (2,000 photos, 200 a class; the query
"a photo of a {class}." should keep its class): selected on five classes by mean F1, reported on
the other five, against the best fixed threshold chosen the same way.

    python benchmarks/date_cutoff.py [--model lite]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, require_shared  # noqa: E402

from cliplab.index import Collection  # noqa: E402
from cliplab.runtime import load_encoder  # noqa: E402
from cliplab.search.sort import typical_score  # noqa: E402

LAMBDAS = [round(x, 2) for x in np.arange(0.05, 1.0, 0.05)]
ZS = [round(x, 2) for x in np.arange(0.5, 6.01, 0.25)]
FIXED = [round(x, 3) for x in np.arange(0.0, 0.6, 0.01)]


def f1(kept: set, relevant: set) -> float:
    tp = len(kept & relevant)
    return 0.0 if not tp else 2 * tp / (len(kept) + len(relevant))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="lite")
    a = ap.parse_args()
    root = require_shared() / "data" / "cifar10-dev"
    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    classes = sorted({r["label"] for r in rows})
    select, report = classes[::2], classes[1::2]
    with tempfile.TemporaryDirectory() as tmp:
        col = Collection(root, index_dir=Path(tmp) / "idx", encoder=load_encoder(a.model))
        col.update()
        enc = col.encoder()
        per = {}
        for c in classes:
            q = enc.encode_texts([f"a photo of a {c}."])[0]
            hits = col.search_vector(q, k=len(rows))
            scores = {h.relpath: h.score for h in hits}
            spread = float(np.std(list(scores.values())))
            per[c] = (scores, (typical_score(col, q), spread), {r["path"] for r in rows if r["label"] == c})
        col.close()

    def mean_f1(names, rule) -> float:
        out = []
        for c in names:
            scores, typical, relevant = per[c]
            top = max(scores.values())
            line = rule(top, *typical)
            out.append(f1({p for p, s in scores.items() if s >= line}, relevant))
        return float(np.mean(out))

    rel = {lam: mean_f1(select, lambda top, typ, sd, lam=lam: top - lam * (top - typ)) for lam in LAMBDAS}
    zsc = {z: mean_f1(select, lambda top, typ, sd, z=z: typ + z * sd) for z in ZS}
    fixed = {t: mean_f1(select, lambda top, typ, sd, t=t: t) for t in FIXED}
    best_lam, best_z, best_t = max(rel, key=rel.get), max(zsc, key=zsc.get), max(fixed, key=fixed.get)
    print(f"# relevance cutoff for --sort date, {a.model} on CIFAR-10-dev ({machine()})\n")
    print("| rule | chosen on selection classes | mean F1, selection | mean F1, reported classes |")
    print("|---|---|---|---|")
    rule = lambda top, typ, sd: top - best_lam * (top - typ)  # noqa: E731
    print(f"| top − λ·(top − typical) | λ = {best_lam} | {rel[best_lam]:.3f} | {mean_f1(report, rule):.3f} |")
    rule = lambda top, typ, sd: typ + best_z * sd  # noqa: E731
    print(f"| typical + z·spread | z = {best_z} | {zsc[best_z]:.3f} | {mean_f1(report, rule):.3f} |")
    print(
        f"| fixed cosine (lite only) | {best_t} | {fixed[best_t]:.3f} | {mean_f1(report, lambda top, typ, sd: best_t):.3f} |"
    )
    print(f"\nselection classes: {', '.join(select)}; reported: {', '.join(report)}")


if __name__ == "__main__":
    main()
