"""`cliplab analyze` reports, served: `/api/reports` lists them, `/reports/{name}/{path}` sends their files.

A report folder is one that holds `report.html` (what `cliplab analyze --out DIR` writes). The server
knows two kinds: the folders `serve --reports DIR` was given (DIR itself, or each folder in it that
holds a report), and the folders under `reports/` of a served collection's indexes (every model's).
Nothing else is ever sent: the request names a report and a path inside it; the path is checked
part by part (no `..`, no hidden names), resolved, and must still lie inside the report folder and be
a regular file. Answers carry `nosniff` and a Content-Security-Policy that lets a report show its own
images and styles but run no scripts and fetch nothing from another origin.
"""

from __future__ import annotations

import html
import mimetypes
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from cliplab.serve.deps import get_state
from cliplab.serve.errors import NotFound
from cliplab.serve.state import ServerState

router = APIRouter(tags=["reports"])
REPORT_FILE = "report.html"
MAX_FILES_COUNTED = 10_000  # a report folder's file count stops here (a huge folder is not walked)
HEAD_BYTES = 64 * 1024  # where a report's <h1> / <title> is looked for
# no scripts, no frames, no connections; images, media, styles and fonts from this server (or inlined)
CSP = (
    "default-src 'none'; img-src 'self' data:; media-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
TYPES = {  # what mimetypes may not know, or guesses differently per platform
    ".md": "text/markdown",
    ".csv": "text/csv",
    ".jsonl": "application/x-ndjson",
    ".npy": "application/octet-stream",
    ".parquet": "application/octet-stream",
}


@dataclass(frozen=True)
class Report:
    name: str  # unique on this server: the URL's /reports/{name}/
    folder: Path  # resolved
    collection: str | None  # the collection whose index holds it; None: a --reports folder


def _visible(name: str) -> bool:
    return bool(name) and not name.startswith(".")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-") or "report"


def _report_dirs(root: Path, own: bool) -> list[Path]:
    """`root` itself when it holds a report (and `own`: a --reports folder may be one report), else
    its visible sub-folders that do, by name."""
    if own and (root / REPORT_FILE).is_file():
        return [root]
    try:
        subs = sorted(e.name for e in os.scandir(root) if _visible(e.name) and e.is_dir())
    except OSError:
        return []
    return [root / s for s in subs if (root / s / REPORT_FILE).is_file()]


def _index_dirs(src) -> list[Path]:
    """The index folders of a served collection: its own, and for a folder every model's."""
    own = getattr(getattr(src, "collection", None) or getattr(src, "index", None), "index_dir", None)
    dirs = [Path(own)] if own else []
    if src.kind == "folder":
        from cliplab.index.locate import folder_indexes

        dirs += [r.dir for r in folder_indexes(src.collection.folder)]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def reports(state: ServerState) -> list[Report]:
    """Every report this server may send, with unique names (a clash gets -2, -3 …). Looked up on each
    call: a report that `analyze` writes while the server runs shows up without a restart."""
    found: list[tuple[Path, str | None]] = []
    for root in state.settings.reports:
        found += [(d, None) for d in _report_dirs(Path(root), own=True)]
    for name, src in state.sources.items():
        for index_dir in _index_dirs(src):
            found += [(d, name) for d in _report_dirs(index_dir / "reports", own=False)]
    out: list[Report] = []
    taken: set[str] = set()
    seen: set[Path] = set()
    for folder, collection in found:
        folder = folder.resolve()
        if folder in seen:
            continue
        seen.add(folder)
        base = _slug(folder.name)
        name, n = base, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        taken.add(name)
        out.append(Report(name, folder, collection))
    return out


def _title(path: Path, default: str) -> str:
    """The report's first <h1> (analyze writes "cliplab analyze: DATASET"), else its <title>."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES).decode("utf-8", "replace")
    except OSError:
        return default
    for tag in ("h1", "title"):
        m = re.search(rf"<{tag}\b[^>]*>(.*?)</{tag}>", head, re.I | re.S)
        text = html.unescape(re.sub(r"<[^>]+>", "", m.group(1))).strip() if m else ""
        if text:
            return " ".join(text.split())[:200]
    return default


def _count_files(folder: Path) -> int:
    n = 0
    for _, dirs, files in os.walk(folder):  # links to folders are not followed
        dirs[:] = [d for d in dirs if _visible(d)]
        n += sum(1 for f in files if _visible(f))
        if n >= MAX_FILES_COUNTED:
            return MAX_FILES_COUNTED
    return n


def describe(report: Report) -> dict:
    page = report.folder / REPORT_FILE
    try:
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(page.stat().st_mtime))
    except OSError:
        created = None
    return {
        "name": report.name,
        "title": _title(page, report.name),
        "url": f"/reports/{report.name}/{REPORT_FILE}",
        "created": created,
        "files": _count_files(report.folder),
        "collection": report.collection,
    }


def report_file(report: Report, path: str) -> Path | None:
    """The regular file `path` names inside the report folder, or None: any `..`, hidden or empty
    part, backslash or NUL, or a link that leads out of the folder or to a hidden name, is refused."""
    parts = path.split("/")
    if not path or any(not _visible(p) or "\\" in p or "\0" in p for p in parts):
        return None
    try:
        file = (report.folder / Path(*parts)).resolve(strict=True)
        rel = file.relative_to(report.folder)
        st = file.stat()
    except (OSError, ValueError, RuntimeError):  # missing, outside the folder, a link loop
        return None
    if not stat.S_ISREG(st.st_mode) or not all(_visible(p) for p in rel.parts):
        return None
    return file


def media_type(file: Path) -> str:
    kind = TYPES.get(file.suffix.lower()) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind in ("application/json", "image/svg+xml"):
        kind += "; charset=utf-8"
    return kind


@router.get("/api/reports")
def list_reports(collection: str | None = None, state: ServerState = Depends(get_state)) -> dict:
    """The reports this server serves: the --reports ones, and with `collection` only that
    collection's own besides them (without it, every collection's)."""
    if collection:
        state.source(collection)  # an unknown collection is a 404, as everywhere
    rows = [describe(r) for r in reports(state) if not collection or r.collection in (None, collection)]
    return {"reports": rows}


@router.get("/reports/{name}/{path:path}", include_in_schema=False)
def report(name: str, path: str, state: ServerState = Depends(get_state)):
    found = next((r for r in reports(state) if r.name == name), None)
    file = report_file(found, path or REPORT_FILE) if found else None
    if file is None:
        raise NotFound(f"no {path or REPORT_FILE!r} in a report {name!r} on this server")
    headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": CSP, "Cache-Control": "no-cache"}
    return FileResponse(file, media_type=media_type(file), headers=headers)
