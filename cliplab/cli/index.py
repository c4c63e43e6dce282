"""Collection commands: index, search, duplicates. Parse arguments, call cliplab.index, print.

Indexes live in $CLIPLAB_INDEX_HOME (default ~/.local/share/cliplab/indexes), one per folder;
`--index DIR` puts one anywhere. Inside an indexed folder tree, commands use that tree's index,
restricted to the current sub-folder (like rclip).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from cliplab.cli.app import (
    MODEL_HELP,
    DeviceOpt,
    JsonOpt,
    PrecisionOpt,
    RuntimeOpt,
    app,
    err,
    fail,
    guarded,
    load_model,
    model_loader,
    out,
    print_json,
    table,
)

IndexOpt = typer.Option(
    None,
    "--index",
    help="Index folder to use instead of the default one for the folder "
    "($CLIPLAB_INDEX_HOME/<name>-<hash>). Without a folder: the "
    "folder this index was built from.",
)
ModelOpt = typer.Option(None, "--model", "-m", help=MODEL_HELP + " Default: the index's model (lite for a new index).")
ReindexOpt = typer.Option(False, "--reindex", help="Drop the index and rebuild it (e.g. with another --model).")
NoUpdateOpt = typer.Option(False, "--no-update", help="Search what is indexed; don't look for new/changed files first.")
GlobOpt = typer.Option(None, "--glob", help="Only paths (relative to the folder) matching this glob; * also matches /.")
UnderOpt = typer.Option(None, "--under", help="Only images below this sub-folder.")


IMPLICIT_MAX = 20_000  # search/duplicates index at most this many files on their own (more: --yes)
YesOpt = typer.Option(
    False,
    "--yes",
    "-y",
    help=f"Index more than {IMPLICIT_MAX:,} new files without asking (search indexes new/changed files first).",
)


def _open(
    folder: Optional[Path],
    index: Optional[Path],
    model: Optional[str],
    reindex: bool,
    batch_size: Optional[int] = None,
    rt: tuple = ("auto", "fp32", "auto"),
):
    """The collection of `folder`, or of `--index DIR` (then, without a folder, the one it was built
    from: an index never takes in a folder the user did not name)."""
    from cliplab.index import Collection

    kw = dict(model=model, loader=lambda spec: load_model(spec, *rt), reindex=reindex, batch_size=batch_size)
    if index is not None:
        return Collection(folder, index_dir=index, **kw)
    return Collection.find(folder if folder is not None else Path("."), **kw)


def _implicit(col, yes: bool, quiet: bool):
    """The `before` hook of an update that search/duplicates start on their own: announce it, and
    refuse a huge one (run from a home folder, it would embed everything below it)."""
    from cliplab.errors import CliplabError

    def before(plan) -> None:
        n = len(plan.todo)
        new_index = not any(col.catalog.counts().values())
        if n > IMPLICIT_MAX and not yes:
            raise CliplabError(
                f"{col.folder} has {n:,} new or changed images: index it first with "
                f"`cliplab index {col.folder}`, or pass --yes (searches index at most "
                f"{IMPLICIT_MAX:,} files on their own)"
            )
        if new_index and not quiet:
            err.print(f"note: {col.folder} has no index yet: indexing {n:,} images into {col.index_dir}", markup=False)

    return before


def _update(col, progress: bool, quiet: bool, must: bool = True, before=None):
    """Sync the folder into the index; prints one summary line on stderr."""
    from cliplab.errors import CliplabError
    from cliplab.index import IndexBusyError

    try:
        s = col.update(progress=progress, before=before)
    except IndexBusyError as e:
        if must:
            raise
        err.print(f"note: {e}", markup=False)
        return None
    except CliplabError:
        col.discard_if_empty()  # a refused first run leaves no empty index behind
        raise
    if not quiet and (s.new or s.changed or s.deleted):
        err.print(
            f"indexed: {s.embedded} embedded, {s.reused} reused (same content), {s.deleted} dropped, "
            f"{s.failed} failed, {s.unchanged} unchanged ({s.seconds:.1f} s)",
            markup=False,
        )
    for path, reason in s.failures[:10] if not quiet else []:
        err.print(f"  failed {path}: {reason}", markup=False)
    return s


def _not_indexed(folder: Optional[Path], index: Optional[Path]) -> Optional[str]:
    """Where to say "not indexed" (without creating an index), or None when there is an index."""
    from cliplab.errors import CliplabError
    from cliplab.index import find_index
    from cliplab.index.catalog import catalog_exists

    if index is not None:
        return None if catalog_exists(index) else str(index)
    folder = folder if folder is not None else Path(".")
    if not folder.expanduser().is_dir():
        raise CliplabError(f"no such folder: {folder}")
    return None if find_index(folder) else str(folder.expanduser().resolve())


def _print_status(st: dict) -> None:
    scope = f" (sub-folder {st['scope']})" if st["scope"] else ""
    rows = [
        ["folder", st["folder"] + scope],
        ["index", st["index_dir"]],
        ["model", f"{st['model']} ({st['dim']}-d)" if st["dim"] else f"{st['model']} (nothing embedded yet)"],
        ["indexed", st["indexed"]],
        ["failed", st["failed"]],
        ["pending", ", ".join(f"{v} {k}" for k, v in st["pending"].items())],
        ["size on disk", f"{st['size_bytes'] / 1e6:.2f} MB ({st['bytes_per_image'] or 0} B/image)"],
        ["search", st["search"]],
        ["updated", st["updated_at"] or "never"],
    ]
    if st.get("runtime"):
        r = st["runtime"]
        rows.append(
            [
                "runtime",
                f"{r['runtime']} {r['precision']} (device {r['device']}) for commands here; "
                "any runtime/precision of this model can search this index",
            ]
        )
    out.print(table("index status", ["", "value"], rows))
    for reason, n in st["failure_reasons"].items():
        out.print(f"  {n} × {reason}", markup=False)
    for f in st["failures"][:20]:
        out.print(f"    {f['path']}: {f['reason']}", markup=False)


@app.command(
    "index",
    help=(
        "Index a folder: the first run embeds every image, later runs only new/changed ones (deleted are dropped).\n\n"
        "The index lives in $CLIPLAB_INDEX_HOME (default ~/.local/share/cliplab/indexes), one per folder, or in "
        "--index DIR. Inside an indexed tree, the tree's index is used (restricted to the sub-folder).\n\n"
        "Killing it is safe: a re-run continues after the last committed batch."
    ),
)
@guarded
def index_cmd(
    folder: Optional[Path] = typer.Argument(
        None, help="Image folder (default: the current one, or with --index the index's own folder)."
    ),
    index: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
    runtime: str = RuntimeOpt,
    precision: str = PrecisionOpt,
    device: str = DeviceOpt,
    reindex: bool = ReindexOpt,
    status: bool = typer.Option(False, "--status", help="Show counts, failures, model and size; index nothing."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Images per model call and commit."),
    wait: bool = typer.Option(False, "--wait", help="If another process is indexing, wait for it instead of failing."),
    from_embeddings: Optional[List[Path]] = typer.Option(
        None,
        "--from-embeddings",
        help="Build an ANN index at --index from embedding shards (clip-retrieval "
        "layout, e.g. from `embed --engine ray`); repeat for more folders (a FOLDER argument counts as one).",
    ),
    as_json: bool = JsonOpt,
):
    """Index a folder: the first run embeds every image, later runs only new/changed ones."""
    if from_embeddings:  # docs/scale.md
        from cliplab.cli.scale import index_from_embeddings

        return index_from_embeddings(list(from_embeddings) + ([folder] if folder else []), index, as_json)
    if status:
        missing = _not_indexed(folder, index)
        if missing is not None:  # say so; creating an empty index just to show it would be a side effect
            print_json({"folder": missing, "indexed": False}) if as_json else out.print(
                f"{missing}: not indexed (run `cliplab index {missing}`)", markup=False
            )
            return
    col = _open(folder, index, model, reindex, batch_size, (runtime, precision, device))
    with col:
        if status:
            st = col.status(check=True)
            st["runtime"] = {
                "runtime": runtime,
                "precision": precision,
                "device": device,
                "note": "vectors of one model are interchangeable across runtimes and precisions: "
                "this index is searchable with any of them",
            }
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
        out.print(
            f"{col.folder}: {c['indexed']} images indexed, {c['failed']} failed "
            f"(this run: {s.embedded} embedded, {s.reused} reused, {s.deleted} dropped, {s.failed} failed, "
            f"{s.unchanged} unchanged; {s.seconds:.1f} s) · model {col.model}{_ran(col)} · index {col.index_dir}",
            markup=False,
        )
        for path, reason in s.failures[:20]:
            err.print(f"  failed {path}: {reason}", markup=False)


@app.command(
    "search",
    help=(
        "Search a folder's images by text or by image (indexing new/changed files first).\n\n"
        "Searches the current folder by default (--dir to choose); a folder without an index is indexed first, "
        "with a progress bar. Prints rank, score (cosine similarity) and path; --json for scripts."
    ),
)
@guarded
def search_cmd(
    query: Optional[str] = typer.Argument(None, help="What to look for, in words."),
    image: Optional[Path] = typer.Option(None, "--image", "-i", help="Search by this image instead of text."),
    folder: Optional[Path] = typer.Option(
        None, "--dir", "-d", help="Folder to search (default: the current one, or with --index the index's own folder)."
    ),
    top_k: int = typer.Option(10, "--top-k", "-n", "-k", min=1, help="How many results."),
    threshold: Optional[float] = typer.Option(
        None, "--threshold", min=-1.0, max=1.0, help="Only results with at least this score (cosine, -1 to 1)."
    ),
    under: Optional[str] = UnderOpt,
    glob: Optional[str] = GlobOpt,
    index: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
    runtime: str = RuntimeOpt,
    precision: str = PrecisionOpt,
    device: str = DeviceOpt,
    reindex: bool = ReindexOpt,
    no_update: bool = NoUpdateOpt,
    yes: bool = YesOpt,
    paths_only: bool = typer.Option(False, "--paths", "-f", help="Print only the paths, one per line (for pipes)."),
    as_json: bool = JsonOpt,
):
    """Search a folder's images by text or by image (indexing new/changed files first)."""
    if (query is None) == (image is None):
        fail("give a text QUERY or --image PATH (one of them)")
    if image is not None:
        _check_query_image(image)  # before any indexing: a typo must not cost a long update
    from cliplab.cli.scale import is_shards_index, search_shards

    if is_shards_index(index):  # built by `index --from-embeddings`: nothing to update
        return search_shards(
            index, query, image, top_k, threshold, paths_only, as_json, model_loader(runtime, precision, device)
        )
    if no_update and _not_indexed(folder, index) is not None:
        fail(f"{_not_indexed(folder, index)} is not indexed: drop --no-update (or run `cliplab index`)")
    col = _open(folder, index, model, reindex, rt=(runtime, precision, device))
    with col:
        if under is not None and not col.under_path(under).is_dir():  # before a possibly long update
            fail(f"--under {under}: no such folder {col.under_path(under)}")
        if not no_update:
            _update(
                col,
                progress=True,
                quiet=as_json or paths_only,
                must=False,
                before=_implicit(col, yes, as_json or paths_only),
            )
        if under is not None and col.catalog.count_vectors() and not col.count_under(under):
            fail(f"--under {under}: no indexed images below {col.under_path(under)}")
        if image is not None:
            hits = col.search_image(image, k=top_k, threshold=threshold, under=under, glob=glob)
        else:
            hits = col.search(query, k=top_k, threshold=threshold, under=under, glob=glob)
        if as_json:
            print_json(
                {
                    "query": query,
                    "image": str(image) if image else None,
                    **col.describe(),
                    "results": [{"rank": h.rank, "score": h.score, "path": h.path} for h in hits],
                }
            )
            return
        if paths_only:
            for h in hits:
                out.print(h.path, markup=False)
            return
        if not hits:
            err.print("no results" + (" (nothing indexed)" if not col.catalog.count_vectors() else ""))
            return
        out.print(f"{col.folder} · model {col.model}{_ran(col)} · index {col.index_dir}", markup=False)
        for h in hits:
            out.print(f"{h.rank:>3}  {h.score:.4f}  {h.path}", markup=False)


