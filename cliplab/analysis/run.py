"""`analyze`: one dataset × several models → per-model files and plots, then the comparison report.

Per model (results/<slug>/): image/text embeddings + metadata + manifests (cliplab.export),
similarity_matrix.csv, per_category.csv, clusters.csv, metrics.json and the PNG figures.
All images go through one `embed_images` call and all captions through one `encode_texts` call,
because fitted baselines (preclip) fit their PCA on exactly the data they encode.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from cliplab.analysis import clusters as cl
from cliplab.analysis import plots, scores
from cliplab.analysis.dataset import AnalysisDataset, load_dataset
from cliplab.data import writers as export
from cliplab.errors import CliplabError, DataError
from cliplab.jsonable import jsonable
from cliplab.models.core.base import Encoder
from cliplab.pipeline import embed_images, embed_texts

DEFAULT_MODELS = ("preclip", "lite")
PROJECTIONS = ("pca", "tsne", "umap")


def model_slug(name: str, taken: Sequence[str] = ()) -> str:
    """A folder name for a model: 'lite', 'tiny-clip' (a local folder), 'openai-clip-vit-base-patch32'."""
    p = Path(str(name)).expanduser()
    base = p.name if p.is_dir() or str(name).startswith((".", "/", "~")) else str(name)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.") or "model"
    out, i = slug, 2
    while out in taken:
        out, i = f"{slug}-{i}", i + 1
    return out


def _resolve(model: str | Encoder) -> Encoder:
    from cliplab.eval.common import resolve_encoder  # fresh, unfitted copy of fitted baselines

    return resolve_encoder(model)


def _write_tables(
    ds: AnalysisDataset,
    out: Path,
    res,
    ok_rows: np.ndarray,
    texts: list[str],
    text_vecs: np.ndarray,
    sim: np.ndarray,
    model_info: dict,
) -> None:
    export.write_image_embeddings(out, res)
    meta = export.image_metadata(res)  # the writer's table plus the analysis columns
    meta.insert(2, "image", [ds.display_path(p) for p in ds.images["path"]])
    meta.insert(3, "category", ds.images["category"].to_numpy())
    export.save_csv(out / "image_metadata.csv", meta)

    export.write_text_embeddings(out, texts, text_vecs, model_info)
    row_of = np.full(len(ds.images), -1)
    row_of[ok_rows] = np.arange(len(ok_rows))
    cap_img = ds.captions["image"].to_numpy()
    export.save_csv(
        out / "text_metadata.csv",
        pd.DataFrame(
            {
                "index": range(len(texts)),
                "text": texts,
                "category": ds.captions["category"].to_numpy(),
                "image": [ds.display_path(ds.images["path"].iloc[i]) if i >= 0 else "" for i in cap_img],
                "image_row": [int(row_of[i]) if i >= 0 else -1 for i in cap_img],
            }
        ),
    )
    row_labels = [ds.display_path(p) for p in ds.images["path"].to_numpy()[ok_rows]]
    export.write_similarity(out / "similarity_matrix.csv", sim, row_labels, texts)


def analyze_model(
    ds: AnalysisDataset,
    encoder: Encoder,
    out: str | Path,
    slug: str | None = None,
    clusters: int | None = None,
    projections: Sequence[str] = PROJECTIONS,
    progress: bool = False,
    seed: int = 0,
) -> dict:
    """Embed, score and plot one model on `ds`; writes into `out` and returns its numbers."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    slug = slug or model_slug(encoder.name)
    times: dict[str, float] = {}
    t0 = t = time.perf_counter()

    res = embed_images(encoder, ds.images["path"].tolist(), progress=progress)
    ok_rows = np.array([i for i, s in enumerate(res.status) if s == "ok"], dtype=np.int64)
    if not len(ok_rows):
        first = res.failures[0] if res.failures else ("?", "?")
        raise DataError(
            f"model {encoder.name}: none of the {len(res.paths)} images could be read (first: {first[0]}: {first[1]})"
        )
    times["embed_images_s"] = time.perf_counter() - t
    t = time.perf_counter()
    texts = ds.captions["caption"].tolist()
    text_vecs = embed_texts(encoder, texts, progress=progress)  # one call: preclip fits on all of them
    times["embed_texts_s"] = time.perf_counter() - t

    t = time.perf_counter()
    img_vecs = res.vectors
    sim = (img_vecs @ text_vecs.T).astype(np.float32)
    rel = ds.relevance(ok_rows)
    img_cat = ds.images["category"].to_numpy()[ok_rows].astype(str)
    cap_cat = ds.captions["category"].to_numpy().astype(str)
    info = encoder.describe()
    _write_tables(ds, out, res, ok_rows, texts, text_vecs, sim, info)

    m: dict = {
        "model": encoder.name,
        "slug": slug,
        "dim": int(encoder.dim),
        "model_info": info,
        "images": int(len(ok_rows)),
        "failed_images": len(res.failures),
        "captions": len(texts),
    }
    m.update(scores.similarity_stats(sim, rel, img_cat, cap_cat))
    m.update(scores.retrieval_scores(sim, rel))
    several = len(set(img_cat.tolist())) > 1  # with one category, "right category" is always true
    m["category_top1"] = float(scores.category_top1(sim, img_cat, cap_cat).mean()) if several else None
    m["modality_gap"] = scores.modality_gap(img_vecs, text_vecs)
    per_cat = scores.per_category(sim, rel, img_cat, cap_cat)
    if not several:
        per_cat["category_top1"] = np.nan
    export.save_csv(out / "per_category.csv", per_cat)
    m["per_category"] = per_cat.to_dict(orient="records")
    clus = cl.cluster_scores(img_vecs, img_cat, k=clusters, seed=seed)
    m.update({k: clus[k] for k in ("k", "purity", "nmi", "ari", "silhouette")})
    times["scores_s"] = time.perf_counter() - t

    t = time.perf_counter()
    figures: dict[str, str] = {}
    title = f"{slug}: "
    figures["heatmap"] = plots.similarity_heatmap(
        sim,
        img_cat,
        cap_cat,
        out / "similarity_heatmap.png",
        title + "image × caption cosine similarity, grouped by category",
    ).name
    for method in projections:
        if method == "umap" and not plots.umap_available():
            continue
        p = plots.joint_projection(
            img_vecs,
            text_vecs,
            img_cat,
            cap_cat,
            method,
            out / f"projection_{method}.png",
            title + f"images and captions, {method.upper()}",
            seed=seed,
        )
        if p is not None:
            figures[f"projection_{method}"] = p.name
    if clus["labels"] is not None:
        paths = ds.images["path"].to_numpy()[ok_rows]
        export.save_csv(
            out / "clusters.csv",
            pd.DataFrame(
                {"image": [ds.display_path(p) for p in paths], "category": img_cat, "cluster": clus["labels"]}
            ),
        )
        figures["contact_sheet"] = cl.contact_sheet(
            paths, clus["labels"], img_cat, out / "cluster_contact_sheet.png", vectors=img_vecs
        ).name
    times["plots_s"] = time.perf_counter() - t
    times["total_s"] = time.perf_counter() - t0
    m["figures"] = figures
    m["timings"] = {k: round(v, 3) for k, v in times.items()}
    m["failures"] = [{"path": p, "error": e} for p, e in res.failures]
    m = clean_numbers(m)
    (out / "metrics.json").write_text(json.dumps(m, indent=2, default=jsonable))
    return m


