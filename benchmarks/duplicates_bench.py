"""Duplicates (issue 26 §3): can a model's vectors tell a copy from a distinct photo, and what confirms one?

Generated set: the held-out photos of flickr8k-1k (its `test` split, never trained on) and five copies
of each — resized to 120 px (longer side), JPEG quality 30, 85 % centre crop, mirrored, grey. A pair
of images is a true pair when both come from the same photo (original–copy and copy–copy); every
other pair is two distinct photos, many of the same kind (flickr8k is dogs, children, people outside).

Signals, each a cosine over all pairs:
- the model's embedding (what `cliplab duplicates` groups today, default threshold 0.95);
- instance-level descriptors of EfficientNet-Lite0's last feature map (1280×7×7) pooled by GeM, R-MAC
  or MAC (cliplab.models.features.pooling, as `eval instance` uses), and the same with the mirrored
  image's descriptor added (flip-invariant), a fixed verifier whatever the embedding model is.
No perceptual-hash library is installed here (imagehash, opencv-contrib's img_hash: absent), so none
is compared.

Calibration on half of the photos (even source index), scores on the other half:
- candidate threshold = the 2nd percentile of the model's cosine over true pairs (≈98 % of copies
  become candidates);
- verifier threshold = the lowest one that keeps pair precision ≥ 0.95 among candidates.

    nice -n 10 .venv/bin/python benchmarks/duplicates_bench.py --model lite [--sources 200] [--flip] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import machine, require_shared  # noqa: E402

TRANSFORMS = ("resize120", "jpeg30", "crop85", "mirror", "grey")


def transform(im: Image.Image, kind: str) -> Image.Image:
    if kind == "resize120":
        out = im.copy()
        out.thumbnail((120, 120), Image.Resampling.LANCZOS)
        return out
    if kind == "jpeg30":
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=30)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    if kind == "crop85":
        w, h = im.size
        dw, dh = round(w * 0.075), round(h * 0.075)
        return im.crop((dw, dh, w - dw, h - dh))
    if kind == "mirror":
        return ImageOps.mirror(im)
    if kind == "grey":
        return im.convert("L").convert("RGB")
    raise ValueError(kind)


def generated_set(root: Path, n: int) -> tuple[list[Image.Image], np.ndarray, list[str]]:
    import pandas as pd

    cap = pd.read_csv(root / "data" / "flickr8k-1k" / "captions.csv").drop_duplicates("path")
    paths = sorted(cap[cap.split == "test"].path)[:n]
    images, source, kinds = [], [], []
    for s, p in enumerate(paths):
        with Image.open(root / "data" / "flickr8k-1k" / p) as im:
            im = im.convert("RGB")
        for kind in ("original",) + TRANSFORMS:
            images.append(im if kind == "original" else transform(im, kind))
            source.append(s)
            kinds.append(kind)
    return images, np.array(source), kinds


def verifier_descriptors(images: list[Image.Image], flip: bool = False, batch: int = 16) -> dict[str, np.ndarray]:
    """GeM / R-MAC / MAC of EfficientNet-Lite0's last feature map (and flip-invariant ones with `flip`)."""
    import torch

    from cliplab.models.features.layer_features import LayerFeatures
    from cliplab.models.features.pooling import pool
    from cliplab.runtime.select import load_torch

    lf = LayerFeatures(load_torch("conse", "cpu"), "head", "gem")
    out: dict[str, list] = {k: [] for k in ("gem", "rmac", "mac") + (("gem+flip", "rmac+flip") if flip else ())}
    with torch.inference_mode():
        for s in range(0, len(images), batch):
            x = np.stack([lf.preprocess(im) for im in images[s : s + batch]])
            f = lf.feature_map(x)
            for name in ("gem", "rmac", "mac"):
                out[name].append(np.asarray(pool(f, name)))
            if flip:
                ff = lf.feature_map(np.ascontiguousarray(x[..., ::-1]))
                out["gem+flip"].append(np.asarray(pool(f, "gem")) + np.asarray(pool(ff, "gem")))
                out["rmac+flip"].append(np.asarray(pool(f, "rmac")) + np.asarray(pool(ff, "rmac")))
    res = {}
    for k, v in out.items():
        a = np.concatenate(v).astype(np.float32)
        res[k] = a / np.linalg.norm(a, axis=1, keepdims=True)
    return res


def pair_scores(vecs: np.ndarray, idx: np.ndarray) -> np.ndarray:
    sub = vecs[idx]
    sims = sub @ sub.T
    iu = np.triu_indices(len(idx), 1)
    return sims[iu]