def _ran(col) -> str:
    """' (onnx fp32)' once the collection's model ran in this process, else ''."""
    d = col.describe()
    if "runtime" not in d:
        return ""
    from cliplab.runtime import precision_phrase

    return f" ({d['runtime']} {precision_phrase(d.get('precision', 'fp32'))})"


def _check_query_image(image: Path) -> None:
    from cliplab.data.images import is_url, load_image
    from cliplab.errors import ImageError

    if is_url(str(image)):
        return
    try:
        load_image(image)
    except ImageError as e:
        raise ImageError(f"--image {image}: {e}") from None


@app.command("duplicates")
@guarded
def duplicates_cmd(
    folder: Optional[Path] = typer.Argument(
        None, help="Image folder (default: the current one, or with --index the index's own folder)."
    ),
    threshold: float = typer.Option(
        0.95,
        "--threshold",
        "-t",
        min=-1.0,
        max=1.0,
        help="Cosine similarity that makes two images duplicates (model-dependent: 0.95+ for near-copies with CLIP).",
    ),
    glob: Optional[str] = GlobOpt,
    index: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
    runtime: str = RuntimeOpt,
    precision: str = PrecisionOpt,
    device: str = DeviceOpt,
    no_update: bool = NoUpdateOpt,
    yes: bool = YesOpt,
    as_json: bool = JsonOpt,
):
    """Groups of near-duplicate images (indexing new/changed files first)."""
    if no_update and _not_indexed(folder, index) is not None:
        fail(f"{_not_indexed(folder, index)} is not indexed: drop --no-update (or run `cliplab index`)")
    col = _open(folder, index, model, False, rt=(runtime, precision, device))
    with col:
        if not no_update:
            _update(col, progress=True, quiet=as_json, must=False, before=_implicit(col, yes, as_json))
        groups = col.duplicates(threshold, glob=glob)
        if as_json:
            print_json({**col.describe(), "threshold": threshold, "groups": [g.as_dict() for g in groups]})
            return
        if not groups:
            out.print(f"no duplicates at threshold {threshold}")
            return
        for i, g in enumerate(groups, 1):
            out.print(f"group {i}: {len(g.paths)} images, similarity {g.min_score:.3f}–{g.max_score:.3f}", markup=False)
            for p in g.paths:
                out.print(f"  {p}", markup=False)
