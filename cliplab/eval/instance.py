"""Instance retrieval (same object / place): queries rank a database by cosine similarity → mAP.

Ground truth, two forms:
- Revisited Oxford/Paris (`.json`, or the official `.pkl`; only load pickles you trust):
  {"imlist": [db names], "qimlist": [query names], "gnd": [{"easy": [...], "hard": [...],
  "junk": [...], "bbx": [x1, y1, x2, y2] (optional)}, ...]} — indices into imlist, one entry per
  query. Names without an extension get ".jpg"; they are looked up in `images` (default: a `jpg/`
  folder beside the file, else the file's folder). Queries are cropped to `bbx` when present, as the
  protocol prescribes. Scored per protocol (easy / medium / hard, see metrics.revisited_ground_truth)
  with the official AP formula (ap="trapezoid").
- labels (labels.csv or an ImageFolder): every image queries all the others; same label = relevant;
  standard AP.
Database images that cannot be read are removed from every ranking (and so stop being positives);
queries that cannot be read are dropped. Both are listed under `failed`.

Descriptors: the model's image embedding (`pooling="none"`), or its image tower's last
feature map (EfficientNet: (N, 1280, 7, 7)) pooled by gap / mac / gem / rmac (`LayerFeatures`).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from cliplab.data.images import IMAGE_EXTENSIONS, load_image
from cliplab.errors import DataError, EvalError, ImageError
from cliplab.eval.common import dataset_name, embed_paths, read_labelled, resolve_encoder
from cliplab.eval.metrics import instance_metrics, label_ground_truth, masks_from_lists, revisited_ground_truth
from cliplab.models import Encoder
from cliplab.models.features.layer_features import LayerFeatures
from cliplab.models.features.pooling import pca_whiten

PROTOCOLS = ("easy", "medium", "hard")


def descriptor_encoder(encoder: Encoder, pooling: str = "none") -> Encoder:
    """The model's embedding (`none`), or its image tower's last feature map pooled (gap, mac, gem, rmac)."""
    if pooling in (None, "", "none"):
        return encoder
    return LayerFeatures(encoder, "head", pooling)


def _resolve_name(name: str, folder: Path) -> str:
    p = Path(name)
    if p.suffix.lower() not in IMAGE_EXTENSIONS:
        p = p.with_name(p.name + ".jpg")
    return str(p if p.is_absolute() else folder / p)


def load_ground_truth(gt, images: str | Path | None = None) -> dict:
    """A ground-truth file (or dict, or DataFrame[path, label]) → {"kind": "revisited", db, queries,
    bbx, gnd} or {"kind": "labels", paths, labels}."""
    if isinstance(gt, pd.DataFrame):
        df = read_labelled(gt)
        return {"kind": "labels", "paths": df["path"].tolist(), "labels": df["label"].tolist()}
    if isinstance(gt, dict):
        obj, folder = gt, Path(images or ".")
    else:
        p = Path(str(gt)).expanduser()
        if p.suffix.lower() not in {".json", ".pkl", ".pickle"}:
            df = read_labelled(p)
            return {"kind": "labels", "paths": df["path"].tolist(), "labels": df["label"].tolist()}
        if not p.is_file():
            raise DataError(f"no such ground-truth file: {p}")
        try:
            if p.suffix.lower() == ".json":
                obj = json.loads(p.read_text(encoding="utf-8"))
            else:
                with p.open("rb") as f:
                    obj = pickle.load(f)  # noqa: S301 the official gnd files are pickles
        except (ValueError, pickle.UnpicklingError, EOFError) as e:
            raise DataError(f"cannot read ground truth {p}: {e}") from None
        folder = Path(images) if images else (p.parent / "jpg" if (p.parent / "jpg").is_dir() else p.parent)
    if not isinstance(obj, dict) or not {"imlist", "qimlist", "gnd"} <= set(obj):
        raise DataError("ground truth must have imlist, qimlist and gnd (Revisited Oxford/Paris format)")
    db, qs, gnd = list(obj["imlist"]), list(obj["qimlist"]), list(obj["gnd"])
    if len(gnd) != len(qs) or not db or not qs:
        raise DataError(f"ground truth: {len(gnd)} gnd entries for {len(qs)} queries and {len(db)} images")
    for g in gnd:
        idx = [i for key in ("easy", "hard", "junk") for i in g.get(key, [])]
        if idx and (min(idx) < 0 or max(idx) >= len(db)):
            raise DataError(f"ground truth: index out of range for {len(db)} database images")
    return {
        "kind": "revisited",
        "db": [_resolve_name(n, folder) for n in db],
        "queries": [_resolve_name(n, folder) for n in qs],
        "bbx": [g.get("bbx") for g in gnd],
        "gnd": gnd,
    }


def _encode_queries(enc: Encoder, paths: Sequence[str], boxes: Sequence) -> tuple[np.ndarray, np.ndarray, list]:
    vecs, ok, failed = [], [], []
    for path, box in zip(paths, boxes):
        try:
            im = load_image(path)
            if box is not None:
                im = im.crop(tuple(int(round(float(c))) for c in box))
            vecs.append(enc.encode_images([im])[0])
            ok.append(True)
        except ImageError as e:
            ok.append(False)
            failed.append({"path": path, "reason": f"query: {e}"})
    out = np.stack(vecs) if vecs else np.zeros((0, enc.dim), np.float32)
    return out, np.array(ok, bool), failed


def _protocol_masks(gnd: list, protocol: str, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(relevant, ignored) masks over the database for one protocol; unreadable images are ignored."""
    pos, ign = revisited_ground_truth(gnd, protocol)
    return masks_from_lists(len(ok), pos), masks_from_lists(len(ok), ign) | ~ok[None, :]


