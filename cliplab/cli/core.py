"""Core commands: embed, classify, similarity. Parse arguments, call cliplab.api, print."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from cliplab.cli.app import JsonOpt, ModelOpt, app, err, fail, guarded, load_model, out, print_json, table


def _report_failures(failures, quiet_json: bool) -> None:
    if failures and not quiet_json:
        for path, reason in failures[:20]:
            err.print(f"  skipped {path}: {reason}", markup=False)
        if len(failures) > 20:
            err.print(f"  … and {len(failures) - 20} more (see the metadata table)")


@app.command()
@guarded
def embed(
    inputs: Optional[List[str]] = typer.Argument(None, help="Image files, folders, .txt lists of paths, or URLs."),
    texts: Optional[Path] = typer.Option(None, "--texts", help="Embed texts instead: a file with one text per line."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    model: str = ModelOpt,
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Images per model call (default: per model)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Image decoding threads."),
    as_json: bool = JsonOpt,
):
    """Embed images (or texts) and write embeddings + metadata + manifest to --out."""
    from cliplab import api, export
    from cliplab.pipeline import embed_texts

    if not inputs and texts is None:
        fail("give images (files/folders) or --texts FILE")
    enc = load_model(model)
    summary = {"model": enc.name, "dim": enc.dim, "out": str(out_dir)}
    if texts is not None:
        items = api.read_texts(str(texts))
        vecs = embed_texts(enc, items, progress=not as_json)
        export.write_text_embeddings(out_dir, items, vecs, enc.describe())
        summary.update(texts=len(items))
        print_json(summary) if as_json else out.print(
            f"embedded {len(items)} texts with model {enc.name} (dim {enc.dim}) → {out_dir}")
    if inputs:
        res = api.embed(inputs, enc, batch_size=batch_size, workers=workers, progress=not as_json)
        export.write_image_embeddings(out_dir, res)
        summary.update(images=res.n_ok, failed=[{"path": p, "error": e} for p, e in res.failures])
        _report_failures(res.failures, as_json)
        if as_json:
            print_json(summary)
        else:
            out.print(f"embedded {res.n_ok} images ({len(res.failures)} skipped) with model {enc.name} "
                      f"(dim {enc.dim}) → {out_dir}")
        if res.n_ok == 0:
            raise typer.Exit(1)


@app.command()
@guarded
def classify(
    inputs: List[str] = typer.Argument(..., help="Image files, folders, .txt lists, or http(s) URLs."),
    labels: str = typer.Option(..., "--labels", "-l", help="Comma-separated labels, or a file with one per line."),
    templates: Optional[str] = typer.Option(None, "--templates", "-t",
                                            help="single (default: 'a photo of a {}.'), clip80, none, or a file."),
    k: int = typer.Option(3, "--top-k", "-k", help="How many labels to show per image."),
    model: str = ModelOpt,
    as_json: bool = JsonOpt,
):
    """Zero-shot classify images against any labels; prints top-k labels with probabilities."""
    from cliplab import api

    enc = load_model(model)
    c = api.classify(inputs, labels, enc, templates=templates, progress=not as_json)
    rows = c.top(k)
    if as_json:
        print_json({"model": enc.name, "labels": c.labels, "templates": len(c.templates), "results": rows})
    else:
        body = [[r["path"], ", ".join(f"{p['label']} {p['prob']:.1%}" for p in r["predictions"])]
                for r in rows if r["status"] == "ok"]
        out.print(table(f"zero-shot with model {enc.name} ({len(c.templates)} template(s))", ["image", "top labels"], body))
        _report_failures(c.result.failures, False)
    if c.result.n_ok == 0:
        raise typer.Exit(1)


@app.command()
@guarded
def similarity(
    images: List[str] = typer.Option(..., "--images", help="Image folder/files (repeatable)."),
    texts: Path = typer.Option(..., "--texts", help="A file with one text per line."),
    out_file: Path = typer.Option(..., "--out", "-o", help="CSV: rows = images, columns = texts."),
    model: str = ModelOpt,
    as_json: bool = JsonOpt,
):
    """Image × text cosine-similarity matrix as a labelled CSV."""
    from cliplab import api, export

    enc = load_model(model)
    items = api.read_texts(str(texts))
    res, _, sim = api.similarity(images, items, enc, progress=not as_json)
    ok_paths = [p for p, s in zip(res.paths, res.status) if s == "ok"]
    export.write_similarity(out_file, sim, ok_paths, items)
    _report_failures(res.failures, as_json)
    summary = {"model": enc.name, "images": res.n_ok, "texts": len(items), "out": str(out_file),
               "failed": [{"path": p, "error": e} for p, e in res.failures]}
    if as_json:
        print_json(summary)
    else:
        out.print(f"{res.n_ok} images × {len(items)} texts with model {enc.name} → {out_file}")
    if res.n_ok == 0:
        raise typer.Exit(1)
