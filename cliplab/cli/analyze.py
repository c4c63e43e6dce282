"""CLI commands `analyze` (compare models on one dataset) and `features` (intermediate-layer features)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from cliplab.cli.app import (
    DeviceOpt,
    JsonOpt,
    ModelOpt,
    ModelsOpt,
    PrecisionOpt,
    RuntimeOpt,
    app,
    check_out,
    err,
    fail,
    guarded,
    load_model,
    out,
    print_json,
    runtime_info,
    runtime_text,
    table,
)
from cliplab.cli.vocabulary import pooling_option


@app.command()
@guarded
def analyze(
    dataset: str = typer.Argument(
        ...,
        help="A folder with captions.json (seed layout), a captions CSV/JSONL, "
        "or an ImageFolder (captions are then generated per category).",
    ),
    models: Optional[List[str]] = ModelsOpt,
    runtime: str = RuntimeOpt,
    precision: str = PrecisionOpt,
    device: str = DeviceOpt,
    out_dir: Path = typer.Option(Path("results"), "--out", "-o", help="Output folder."),
    split: Optional[str] = typer.Option(None, "--split", help="Only rows of this split (captions tables)."),
    clusters: Optional[int] = typer.Option(
        None, "--clusters", min=2, help="k for k-means (default: the number of categories)."
    ),
    projections: Optional[List[str]] = typer.Option(
        None, "--projection", help="pca, tsne, umap (repeatable; default: all available)."
    ),
    as_json: bool = JsonOpt,
):
    """Compare models on one dataset: heatmaps, projections, clusters, compare.md + report.html.

    Default models: preclip and lite. Per model, results/<model>/ holds the embeddings, metadata,
    similarity_matrix.csv and the figures."""
    from cliplab.analysis.dataset import load_dataset
    from cliplab.analysis.report import cell, fmt
    from cliplab.analysis.run import DEFAULT_MODELS, PROJECTIONS
    from cliplab.analysis.run import analyze as run_analysis

    check_out(out_dir)  # an unusable --out fails now, not after every model has run
    ds = load_dataset(dataset, split=split)
    specs = list(models or DEFAULT_MODELS)
    encoders = [load_model(m, runtime, precision, device) for m in specs]  # a bad spec fails before any work
    summary = run_analysis(
        ds, encoders, out_dir, clusters=clusters, projections=tuple(projections or PROJECTIONS), progress=not as_json
    )
    summary["runtime"] = {e.name: runtime_info(e) for e in encoders}
    if as_json:
        print_json(summary)
        return
    for n in ds.notes:
        err.print(f"note: {n}", markup=False)
    rows = [
        [
            slug,
            cell(m, "gap", "signed"),
            fmt(m.get("i2t_top1"), "pct"),
            fmt(m.get("t2i_top1"), "pct"),
            fmt(m.get("category_top1"), "pct"),
            fmt(m.get("nmi")),
            fmt(m.get("ari")),
        ]
        for slug, m in summary["models"].items()
    ]
    n_cat = len(ds.categories)
    out.print(
        table(
            f"{len(ds.images)} images, {len(ds.captions)} captions, {n_cat} categor{'y' if n_cat == 1 else 'ies'}",
            ["model", "gap", "i2t top-1", "t2i top-1", "category top-1", "NMI", "ARI"],
            rows,
        )
    )
    for r in summary["reading"]:
        out.print(f"- {r}", markup=False)
    out.print("ran on: " + "; ".join(f"{e.name}: {runtime_text(e)}" for e in encoders), markup=False)
    out.print(f"report: {out_dir / 'report.html'}  ·  {out_dir / 'compare.md'}")


@app.command()
@guarded
def features(
    inputs: List[str] = typer.Argument(..., help="Image files, folders or .txt lists of paths."),
    model: str = ModelOpt,
    layer: str = typer.Option(
        "head",
        "--layer",
        help="CNN: block index (negative from the end), 'stem' or 'head' (final conv map). "
        "CLIP ViT: transformer block index, 'stem' (patch embeddings) or 'head'.",
    ),
    pooling: str = typer.Option("gem", "--pooling", help="gap (global average; avg too), mac, gem or rmac."),
    pca: Optional[int] = typer.Option(
        None, "--pca", min=1, help="Reduce to this many PCA components (fitted on these images)."
    ),
    whiten: bool = typer.Option(False, "--whiten", help="PCA-whiten (with --pca)."),
    gem_p: float = typer.Option(3.0, "--gem-p", min=0.01, help="GeM exponent (> 0)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Images per model call."),
    as_json: bool = JsonOpt,
):
    """Export pooled intermediate-layer image features: features.npy + metadata + manifest."""
    from cliplab.analysis.features import extract_features, write_features
    from cliplab.data.images import list_images
    from cliplab.models.features.layer_features import LayerFeatures

    if whiten and pca is None:
        fail("--whiten needs --pca N")
    pooling = pooling_option(pooling)
    check_out(out_dir)
    paths = list_images(inputs)
    if not paths:
        fail(f"no images found in {', '.join(inputs)}")
    enc = load_model(model, "torch")  # intermediate layers live inside the torch towers
    fx = LayerFeatures(enc, layer, pooling, pca=pca, whiten=whiten, gem_p=gem_p)
    vecs, res = extract_features(fx, paths, batch_size=batch_size, progress=not as_json)
    manifest = write_features(out_dir, res)
    summary = {
        "model": fx.base.name,
        **runtime_info(enc),
        "layer": fx.layer,
        "pooling": fx.pooling,
        "dim": int(vecs.shape[1]),
        "images": res.n_ok,
        "out": str(out_dir),
        "failed": [{"path": p, "error": e} for p, e in res.failures],
        "files": manifest["files"],
    }
    if as_json:
        print_json(summary)
    else:
        for p, e in res.failures[:20]:
            err.print(f"  skipped {p}: {e}", markup=False)
        out.print(
            f"{res.n_ok} images ({len(res.failures)} skipped) → {vecs.shape[1]}-d {fx.pooling} features of "
            f"{fx.base.name} layer {fx.layer} ({runtime_text(enc)}) → {out_dir}"
        )
    if res.n_ok == 0:
        raise typer.Exit(1)