def _no_positives(proto: str, usable: list[str]) -> str:
    """Why `proto` cannot be scored, and the protocols that can (gnd files without "hard" lists exist)."""
    keys = {"easy": "'easy'", "medium": "'easy' or 'hard'", "hard": "'hard'"}[proto]
    hint = " or ".join(f"--protocol {p}" for p in usable)
    return f"protocol {proto!r}: no query has a relevant item (no readable {keys} positives in the ground truth)" + (
        f"; use {hint}" if usable else "; no protocol has any"
    )


def check_ground_truth(gt, images: str | Path | None = None, protocols: Sequence[str] = PROTOCOLS) -> dict:
    """The ground truth, checked before any model loads: readable, and (Revisited) with positives
    for every protocol asked for."""
    truth = load_ground_truth(gt, images)
    if truth["kind"] == "revisited":
        has = {p: any(pos for pos in revisited_ground_truth(truth["gnd"], p)[0]) for p in PROTOCOLS}
        for proto in protocols:
            if proto in has and not has[proto]:
                raise EvalError(_no_positives(proto, [p for p in PROTOCOLS if has[p]]))
    return truth


def evaluate_instance(
    encoder: Encoder | str,
    gt,
    images: str | Path | None = None,
    pooling: str = "none",
    protocols: Sequence[str] = PROTOCOLS,
    crop_queries: bool = True,
    whiten: bool = False,
    pca_dim: int | None = None,
    ks: Sequence[int] = (1, 5, 10),
    batch_size: int | None = None,
    progress: bool = False,
) -> dict:
    """mAP (and P@K, R@K) of one model's descriptors on an instance-retrieval ground truth.

    whiten / pca_dim: PCA(-whitening) learned on the database descriptors themselves (an upper
    bound: published numbers learn it on a separate set). Returns {"protocols": {name: metrics},
    n_queries, n_db, pooling, …}; labels ground truth reports one protocol, "labels".
    """
    bad = [p for p in protocols if p not in PROTOCOLS]
    if bad or not protocols:
        raise DataError(f"protocols must be among {', '.join(PROTOCOLS)} (got {', '.join(bad) or 'none'})")
    enc = descriptor_encoder(resolve_encoder(encoder), pooling)
    truth = check_ground_truth(gt, images, protocols)
    db_paths = truth["paths"] if truth["kind"] == "labels" else truth["db"]
    vecs, ok, failed = embed_paths(enc, db_paths, batch_size, progress)
    db = np.zeros((len(db_paths), vecs.shape[1]), np.float32)
    db[ok] = vecs
    pca = None
    if whiten or pca_dim:
        from cliplab.models.features.pooling import fit_pca_whitening

        pca = fit_pca_whitening(vecs, pca_dim, whiten=whiten)
        db = np.zeros((len(db_paths), pca.n_components_), np.float32)
        db[ok] = pca_whiten(vecs, pca)
    results = {}
    if truth["kind"] == "labels":
        rel, ign = label_ground_truth(truth["labels"])
        ign = ign | ~ok[None, :]
        keep = ok  # unreadable images do not query
        if not (rel[keep] & ~ign[keep]).any():
            raise EvalError("no two readable images share a label: same-label retrieval has nothing to find")
        results["labels"] = instance_metrics(db[keep], db, rel[keep], ign[keep], ks=ks, ap="standard")
        n_queries = int(keep.sum())
    else:
        boxes = truth["bbx"] if crop_queries else [None] * len(truth["queries"])
        q, q_ok, q_failed = _encode_queries(enc, truth["queries"], boxes)
        failed += q_failed
        if not len(q):
            raise DataError("no query image could be read")
        if pca is not None:
            q = pca_whiten(q, pca)
        gnd = [g for g, good in zip(truth["gnd"], q_ok) if good]
        masks = {p: _protocol_masks(gnd, p, ok) for p in PROTOCOLS}
        for proto in protocols:
            rel, ign_mask = masks[proto]
            if not (rel & ~ign_mask).any():  # positives listed, but none readable
                raise EvalError(_no_positives(proto, [p for p, (r, i) in masks.items() if (r & ~i).any()]))
            results[proto] = instance_metrics(q, db, rel, ign_mask, ks=ks, ap="trapezoid")
        n_queries = int(len(q))
    return {
        "protocols": results,
        "n_queries": n_queries,
        "n_db": int(ok.sum()),
        "pooling": pooling or "none",
        "whiten": bool(whiten),
        "pca_dim": pca_dim,
        "n_failed": len(failed),
        "dataset": "ground truth" if isinstance(gt, dict) else dataset_name(gt),
        "model": enc.describe(),
        "failed": failed,
    }
