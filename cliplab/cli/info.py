"""`cliplab models` (what is available offline; `models pull` gets one, `models bench` times one),
`cliplab formats` (which image files it reads) and `cliplab indexes` (list / prune). Listing loads no
model weights: it must stay instant."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cliplab.cli.app import JsonOpt, app, err, guarded, out, print_json, table
from cliplab.cli.vocabulary import Vocabulary

models_app = typer.Typer(
    cls=Vocabulary,
    help="Models you can pass to --model: list them (installed, size, speed), pull one from the hub, bench one.",
    invoke_without_command=True,
)
app.add_typer(models_app, name="models")


def _size(n) -> str:
    return "—" if not n else f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def _count(n) -> str:
    return "?" if not n else f"{n / 1e6:.1f} M"


@models_app.callback()
@guarded
def models_cmd(ctx: typer.Context, as_json: bool = JsonOpt):
    """Models you can pass to --model: installed or not, dim, parameters, size on disk, img/s (from
    `cliplab models bench`), source. Nothing is loaded: listing stays instant."""
    if ctx.invoked_subcommand is not None:
        return
    from cliplab.zoo.installed import models_table

    rows = models_table()
    if as_json:
        print_json({"models": rows})
        return
    cols = ["spec", "installed", "dim", "params", "size", "fp32 img/s", "int8 img/s", "source", "note"]
    body = [
        [
            r["spec"],
            "yes" if r["installed"] else "no",
            r["dim"] or "?",
            _count(r["params"]) if r["installed"] else "",
            _size(r["size_bytes"]) if r["installed"] else "",
            r["fp32_img_s"] or "",
            r["int8_img_s"] or ("kept fp32" if r["fp32_img_s"] else ""),
            r["source"],
            r["note"],
        ]
        for r in rows
    ]
    out.print(table("models", cols, body))
    if any(r["installed"] and r["fp32_img_s"] is None for r in rows):
        err.print("img/s: run `cliplab models bench SPEC` to measure a model on this machine", markup=False)


@models_app.command("pull")
@guarded
def pull_cmd(
    spec: str = typer.Argument(..., help="A Hugging Face hub id (ORG/NAME, or hf-hub:ORG/NAME)."),
    export: bool = typer.Option(True, "--export/--no-export", help="Export the ONNX towers once after the download."),
    as_json: bool = JsonOpt,
):
    """Download a hub model into the Hugging Face cache (resumable, every file checked against the
    hub's sha256/sha1), then export its ONNX towers once. Honours HF_ENDPOINT and HF_TOKEN."""
    from cliplab.zoo.pull import pull

    res = pull(spec, export=export, notify=lambda m: err.print(m, markup=False))
    if as_json:
        print_json(res.as_dict())
        return
    got = sum(1 for f in res.files if f["downloaded"])
    out.print(
        f"pulled {res.repo} @ {res.commit[:12]}: {len(res.files)} files checked, {got} downloaded "
        f"({_size(res.downloaded_bytes) if got else 'nothing new'}) into {res.folder}",
        markup=False,
    )
    if res.depends:
        out.print(f"with its text tower's config and tokenizer: {', '.join(res.depends)}", markup=False)
    if res.export:
        out.print(f"ONNX towers: {res.export}", markup=False)
    out.print(f"use it: cliplab search QUERY --model {res.repo}", markup=False)


@models_app.command("bench")
@guarded
def bench_cmd(
    spec: str = typer.Argument(..., help="The model to time (any --model spec)."),
    photos: int = typer.Option(32, "--photos", min=2, max=256, help="How many shared photos to time."),
    as_json: bool = JsonOpt,
):
    """Measure fp32 and int8 img/s (decode + preprocess + image tower) on the shared photos on this
    machine; `cliplab models` shows the figures afterwards."""
    from cliplab.cli.app import check_model_spec
    from cliplab.zoo.installed import bench, bench_images

    rec = bench(check_model_spec(spec), bench_images(photos), notify=lambda m: err.print(m, markup=False))
    if as_json:
        print_json(rec)
        return
    int8 = f", int8 {rec['int8_img_s']} img/s" if "int8_img_s" in rec else ""
    out.print(f"{rec['spec']}: fp32 {rec['fp32_img_s']} img/s{int8} on {rec['images']} photos", markup=False)


@app.command("formats")
@guarded
def formats_cmd(as_json: bool = JsonOpt):
    """Image formats this installation reads (and whether folder scans pick them up), and known ones it does not."""
    from cliplab.data.formats import formats

    f = formats()
    if as_json:
        print_json(f)
        return
    body = [
        [r["format"], " ".join(r["extensions"]), "yes" if r["listed_in_folders"] else "named only"]
        for r in f["readable"]
    ]
    out.print(table("formats read", ["format", "extensions", "in folder scans"], body))
    body = [[r["format"], " ".join(r["extensions"]), r["reason"]] for r in f["not_readable"]]
    out.print(table("not read (listed in folders, reported as skipped)", ["format", "extensions", "why"], body))


indexes_app = typer.Typer(
    cls=Vocabulary,
    help="Collection indexes (one per folder and model): list them, remove one, or prune those whose folder is gone.",
    invoke_without_command=True,
)
app.add_typer(indexes_app, name="indexes")


def _rows(infos) -> list[list]:
    return [
        [
            i.folder or "?",
            i.model or "?",
            i.images,
            i.failed,
            f"{i.size_bytes / 1e6:.1f} MB",
            i.updated_at or "never",
            i.id + ("" if i.folder_exists else "  (folder gone)"),  # the index folder's name, under the home
        ]
        for i in infos
    ]


@indexes_app.callback()
@guarded
def indexes_cmd(
    ctx: typer.Context,
    home: Optional[Path] = typer.Option(
        None, "--home", help="Index home (default $CLIPLAB_INDEX_HOME or ~/.local/share/cliplab/indexes)."
    ),
    as_json: bool = JsonOpt,
):
    """List indexes: folder, model, images, size, last update."""
    ctx.obj = {"home": home}
    if ctx.invoked_subcommand is not None:
        return
    from cliplab.index.listing import list_indexes
    from cliplab.index.locate import index_home

    infos = list_indexes(home)
    if as_json:
        print_json({"home": str(home or index_home()), "indexes": [i.as_dict() for i in infos]})
        return
    if not infos:
        err.print(f"no indexes in {home or index_home()}", markup=False)
        return
    out.print(
        table(
            f"indexes in {home or index_home()}",
            ["folder", "model", "images", "failed", "size", "updated", "id"],
            _rows(infos),
        )
    )


@indexes_app.command("prune")
@guarded
def prune_cmd(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be removed."),
    as_json: bool = JsonOpt,
):
    """Remove the indexes whose folder no longer exists (an unmounted drive counts as gone: use --dry-run)."""
    from cliplab.index.listing import prune_indexes

    gone = prune_indexes((ctx.obj or {}).get("home"), dry_run=dry_run)
    if as_json:
        print_json({"dry_run": dry_run, "removed": [i.as_dict() for i in gone]})
        return
    verb = "would remove" if dry_run else "removed"
    for i in gone:
        out.print(f"{verb} {i.index_dir} (folder {i.folder} is gone; {i.images} images)", markup=False)
    out.print(f"{verb} {len(gone)} index{'es' if len(gone) != 1 else ''}", markup=False)


@indexes_app.command("rm")
@guarded
def rm_cmd(
    ctx: typer.Context,
    target: str = typer.Argument(
        ..., help="An image folder (with --model when it has several indexes), an index folder, or an index id."
    ),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Which model's index of the folder."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be removed."),
    as_json: bool = JsonOpt,
):
    """Remove one index (its catalog, caches and thumbnails; nothing else), unless a process is updating it."""
    from cliplab.index.listing import find_one, remove_index

    info = find_one(target, model, (ctx.obj or {}).get("home"))
    if not dry_run:
        remove_index(info)
    if as_json:
        print_json({"dry_run": dry_run, "removed": info.as_dict()})
        return
    verb = "would remove" if dry_run else "removed"
    out.print(
        f"{verb} index {info.id} (folder {info.folder}, model {info.model}, {info.images} images, "
        f"{info.size_bytes / 1e6:.1f} MB)",
        markup=False,
    )
