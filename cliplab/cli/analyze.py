"""CLI commands `analyze` (compare models on one dataset) and `features` (intermediate-layer features)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from cliplab.cli.app import JsonOpt, ModelOpt, ModelsOpt, app, err, fail, guarded, load_model, out, print_json, table


@app.command()
@guarded
def analyze(
    dataset: str = typer.Argument(..., help="A folder with captions.json (seed layout), a captions CSV/JSONL, "
                                            "or an ImageFolder (captions are then generated per category)."),
    models: Optional[List[str]] = ModelsOpt,
    out_dir: Path = typer.Option(Path("results"), "--out", "-o", help="Output folder."),
    split: Optional[str] = typer.Option(None, "--split", help="Only rows of this split (captions tables)."),
    clusters: Optional[int] = typer.Option(None, "--clusters", "-k",
                                           help="k for k-means (default: the number of categories)."),
    projections: Optional[List[str]] = typer.Option(None, "--projection",
                                                    help="pca, tsne, umap (repeatable; default: all available)."),
    as_json: bool = JsonOpt,
):
    """Compare models on one dataset: heatmaps, projections, clusters, compare.md + report.html.

    Default models: preclip and lite. Per model, results/<model>/ holds the embeddings, metadata,
    similarity_matrix.csv and the figures."""
    from cliplab.analysis.dataset import load_dataset
    from cliplab.analysis.report import cell, fmt
    from cliplab.analysis.run import DEFAULT_MODELS, PROJECTIONS
    from cliplab.analysis.run import analyze as run_analysis

    ds = load_dataset(dataset, split=split)
    specs = list(models or DEFAULT_MODELS)
    encoders = [load_model(m) for m in specs]  # load all first: a bad spec fails before any work
    summary = run_analysis(ds, encoders, out_dir, clusters=clusters,
                           projections=tuple(projections or PROJECTIONS), progress=not as_json)
    if as_json:
        print_json(summary)
        return
    for n in ds.notes:
        err.print(f"note: {n}", markup=False)
    rows = [[slug, cell(m, "gap", "signed"), fmt(m.get("i2t_top1"), "pct"), fmt(m.get("t2i_top1"), "pct"),
             fmt(m.get("category_top1"), "pct"), fmt(m.get("nmi")), fmt(m.get("ari"))]
            for slug, m in summary["models"].items()]
    n_cat = len(ds.categories)
    out.print(table(f"{len(ds.images)} images, {len(ds.captions)} captions, {n_cat} categor{'y' if n_cat == 1 else 'ies'}",
                    ["model", "gap", "i2t top-1", "t2i top-1", "category top-1", "NMI", "ARI"], rows))
    for r in summary["reading"]:
        out.print(f"- {r}", markup=False)
    out.print(f"report: {out_dir / 'report.html'}  ·  {out_dir / 'compare.md'}")


@app.command()
@guarded
def features(
    inputs: List[str] = typer.Argument(..., help="Image files, folders or .txt lists of paths."),
    model: str = ModelOpt,
    layer: str = typer.Option("head", "--layer", "-l",
                              help="CNN: block index (negative from the end), 'stem' or 'head' (final conv map). "
                                   "CLIP ViT: transformer block index, 'stem' (patch embeddings) or 'head'."),
    pooling: str = typer.Option("gem", "--pooling", "-p", help="avg (global), mac, rmac or gem."),
    pca: Optional[int] = typer.Option(None, "--pca", help="Reduce to this many PCA components (fitted on these images)."),
    whiten: bool = typer.Option(False, "--whiten", help="PCA-whiten (with --pca)."),
    gem_p: float = typer.Option(3.0, "--gem-p", help="GeM exponent."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Images per model call."),
    as_json: bool = JsonOpt,
):
    """Export pooled intermediate-layer image features: features.npy + metadata + manifest."""
    from cliplab.analysis.features import FeatureExtractor, extract_features, write_features
    from cliplab.data.images import list_images

    if whiten and pca is None:
        fail("--whiten needs --pca N")
    paths = list_images(inputs)
    if not paths:
        fail(f"no images found in {', '.join(inputs)}")
    fx = FeatureExtractor(load_model(model), layer, pooling, pca=pca, whiten=whiten, gem_p=gem_p)
    vecs, res = extract_features(fx, paths, batch_size=batch_size, progress=not as_json)
    manifest = write_features(out_dir, res)
    summary = {"model": fx.base.name, "layer": fx.layer, "pooling": fx.pooling, "dim": int(vecs.shape[1]),
               "images": res.n_ok, "out": str(out_dir), "failed": [{"path": p, "error": e} for p, e in res.failures],
               "files": manifest["files"]}
    if as_json:
        print_json(summary)
    else:
        for p, e in res.failures[:20]:
            err.print(f"  skipped {p}: {e}", markup=False)
        out.print(f"{res.n_ok} images ({len(res.failures)} skipped) → {vecs.shape[1]}-d {fx.pooling} features of "
                  f"{fx.base.name} layer {fx.layer} → {out_dir}")
    if res.n_ok == 0:
        raise typer.Exit(1)