def clean_numbers(obj):
    """NaN / inf → None, numpy scalars → Python: the summary must be valid JSON."""
    if isinstance(obj, dict):
        return {k: clean_numbers(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_numbers(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def analyze(
    dataset,
    models: Sequence[str | Encoder] | None = None,
    out: str | Path = "results",
    split: str | None = None,
    clusters: int | None = None,
    projections: Sequence[str] = PROJECTIONS,
    progress: bool = False,
    seed: int = 0,
) -> dict:
    """Analyse `dataset` (a path in any supported layout, or an AnalysisDataset) with each model.

    Returns {"dataset": ..., "models": {slug: numbers}, "reading": [sentences], "files": {...}}
    and writes results/<slug>/…, compare.md, report.html and summary.json under `out`.
    """
    from cliplab.analysis.report import write_report

    ds = dataset if isinstance(dataset, AnalysisDataset) else load_dataset(dataset, split=split)
    specs = list(models) if models else list(DEFAULT_MODELS)
    bad = [p for p in projections if p not in PROJECTIONS]
    if bad:
        raise CliplabError(f"unknown projection {bad[0]!r}: use {', '.join(PROJECTIONS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for spec in specs:
        enc = _resolve(spec)
        slug = model_slug(enc.name, list(results))
        results[slug] = analyze_model(
            ds, enc, out / slug, slug=slug, clusters=clusters, projections=projections, progress=progress, seed=seed
        )
    summary = {"dataset": ds.summary(), "models": results}
    summary["reading"], summary["files"] = write_report(ds, results, out)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=jsonable))
    return summary
