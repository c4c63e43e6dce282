"""Collection commands: index and search (duplicates: cli/duplicates.py). Parse arguments, call cliplab.index, print.

Indexes live in $CLIPLAB_INDEX_HOME (default ~/.local/share/cliplab/indexes), one per folder and
model (cliplab/index/locate.py); `--index DIR` puts one anywhere. Inside an indexed folder tree,
commands use that tree's index, restricted to the current sub-folder (like rclip).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import List, Optional

import typer

from cliplab.cli import query as q
from cliplab.cli.app import (
    MODEL_HELP,
    DeviceOpt,
    JsonOpt,
    PrecisionOpt,
    RuntimeOpt,
    app,
    check_model_spec,
    err,
    fail,
    guarded,
    load_model,
    model_loader,
    out,
    print_json,
)
from cliplab.cli.index_view import not_indexed, ocr_line, ran, search_header, show_status
from cliplab.cli.output import FormatOpt, Print0Opt, output_mode, print_hits

IndexOpt = typer.Option(
    None,
    "--index",
    help="Index folder to use instead of the default one for the folder "
    "($CLIPLAB_INDEX_HOME/<name>-<hash>). Without a folder: the "
    "folder this index was built from.",
)
ModelOpt = typer.Option(
    None,
    "--model",
    "-m",
    help=MODEL_HELP
    + " A folder keeps one index per model. Default: its only index, else its lite one, else its first.",
)
ModelsOpt = typer.Option(
    None,
    "--model",
    "-m",
    help=MODEL_HELP + " A folder keeps one index per model. Default: its only index, else its lite one, else its "
    "first. Repeat to compare models: their results side by side (each needs an index of the folder).",
)
ReindexOpt = typer.Option(False, "--reindex", help="Drop this model's index of the folder and rebuild it.")
NoUpdateOpt = typer.Option(False, "--no-update", help="Search what is indexed; don't look for new/changed files first.")
GlobOpt = typer.Option(None, "--glob", help="Only paths (relative to the folder) matching this glob; * also matches /.")
UnderOpt = typer.Option(None, "--under", help="Only images below this sub-folder.")


ASK_ABOVE = 1_000  # search/duplicates ask before giving a never-indexed folder of more images its first index
YesOpt = typer.Option(
    False,
    "--yes",
    "-y",
    help=f"Index a never-indexed folder of more than {ASK_ABOVE:,} images without asking "
    "(needed when not on a terminal).",
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
    from cliplab.cli.scale import is_shards_index
    from cliplab.errors import CliplabError
    from cliplab.index import Collection

    if is_shards_index(index):
        raise CliplabError(
            f"{index} is an index built from embeddings (`index --from-embeddings`): search it, or show it "
            "with `cliplab index --status --index`; rebuild it with --from-embeddings to add vectors"
        )
    if model is not None:
        check_model_spec(model)  # a typo is the spec's one error, before any index is opened
    kw = dict(model=model, loader=lambda spec: load_model(spec, *rt), reindex=reindex, batch_size=batch_size)
    if index is not None:
        return Collection(folder, index_dir=index, **kw)
    return Collection.find(folder if folder is not None else Path("."), **kw)


def _implicit(col, yes: bool, quiet: bool):
    """The `before` hook of an update that search/duplicates start on their own. A first index is
    announced, and above ASK_ABOVE images asked for (run from a home or temp folder, it would embed
    everything below it): on a terminal by a question, otherwise by --yes. Existing indexes just
    catch up; `cliplab index` never asks."""

    def before(plan) -> None:
        if any(col.catalog.counts().values()):
            return
        n = len(plan.todo)
        if n > ASK_ABOVE and not yes:
            _ask(col, n)
        if not quiet:
            err.print(f"note: {col.folder} has no index yet: indexing {n:,} images into {col.index_dir}", markup=False)

    return before


def _ask(col, n: int) -> None:
    import click

    from cliplab.errors import CliplabError

    what = f"{col.folder} has no {col.model} index yet and holds {n:,} images"
    run = f"cliplab index {col.folder}" + (f" --model {col.model}" if col.model != "lite" else "")
    if not _is_terminal():
        raise CliplabError(f"{what}: pass --yes to index them now, or run `{run}` first")
    try:
        ok = typer.confirm(f"{what}. Index them now?", default=False, err=True)
    except click.exceptions.Abort:
        ok = False
    if not ok:
        raise CliplabError(f"not indexed: {col.folder} (answer y, pass --yes, or run `{run}`)")


def _is_terminal() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


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
    except (CliplabError, KeyboardInterrupt):
        _discard_if_empty(col)  # a refused or interrupted first run leaves no empty index behind
        raise
    if not quiet and (s.new or s.changed or s.deleted):
        err.print(
            f"indexed: {s.embedded} embedded{q.frames_note(s)}, {s.reused} reused (same content), {s.deleted} dropped, "
            f"{s.failed} failed, {s.unchanged} unchanged ({s.seconds:.1f} s)",
            markup=False,
        )
    for path, reason in s.failures[:10] if not quiet else []:
        err.print(f"  failed {path}: {reason}", markup=False)
    return s


def _discard_if_empty(col) -> None:
    with contextlib.suppress(Exception):  # cleanup on the way out: the first error is the one to show
        col.discard_if_empty()


@app.command(
    "index",
    help=(
        "Index a folder: the first run embeds every image, later runs only new/changed ones (deleted are dropped).\n\n"
        "Indexes live in $CLIPLAB_INDEX_HOME (default ~/.local/share/cliplab/indexes), one per folder and model "
        "(repeat --model to keep several up to date), or in --index DIR. Inside an indexed tree, the tree's index "
        "is used (restricted to the sub-folder).\n\n"
        "Stopping it (Ctrl-C, or even a kill) is safe: what was embedded is kept, and a re-run continues."
    ),
)
@guarded
def index_cmd(
    folder: Optional[Path] = typer.Argument(
        None, help="Image folder (default: the current one, or with --index the index's own folder)."
    ),
    index: Optional[Path] = IndexOpt,
    model: Optional[List[str]] = typer.Option(
        None,
        "--model",
        "-m",
        help=MODEL_HELP + " Repeat to keep several models' indexes of the folder up to date (one index per model). "
        "Default: the folder's only index, else its lite one, else its first.",
    ),
    runtime: str = RuntimeOpt,
    precision: str = PrecisionOpt,
    device: str = DeviceOpt,
    reindex: bool = ReindexOpt,
    status: bool = typer.Option(False, "--status", help="Show counts, failures, model and size; index nothing."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Images per model call and commit."),
    wait: bool = typer.Option(False, "--wait", help="If another process is indexing, wait for it instead of failing."),
    ocr: Optional[bool] = typer.Option(
        None,
        "--ocr/--no-ocr",
        help="Read the text in images (screenshots, receipts, signs, scans) so keyword and hybrid search find it; "
        "the index remembers it, so later index/search/serve runs read new files too. Needs cliplab[ocr].",
    ),
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
    models = list(dict.fromkeys(model or []))
    if index is not None and len(models) > 1:
        fail("--index names one index, of one model: give one --model, or leave out --index")
    if status:
        return show_status(folder, index, models, (runtime, precision, device), as_json)
    from cliplab.data.ocr import unavailable_reason

    if ocr and unavailable_reason():  # before any index is made for it
        fail(f"--ocr: {unavailable_reason()}")
    done = [
        _index_one(folder, index, m, reindex, batch_size, (runtime, precision, device), wait, as_json, ocr)
        for m in models or [None]
    ]
    if as_json:
        print_json(done[0] if len(done) == 1 else {"indexes": done})


def _index_one(folder, index, model, reindex, batch_size, rt, wait: bool, as_json: bool, ocr=None) -> dict:
    """Bring one model's index of the folder up to date; prints its line (text mode)."""
    col = _open(folder, index, model, reindex, batch_size, rt)
    with col:
        try:
            s = col.update(progress=not as_json, wait=wait, ocr=ocr)
        except KeyboardInterrupt:  # its message says what was kept (cli.app.guarded prints it)
            _discard_if_empty(col)
            raise
        from cliplab.index.ocr import coverage as ocr_coverage

        text = ocr_coverage(col.catalog)
        if as_json:
            failures = [{"path": p, "reason": r} for p, r in s.failures]
            return {**col.describe(), **s.as_dict(), "failures": failures, "ocr": text}
        c = col.catalog.counts(col.scope)
        out.print(
            f"{col.folder}: {c['indexed']} images indexed, {c['failed']} failed "
            f"(this run: {s.embedded} embedded{q.frames_note(s)}, {s.reused} reused, {s.deleted} dropped, {s.failed} failed, "
            f"{s.unchanged} unchanged; {s.seconds:.1f} s) · model {col.model}{ran(col.describe())} · index {col.index_dir}",
            markup=False,
        )
        for path, reason in s.failures[:20]:
            err.print(f"  failed {path}: {reason}", markup=False)
        if text["enabled"]:
            out.print(f"text in images: {ocr_line(text)}", markup=False)
        return {}


