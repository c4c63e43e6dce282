"""Collection commands: index, search, duplicates. Parse arguments, call cliplab.index, print.

Indexes live in $CLIPLAB_INDEX_HOME (default ~/.local/share/cliplab/indexes), one per folder;
`--index DIR` puts one anywhere. Inside an indexed folder tree, commands use that tree's index,
restricted to the current sub-folder (like rclip).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cliplab.cli.app import (
    MODEL_HELP,
    JsonOpt,
    app,
    err,
    fail,
    guarded,
    load_model,
    out,
    print_json,
    table,
)

IndexOpt = typer.Option(None, "--index", help="Index folder to use instead of the default one for the folder "
                                               "($CLIPLAB_INDEX_HOME/<name>-<hash>).")
ModelOpt = typer.Option(None, "--model", "-m", help=MODEL_HELP + " Default: the index's model (lite for a new index).")
ReindexOpt = typer.Option(False, "--reindex", help="Drop the index and rebuild it (e.g. with another --model).")
NoUpdateOpt = typer.Option(False, "--no-update", help="Search what is indexed; don't look for new/changed files first.")
GlobOpt = typer.Option(None, "--glob", help="Only paths (relative to the folder) matching this glob; * also matches /.")
UnderOpt = typer.Option(None, "--under", help="Only images below this sub-folder.")


def _open(folder: Path, index: Optional[Path], model: Optional[str], reindex: bool, batch_size: Optional[int] = None):
    from cliplab.index import Collection

    kw = dict(model=model, loader=load_model, reindex=reindex, batch_size=batch_size)
    if index is not None:
        return Collection(folder, index_dir=index, **kw)
    return Collection.find(folder, **kw)


def _update(col, progress: bool, quiet: bool, must: bool = True):
    """Sync the folder into the index; prints one summary line on stderr."""
    from cliplab.index import IndexBusyError

    try:
        s = col.update(progress=progress)
    except IndexBusyError as e:
        if must:
            raise
        err.print(f"note: {e}", markup=False)
        return None
    if not quiet and (s.new or s.changed or s.deleted):
        err.print(f"indexed: {s.embedded} embedded, {s.reused} reused (same content), {s.deleted} dropped, "
                  f"{s.failed} failed, {s.unchanged} unchanged ({s.seconds:.1f} s)", markup=False)
    for path, reason in s.failures[:10] if not quiet else []:
        err.print(f"  failed {path}: {reason}", markup=False)
    return s


def _print_status(st: dict) -> None:
    scope = f" (sub-folder {st['scope']})" if st["scope"] else ""
    rows = [["folder", st["folder"] + scope], ["index", st["index_dir"]],
            ["model", f"{st['model']} ({st['dim']}-d)"], ["indexed", st["indexed"]], ["failed", st["failed"]],
            ["pending", ", ".join(f"{v} {k}" for k, v in st["pending"].items())],
            ["size on disk", f"{st['size_bytes'] / 1e6:.2f} MB ({st['bytes_per_image'] or 0} B/image)"],
            ["search", st["search"]], ["updated", st["updated_at"] or "never"]]
    out.print(table("index status", ["", "value"], rows))
    for reason, n in st["failure_reasons"].items():
        out.print(f"  {n} × {reason}", markup=False)
    for f in st["failures"][:20]:
        out.print(f"    {f['path']}: {f['reason']}", markup=False)


@app.command("index", help=(
    "Index a folder: the first run embeds every image, later runs only new/changed ones (deleted are dropped).\n\n"
    "The index lives in $CLIPLAB_INDEX_HOME (default ~/.local/share/cliplab/indexes), one per folder, or in "
    "--index DIR. Inside an indexed tree, the tree's index is used (restricted to the sub-folder).\n\n"
    "Killing it is safe: a re-run continues after the last committed batch."))
@guarded
def index_cmd(
    folder: Path = typer.Argument(Path("."), help="Image folder (default: the current one)."),
    index: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
    reindex: bool = ReindexOpt,
    status: bool = typer.Option(False, "--status", help="Show counts, failures, model and size; index nothing."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Images per model call and commit."),
    wait: bool = typer.Option(False, "--wait", help="If another process is indexing, wait for it instead of failing."),
    as_json: bool = JsonOpt,
):
    """Index a folder: the first run embeds every image, later runs only new/changed ones."""
    col = _open(folder, index, model, reindex, batch_size)
    with col:
        if status:
            st = col.status(check=True)
            if as_json:
                print_json(st)
                return
            _print_status(st)
            return
        s = col.update(progress=not as_json, wait=wait)
        if as_json:
            print_json({**col.describe(), **s.as_dict(), "failures": [{"path": p, "reason": r} for p, r in s.failures]})
            return
        c = col.catalog.counts(col.scope)
        out.print(f"{col.folder}: {c['indexed']} images indexed, {c['failed']} failed "
                  f"(this run: {s.embedded} embedded, {s.reused} reused, {s.deleted} dropped, {s.failed} failed, "
                  f"{s.unchanged} unchanged; {s.seconds:.1f} s) · model {col.model} · index {col.index_dir}",
                  markup=False)
        for path, reason in s.failures[:20]:
            err.print(f"  failed {path}: {reason}", markup=False)


@app.command("search", help=(
    "Search a folder's images by text or by image (indexing new/changed files first).\n\n"
    "Searches the current folder by default (--dir to choose); a folder without an index is indexed first, "
    "with a progress bar. Prints rank, score (cosine similarity) and path; --json for scripts."))
@guarded
def search_cmd(
    query: Optional[str] = typer.Argument(None, help="What to look for, in words."),
    image: Optional[Path] = typer.Option(None, "--image", "-i", help="Search by this image instead of text."),
    folder: Path = typer.Option(Path("."), "--dir", "-d", help="Folder to search (default: the current one)."),
    top_k: int = typer.Option(10, "--top-k", "-n", "-k", help="How many results."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Only results with at least this score."),
    under: Optional[str] = UnderOpt,
    glob: Optional[str] = GlobOpt,
    index: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
    reindex: bool = ReindexOpt,
    no_update: bool = NoUpdateOpt,
    as_json: bool = JsonOpt,
):
    """Search a folder's images by text or by image (indexing new/changed files first)."""
    if (query is None) == (image is None):
        fail("give a text QUERY or --image PATH (one of them)")
    col = _open(folder, index, model, reindex)
    with col:
        if not no_update:
            _update(col, progress=True, quiet=as_json, must=False)
        if image is not None:
            hits = col.search_image(image, k=top_k, threshold=threshold, under=under, glob=glob)
        else:
            hits = col.search(query, k=top_k, threshold=threshold, under=under, glob=glob)
        if as_json:
            print_json({"query": query, "image": str(image) if image else None, **col.describe(),
                        "results": [{"rank": h.rank, "score": h.score, "path": h.path} for h in hits]})
            return
        if not hits:
            err.print("no results" + (" (nothing indexed)" if not col.catalog.count_vectors() else ""))
            return
        for h in hits:
            out.print(f"{h.rank:>3}  {h.score:.4f}  {h.path}", markup=False)


@app.command("duplicates")
@guarded
def duplicates_cmd(
    folder: Path = typer.Argument(Path("."), help="Image folder (default: the current one)."),
    threshold: float = typer.Option(0.95, "--threshold", "-t", help="Cosine similarity that makes two images "
                                    "duplicates (model-dependent: 0.95+ for near-copies with CLIP)."),
    glob: Optional[str] = GlobOpt,
    index: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
    no_update: bool = NoUpdateOpt,
    as_json: bool = JsonOpt,
):
    """Groups of near-duplicate images (indexing new/changed files first)."""
    col = _open(folder, index, model, False)
    with col:
        if not no_update:
            _update(col, progress=True, quiet=as_json, must=False)
        groups = col.duplicates(threshold, glob=glob)
        if as_json:
            print_json({**col.describe(), "threshold": threshold, "groups": [g.as_dict() for g in groups]})
            return
        if not groups:
            out.print(f"no duplicates at threshold {threshold}")
            return
        for i, g in enumerate(groups, 1):
            out.print(f"group {i}: {len(g.paths)} images, similarity {g.min_score:.3f}–{g.max_score:.3f}",
                      markup=False)
            for p in g.paths:
                out.print(f"  {p}", markup=False)
