"""What a search asks for, from the command line: its terms (QUERY and --image) and its filters.
Shared by `search` (cli/index.py); the models behind them are `cliplab.search` and `index.filters`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from cliplab.cli.app import fail

AfterOpt = typer.Option(None, "--after", help="Taken on or after this date: YYYY, YYYY-MM or YYYY-MM-DD.")
BeforeOpt = typer.Option(None, "--before", help="Taken on or before this date (the whole year/month/day).")
TypeOpt = typer.Option(None, "--type", help="File types, comma-separated: jpg,heic,png …")
CameraOpt = typer.Option(None, "--camera", help="Camera make or model contains this (any case).")
MinWidthOpt = typer.Option(None, "--min-width", min=1, help="At least this many pixels wide (as shown).")
MinHeightOpt = typer.Option(None, "--min-height", min=1, help="At least this many pixels high (as shown).")
OrientationOpt = typer.Option(None, "--orientation", help="landscape, portrait or square.")
HasGpsOpt = typer.Option(False, "--has-gps", help="Only photos with a GPS position.")
SortOpt = typer.Option(
    "relevance",
    "--sort",
    help="relevance, or date / -date (newest first) among the photos relevant to the query (cut-off shown).",
)
ModeOpt = typer.Option(
    None,
    "--mode",
    help="hybrid (default: both, fused by rank), semantic (image vectors only) or keyword (words of file names, "
    "captions beside the photos, EXIF text).",
)
LangOpt = typer.Option(
    None,
    "--lang",
    help="The language of the text, as a FLORES-200 code (deu_Latn, zho_Hans …): for NLLB-CLIP models, which "
    "read it first; other models refuse it.",
)


def sort_note(sort: str, info: dict) -> str:
    """' · by date among 37 relevant (cosine ≥ 0.241)' for the header line."""
    if sort == "relevance":
        return ""
    cut = f" (cosine ≥ {info['cutoff']:.3f})" if "cutoff" in info else ""
    return f" · {'newest' if sort == '-date' else 'oldest'} first among {info.get('relevant', 0)} relevant{cut}"


def video_fields(hit) -> dict:
    """A video hit's media, best moment and moments for --json (nothing for an image's)."""
    if getattr(hit, "media", "image") != "video":
        return {}
    return {"media": "video", "timestamp": hit.timestamp, "moments": hit.moments}


def frames_note(stats) -> str:
    """' (of which videos: 412 frames)' after an update's embedded count, when it sampled videos."""
    return f" (of which videos: {stats.frames} frames)" if getattr(stats, "frames", 0) else ""


def at_moments(hits: list) -> list:
    """Video hits as people read them: `clip.mp4 @ 00:01:23`."""
    from dataclasses import replace

    from cliplab.index.frames import timecode

    return [replace(h, path=f"{h.path} @ {timecode(h.timestamp)}") if video_fields(h) else h for h in hits]


def filters_from(after, before, types, camera, min_width, min_height, orientation, has_gps):
    from cliplab.index.filters import make_filters

    return make_filters(after, before, types, camera, min_width, min_height, orientation, has_gps)


def terms(query: Optional[str], images: List[str]) -> list:
    """QUERY's terms (a term that is an existing file or a URL is an image) + one per --image; each
    image is decoded now, so a bad one fails before any indexing."""
    from cliplab.data.images import is_url, load_image
    from cliplab.errors import ImageError
    from cliplab.search.expression import Term, check, parse

    if query is None and not images:
        fail('give a QUERY (words or an expression like "beach" + "sunset") or --image FILE|URL')

    def image_ref(value: str) -> bool:
        return is_url(value) or Path(value).expanduser().is_file()

    out = (parse(query, image_ref) if query is not None else []) + [Term("image", str(i)) for i in images]
    check(out)
    for t in out:
        if t.kind == "image" and not is_url(t.value):
            try:
                load_image(Path(t.value).expanduser())
            except ImageError as e:
                raise ImageError(f"query image {t.value}: {e}") from None
    return out
