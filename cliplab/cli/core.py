"""Core commands: embed, classify, similarity. Parse arguments, call cliplab.api, print."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from cliplab.cli.app import (
    DeviceOpt,
    JsonOpt,
    ModelOpt,
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
from cliplab.cli.output import FormatOpt, output_mode, write_rows
from cliplab.cli.query import LangOpt

TEXTS_HELP = "a comma-separated list, a text file with one text per line, or a .csv (its 'text' or 'caption' column)."


def _report_failures(failures, quiet_json: bool) -> None:
    if failures and not quiet_json:
        for path, reason in failures[:20]:
            err.print(f"  skipped {path}: {reason}", markup=False)
        if len(failures) > 20:
            err.print(f"  … and {len(failures) - 20} more (see the metadata table)")
        from collections import Counter

        from cliplab.index.listing import _reason_kind  # one grouping of reasons, as `index --status` shows

        kinds = Counter(_reason_kind(r) for _, r in failures).most_common()
        err.print("skipped: " + ", ".join(f"{n} × {kind}" for kind, n in kinds), markup=False)


@app.command()
@guarded
def embed(
    inputs: Optional[List[str]] = typer.Argument(None, help="Image files, folders, .txt lists of paths, or URLs."),
    texts: Optional[str] = typer.Option(None, "--texts", help="Embed texts instead: " + TEXTS_HELP),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    model: str = ModelOpt,
    runtime: str = RuntimeOpt,
    precision: str = PrecisionOpt,
    device: str = DeviceOpt,
    batch_size: Optional[int] = typer.Option(
        None, "--batch-size", min=1, help="Images per model call (default: per model)."
    ),
    workers: Optional[int] = typer.Option(
        None, "--workers", min=1, help="Image decoding threads; with --engine ray: model replicas (Ray actors)."
    ),
    engine: str = typer.Option(
        "local",
        "--engine",
        help="local (this process) or ray (a Ray cluster; writes the clip-retrieval layout, see docs/scale.md).",
    ),
    address: Optional[str] = typer.Option(
        None,
        "--address",
        help="Ray cluster: auto (a `ray start` cluster), ray://HOST:10001, or none for a new local one.",
    ),
    out_format: str = typer.Option(
        "cliplab",
        "--layout",
        help="cliplab (one .npy + CSV) or clip-retrieval "
        "(img_emb/ + metadata/ shards, resumable; --engine ray implies it).",
    ),
    shard_size: int = typer.Option(
        10_000, "--shard-size", min=1, help="Images per shard (clip-retrieval layout; each .tar input is one shard)."
    ),
    captions: bool = typer.Option(
        False,
        "--captions",
        help="Also embed captions (tar .txt members / sidecar .txt files) into text_emb/ (clip-retrieval layout).",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace output of the other layout already in --out (refused otherwise)."
    ),
    as_json: bool = JsonOpt,
):
    """Embed images (or texts) and write embeddings + metadata + manifest to --out."""
    from cliplab import api
    from cliplab.data import writers
    from cliplab.pipeline import embed_texts

    if not inputs and texts is None:
        fail("give images (files/folders) or --texts (a file or a comma list)")
    check_out(out_dir)  # an unusable --out fails now, not after embedding everything
    if engine not in ("local", "ray") or out_format not in ("cliplab", "clip-retrieval"):
        fail("--engine is local or ray; --layout is cliplab or clip-retrieval")
    sharded = engine == "ray" or out_format == "clip-retrieval"
    writers.check_out_dir(out_dir, "clip-retrieval" if sharded else "cliplab", overwrite)
    if sharded:  # resumable: docs/scale.md
        from cliplab.cli.scale import embed_shards

        if texts is not None or not inputs:
            fail("--engine ray / --layout clip-retrieval embed images (captions with --captions), not --texts")
        try:
            return embed_shards(
                inputs,
                out_dir,
                model,
                engine,
                address,
                workers,
                batch_size,
                shard_size,
                captions,
                as_json,
                {"runtime": runtime, "precision": precision, "device": device},
            )
        except KeyboardInterrupt:
            from cliplab.data.shards import finished_shards

            n = len(finished_shards(out_dir))
            raise KeyboardInterrupt(
                f"interrupted: {n} shard(s) finished and kept in {out_dir}; run the same command again to finish"
            ) from None
    items = api.read_texts(str(texts)) if texts is not None else None  # a bad file fails before the model loads
    enc = load_model(model, runtime, precision, device)
    summary = {"model": enc.name, "dim": enc.dim, **runtime_info(enc), "out": str(out_dir)}
    if texts is not None:
        vecs = embed_texts(enc, items, progress=not as_json)
        writers.write_text_embeddings(out_dir, items, vecs, enc.describe())
        summary.update(texts=len(items))
        print_json(summary) if as_json else out.print(
            f"embedded {len(items)} texts with model {enc.name} (dim {enc.dim}, {runtime_text(enc)}) → {out_dir}"
        )
    if inputs:
        try:
            res = api.embed(inputs, enc, batch_size=batch_size, workers=workers, progress=not as_json)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(
                f"interrupted: nothing written to {out_dir} (this layout is written when every image is "
                "embedded); run again, or use --layout clip-retrieval for a run that keeps finished shards"
            ) from None
        writers.write_image_embeddings(out_dir, res)
        summary.update(images=res.n_ok, failed=[{"path": p, "error": e} for p, e in res.failures])
        _report_failures(res.failures, as_json)
        if as_json:
            print_json(summary)
        else:
            out.print(
                f"embedded {res.n_ok} images ({len(res.failures)} skipped) with model {enc.name} "
                f"(dim {enc.dim}, {runtime_text(enc)}) → {out_dir}"
            )
        if res.n_ok == 0:
            raise typer.Exit(1)


@app.command()
@guarded
def classify(
    inputs: List[str] = typer.Argument(..., help="Image files, folders, .txt lists, or http(s) URLs."),
    labels: str = typer.Option(
        ...,
        "--labels",
        "-l",
        help="Comma-separated labels, a text file with one per line, "
        "or a .csv file (its 'label' column, else the first column). At least two.",
    ),
    templates: Optional[str] = typer.Option(
        None, "--templates", "-t", help="single (default: 'a photo of a {}.'), clip80, none, or a file."
    ),
    k: int = typer.Option(3, "--top-k", "-k", min=1, help="How many labels to show per image."),
    lang: Optional[str] = LangOpt,
    model: str = ModelOpt,
    runtime: str = RuntimeOpt,
    precision: str = PrecisionOpt,
    device: str = DeviceOpt,
    out_format: Optional[str] = FormatOpt,
    as_json: bool = JsonOpt,
):
    """Zero-shot classify images against any labels; prints top-k labels with probabilities."""
    from cliplab import api
    from cliplab.data.files import read_labels

    mode = output_mode(out_format, as_json)
    label_list = read_labels(labels)  # fewer than two labels would print a meaningless 100 %
    from cliplab.models.language import in_language

    enc = in_language(load_model(model, runtime, precision, device), lang)  # labels in that language
    c = api.classify(inputs, label_list, enc, templates=templates, progress=not as_json)
    rows = c.top(k)
    rule = c.model.get("probability", "softmax")  # SigLIP: independent sigmoid per label
    if as_json:
        print_json(
            {
                "model": enc.name,
                **runtime_info(enc),
                "labels": c.labels,
                "templates": len(c.templates),
                "probability": rule,
                "results": rows,
            }
        )
    else:
        title = f"zero-shot with model {enc.name} ({len(c.templates)} template(s), {rule}, {runtime_text(enc)})"
        ok = [r for r in rows if r["status"] == "ok"]
        if mode == "table":
            body = [[r["path"], ", ".join(f"{p['label']} {p['prob']:.1%}" for p in r["predictions"])] for r in ok]
            out.print(table(title, ["image", "top labels"], body))
        else:  # one line per image; the title goes to stderr, out of the data
            err.print(title, markup=False)
            n = min(k, len(c.labels))
            cols = ["path"] + [f"{name}_{i}" for i in range(1, n + 1) for name in ("label", "prob")]
            preds = [[v for p in r["predictions"] for v in (p["label"], p["prob"])] for r in ok]
            write_rows(mode, cols, [[r["path"], *p] for r, p in zip(ok, preds)])
        _report_failures(c.result.failures, False)
    if c.result.n_ok == 0:
        raise typer.Exit(1)


@app.command()
@guarded
def similarity(
    inputs: List[str] = typer.Argument(..., help="Image files, folders, .txt lists of paths, or URLs."),
    texts: str = typer.Option(..., "--texts", help="Texts: " + TEXTS_HELP),
    out_file: Path = typer.Option(..., "--out", "-o", help="CSV: rows = images, columns = texts."),
    model: str = ModelOpt,
    runtime: str = RuntimeOpt,
    precision: str = PrecisionOpt,
    device: str = DeviceOpt,
    as_json: bool = JsonOpt,
):
    """Image × text cosine-similarity matrix as a labelled CSV."""
    from cliplab import api
    from cliplab.data import writers

    check_out(out_file, folder=False)
    items = api.read_texts(str(texts))
    enc = load_model(model, runtime, precision, device)
    res, _, sim = api.similarity(inputs, items, enc, progress=not as_json)
    ok_paths = [p for p, s in zip(res.paths, res.status) if s == "ok"]
    writers.write_similarity(out_file, sim, ok_paths, items)
    _report_failures(res.failures, as_json)
    summary = {
        "model": enc.name,
        **runtime_info(enc),
        "images": res.n_ok,
        "texts": len(items),
        "out": str(out_file),
        "failed": [{"path": p, "error": e} for p, e in res.failures],
    }
    if as_json:
        print_json(summary)
    else:
        out.print(f"{res.n_ok} images × {len(items)} texts with model {enc.name} ({runtime_text(enc)}) → {out_file}")
    if res.n_ok == 0:
        raise typer.Exit(1)
