"""What `embed --engine ray / --layout clip-retrieval`, `index --from-embeddings` and `search --index`
on a shards-built index do: call cliplab.distributed / cliplab.index.large and print. The command
options themselves live in core.py and index.py."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import typer

from cliplab.cli.app import err, load_model, out, print_json

FORMATS = ("cliplab", "clip-retrieval")


def embed_shards(
    inputs: Sequence[str],
    out_dir: Path,
    model: str,
    engine: str,
    address: Optional[str],
    workers: Optional[int],
    batch_size: Optional[int],
    shard_size: int,
    captions: bool,
    as_json: bool,
    model_options: Optional[dict] = None,
) -> None:
    from cliplab.distributed import embed_to_shards

    s = embed_to_shards(
        inputs,
        out_dir,
        model=model,
        engine=engine,
        address=address,
        workers=workers,
        batch_size=batch_size,
        shard_size=shard_size,
        captions=captions,
        progress=not as_json,
        model_options=model_options,
    )
    if as_json:
        print_json({**s.as_dict(), "failures": [{"path": p, "error": e} for p, e in s.failures]})
    else:
        for path, reason in s.failures[:20]:
            err.print(f"  skipped {path}: {reason}", markup=False)
        rate = (
            f"{s.images_per_s:.1f} images/s" if s.skipped < s.shards else "nothing left to do (rerun of a finished job)"
        )
        out.print(
            f"embedded {s.ok} images ({s.failed} skipped) in {s.shards} shards ({s.skipped} already done) "
            f"with model {s.model}, engine {s.engine}: {rate} → {s.out}",
            markup=False,
        )
    if s.ok == 0:
        raise typer.Exit(1)


def index_from_embeddings(dirs: Sequence[Path], index: Optional[Path], as_json: bool) -> None:
    from cliplab.errors import CliplabError
    from cliplab.index.large import build_from_embeddings

    if index is None:
        raise CliplabError("--from-embeddings needs --index IDX (the folder to write the index to)")
    info = build_from_embeddings([str(d) for d in dirs], index, progress=not as_json)
    info = {k: v for k, v in info.items() if k != "shards"}
    if as_json:
        print_json({"index": str(index), **info})
        return
    ann = (
        f", nlist {info['nlist']}, nprobe {info['nprobe']} (recall@10 {info['tuned_recall_at_10']:.3f} "
        f"vs exact on held-out queries)"
        if "nprobe" in info
        else ""
    )
    out.print(
        f"{index}: {info['count']} vectors, {info['kind']}{ann}, model {info['model']}, "
        f"{info['index_bytes'] / 1e6:.1f} MB, {info['build_seconds']:.1f} s",
        markup=False,
    )


def is_shards_index(index: Optional[Path]) -> bool:
    if index is None:
        return False
    from cliplab.index.shards import is_shards_index as check

    return check(index)


def search_shards(
    index: Path,
    terms: list,
    top_k: int,
    threshold: Optional[float],
    mode: str,
    loader=None,
    asked: Optional[dict] = None,
    search_mode: Optional[str] = None,
) -> None:
    from cliplab.cli.index_view import search_header
    from cliplab.cli.output import print_hits
    from cliplab.index.shards import ShardsIndex
    from cliplab.search import run

    with ShardsIndex(index, loader=loader or load_model) as idx:
        hits = run(idx, terms, top_k, threshold, mode=search_mode)  # semantic unless asked
        if mode == "json":
            print_json(
                {
                    **(asked or {}),  # the query and image as given
                    "terms": [t.as_dict() for t in terms],
                    **idx.describe(),
                    "results": [h.as_dict() for h in hits],
                }
            )
            return
        header = search_header(idx.describe())  # the same first line as a folder's search
    if not hits and mode not in ("paths", "print0"):
        err.print("no results")
    print_hits(mode, hits, header)