def prf(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    tp = int((pred & truth).sum())
    return (tp / max(int(pred.sum()), 1), tp / max(int(truth.sum()), 1))


def best_single(scores: np.ndarray, truth: np.ndarray) -> dict:
    """The threshold with the highest recall at precision ≥ 0.9, and precision at recall 0.8."""
    order = np.argsort(-scores)
    tp = np.cumsum(truth[order])
    prec = tp / np.arange(1, len(order) + 1)
    rec = tp / truth.sum()
    ok = np.flatnonzero(prec >= 0.9)
    at_p = (
        {"threshold": float(scores[order[ok[-1]]]), "precision": float(prec[ok[-1]]), "recall": float(rec[ok[-1]])}
        if len(ok)
        else None
    )
    r80 = int(np.searchsorted(rec, 0.8))
    return {"at_p90": at_p, "precision_at_r80": float(prec[min(r80, len(prec) - 1)])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="lite")
    ap.add_argument("--sources", type=int, default=200, help="held-out photos (test split has 200)")
    ap.add_argument("--flip", action="store_true", help="also flip-invariant descriptors (twice the verifier time)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    root = require_shared()

    from cliplab.runtime import load

    t0 = time.perf_counter()
    images, source, kinds = generated_set(root, args.sources)
    enc = load(args.model)
    t = time.perf_counter()
    emb = enc.encode_images(images)
    t_embed = time.perf_counter() - t
    t = time.perf_counter()
    ver = verifier_descriptors(images, args.flip)
    t_verify = (time.perf_counter() - t) / len(images)

    halves = {"calibration": np.flatnonzero(source % 2 == 0), "evaluation": np.flatnonzero(source % 2 == 1)}
    truth = {h: pair_scores(np.eye(source.max() + 1)[source], i) > 0.5 for h, i in halves.items()}
    model_s = {h: pair_scores(emb, i) for h, i in halves.items()}
    ver_s = {k: {h: pair_scores(v, i) for h, i in halves.items()} for k, v in ver.items()}

    # Calibration half: the model's candidate threshold, then each verifier's threshold among candidates.
    cal_truth, cal_model = truth["calibration"], model_s["calibration"]
    t_cand = float(np.percentile(cal_model[cal_truth], 2))
    rows = []
    ev_truth, ev_model = truth["evaluation"], model_s["evaluation"]
    p, r = prf(ev_model >= 0.95, ev_truth)
    rows.append(("model cosine ≥ 0.95 (today's default)", "", p, r))
    single = best_single(ev_model, ev_truth)
    if single["at_p90"]:
        s = single["at_p90"]
        rows.append(
            (
                f"model cosine, best single threshold at P ≥ 0.9 (oracle on eval: {s['threshold']:.3f})",
                "",
                s["precision"],
                s["recall"],
            )
        )
    cal_single = best_single(cal_model, cal_truth)["at_p90"]
    if cal_single:
        p, r = prf(ev_model >= cal_single["threshold"], ev_truth)
        rows.append(
            (f"model cosine ≥ {cal_single['threshold']:.3f} (single threshold calibrated at P ≥ 0.9)", "", p, r)
        )
    p, r = prf(ev_model >= t_cand, ev_truth)
    rows.append((f"model cosine ≥ {t_cand:.3f} (candidates only)", "", p, r))
    chosen = {}
    for name, s in ver_s.items():
        cand = cal_model >= t_cand
        vs = np.sort(np.unique(s["calibration"][cand]))
        t_ver = next((float(v) for v in vs if prf(cand & (s["calibration"] >= v), cal_truth)[0] >= 0.95), float(vs[-1]))
        p, r = prf((ev_model >= t_cand) & (s["evaluation"] >= t_ver), ev_truth)
        rows.append((f"candidates ≥ {t_cand:.3f}, confirmed by {name} ≥ {t_ver:.3f}", name, p, r))
        pv = best_single(s["evaluation"], ev_truth)
        chosen[name] = {"threshold": t_ver, "precision": p, "recall": r, "alone": pv}
    per_kind = {}
    for kind in TRANSFORMS:
        i = np.flatnonzero(np.array(kinds) == kind)
        o = np.flatnonzero(np.array(kinds) == "original")
        per_kind[kind] = float(np.median(np.sum(emb[i] * emb[o], axis=1)))
    report = {
        "model": args.model,
        "sources": int(source.max() + 1),
        "images": len(images),
        "pairs_per_half": {h: int(len(v)) for h, v in truth.items()},
        "true_pairs_per_half": {h: int(v.sum()) for h, v in truth.items()},
        "candidate_threshold": t_cand,
        "copy_median_cosine": per_kind,
        "max_distinct_cosine": float(ev_model[~ev_truth].max()),
        "verifiers": chosen,
        "embed_s_per_image": t_embed / len(images),
        "verify_s_per_image": t_verify,
        "machine": machine(),
        "total_s": time.perf_counter() - t0,
    }
    print(f"## duplicates on {len(images)} images ({report['sources']} held-out photos × 6), model {args.model}")
    print("| rule | precision | recall |\n|---|---|---|")
    for name, _v, p, r in rows:
        print(f"| {name} | {p:.3f} | {r:.3f} |")
    print(json.dumps({k: v for k, v in report.items() if k != "verifiers"}, indent=1))
    if args.json:
        args.json.write_text(json.dumps({**report, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