@app.command(
    "search",
    help=(
        "Search a folder's images by text, by image, or by an expression (indexing new/changed files first).\n\n"
        'QUERY is words, or rclip\'s expressions: "beach" + "sunset" - "people", 2:"dog" + ./pool.jpg, like:ID '
        "(terms joined by ' + ' and ' - ', an optional weight before each; an image is a file or an http(s) URL). "
        "The query vector is the normalised weighted sum of the terms' unit vectors. --image adds image terms.\n\n"
        "Searches the current folder by default (--dir to choose); a folder without an index is indexed first, "
        "with a progress bar. Prints rank, score (the cosine; in hybrid and keyword mode, when words match, the fused "
        "rank score) and path; --json for scripts."
    ),
)
@guarded
def search_cmd(
    query: Optional[str] = typer.Argument(None, help='Words, or an expression: "beach" + "sunset" - "people".'),
    image: Optional[List[str]] = typer.Option(
        None, "--image", "-i", help="An image (file or http(s) URL) to search by; repeat to combine, with QUERY too."
    ),
    folder: Optional[Path] = typer.Option(
        None, "--dir", "-d", help="Folder to search (default: the current one, or with --index the index's own folder)."
    ),
    top_k: int = typer.Option(10, "--top-k", "-k", min=1, help="How many results."),
    threshold: Optional[float] = typer.Option(
        None, "--threshold", min=-1.0, max=1.0, help="Only results with at least this score (cosine, -1 to 1)."
    ),
    under: Optional[str] = UnderOpt,
    glob: Optional[str] = GlobOpt,
    after: Optional[str] = q.AfterOpt,
    before: Optional[str] = q.BeforeOpt,
    types: Optional[str] = q.TypeOpt,
    camera: Optional[str] = q.CameraOpt,
    min_width: Optional[int] = q.MinWidthOpt,
    min_height: Optional[int] = q.MinHeightOpt,
    orientation: Optional[str] = q.OrientationOpt,
    has_gps: bool = q.HasGpsOpt,
    search_mode: Optional[str] = q.ModeOpt,
    sort: str = q.SortOpt,
    lang: Optional[str] = q.LangOpt,
    index: Optional[Path] = IndexOpt,
    model: Optional[List[str]] = ModelsOpt,
    runtime: str = RuntimeOpt,
    precision: str = PrecisionOpt,
    device: str = DeviceOpt,
    reindex: bool = ReindexOpt,
    no_update: bool = NoUpdateOpt,
    yes: bool = YesOpt,
    paths_only: bool = typer.Option(False, "--paths", "-f", help="Print only the paths, one per line (for pipes)."),
    print0: bool = Print0Opt,
    out_format: Optional[str] = FormatOpt,
    as_json: bool = JsonOpt,
):
    """Search a folder's images by text or by image (indexing new/changed files first)."""
    mode = output_mode(out_format, as_json, paths=paths_only, print0=print0)
    quiet = mode in ("json", "paths", "print0")
    terms = q.terms(query, image or [])  # before any indexing: a typo must not cost a long update
    filters = q.filters_from(after, before, types, camera, min_width, min_height, orientation, has_gps)
    models = list(dict.fromkeys(model or []))
    if len(models) > 1:  # side by side (cli/compare_view.py)
        from cliplab.cli import compare_view as cv

        cv.refuse(**{"--index": index, "--reindex": reindex, "--lang": lang, "--sort": sort != "relevance"})
        cv.refuse(**{"--paths": paths_only, "--print0": print0, "--format": out_format not in (None, "table", "json")})
        rt = (runtime, precision, device)
        kw = dict(threshold=threshold, under=under, glob=glob, filters=filters, mode=search_mode)
        keep_up = None if no_update else (lambda col: _update(col, progress=True, quiet=as_json, must=False))
        loader = lambda spec: load_model(spec, *rt)  # noqa: E731
        specs = [check_model_spec(m) for m in models]
        return cv.search_compare(folder or Path("."), specs, terms, top_k, kw, loader, keep_up, mode == "json", query)
    model = models[0] if models else None
    from cliplab.cli.scale import is_shards_index, search_shards

    if is_shards_index(index):  # built by `index --from-embeddings`: nothing to update
        if under is not None or glob is not None or folder is not None or filters.active:
            fail(
                f"{index} is an index built from embeddings: not a folder tree, no photo metadata "
                "(no --dir, --under, --glob or filters; --mode keyword/hybrid search its captions)"
            )
        if lang:
            fail("--lang: not for an index built from embeddings (search a folder's index)")
        rt = model_loader(runtime, precision, device)
        asked = {"query": query, "image": (image or [None])[0]}
        return search_shards(index, terms, top_k, threshold, mode, rt, asked, search_mode)
    if no_update and not_indexed(folder, index, model) is not None:
        fail(f"{not_indexed(folder, index, model)} is not indexed: drop --no-update (or run `cliplab index`)")
    col = _open(folder, index, model, reindex, rt=(runtime, precision, device))
    with col:
        if under is not None and not col.under_path(under).is_dir():  # before a possibly long update
            fail(f"--under {under}: no such folder {col.under_path(under)}")
        if not no_update:
            _update(
                col,
                progress=True,
                quiet=quiet,
                must=False,
                before=_implicit(col, yes, quiet),
            )
        if under is not None and col.catalog.count_vectors() and not col.count_under(under):
            fail(f"--under {under}: no indexed images below {col.under_path(under)}")
        from cliplab.models.language import with_vectors
        from cliplab.search import run

        terms = with_vectors(col.encoder(), terms, lang)  # text terms read as --lang (NLLB-CLIP)
        info: dict = {}
        hits = run(col, terms, top_k, threshold, under, glob, filters, search_mode, sort, info)
        if as_json:
            from cliplab.index.ocr import texts

            read = {i: {"ocr": t} for i, t in texts(col.catalog, [h.id for h in hits]).items()}  # text in images
            print_json(
                {
                    "query": query,
                    "image": image[0] if image else None,
                    "terms": [t.as_dict() for t in terms],
                    "filters": filters.text,
                    "mode": info.pop("mode", search_mode),
                    "sort": {"by": sort, **info},
                    **col.describe(),
                    "results": [
                        {"rank": h.rank, "score": h.score, "path": h.path, **q.video_fields(h), **read.get(h.id, {})}
                        for h in hits
                    ],
                }
            )
            return
        if not hits and not quiet:
            why = " (nothing indexed)" if not col.catalog.count_vectors() else ""
            if not why and filters.active and not col.count_under(under, glob, filters):
                why = f" (no indexed photo matches {filters.describe()})"
            err.print("no results" + why, markup=False)
        shown = hits if mode in ("paths", "print0") else q.at_moments(hits)  # paths stay paths
        print_hits(mode, shown, search_header(col.describe()) + q.sort_note(sort, info))
