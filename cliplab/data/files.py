"""Finding image files in folders, and reading the small text/CSV files users hand us.

`walk_images` follows symlinked folders (each real folder is entered once, so a link loop ends) and
reports broken symlinks instead of dropping them silently: a user who sees a count lower than
expected can find out why.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from cliplab.data.formats import IMAGE_EXTENSIONS, LISTED_EXTENSIONS  # noqa: F401  (IMAGE_EXTENSIONS: re-exported)
from cliplab.errors import DataError


@dataclass
class Found:
    path: str  # the path as found (root joined with rel)
    rel: str  # relative to the root, '/'-separated
    size: int  # -1 for a broken link (so it counts as changed once its target appears)
    mtime_ns: int
    broken: str | None  # why it cannot be read, for a broken symlink; None otherwise


def broken_link_reason(path: str | Path) -> str:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return f"broken symbolic link (target {target} does not exist)"


def walk_images(root: str | Path, under: str | None = None, skip_hidden: bool = True) -> Iterator[Found]:
    """Every picture file below root[/under] (by extension: cliplab.data.formats.LISTED_EXTENSIONS,
    RAW and video included so that they are reported as not supported), in no particular order.

    Hidden entries (.git, .thumbnails, …) are skipped when `skip_hidden`. Unreadable folders are
    passed over (their files are simply not seen).
    """
    root = Path(root)
    start = root / under if under else root
    prefix = (under.strip("/") + "/") if under else ""
    try:
        st = start.stat()
    except OSError:
        return
    if not start.is_dir():
        return
    seen = {(st.st_dev, st.st_ino)}
    stack = [(str(start), prefix)]
    while stack:
        path, rel = stack.pop()
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)  # which link to a folder wins: stable
        except OSError:
            continue
        for e in entries:
            if skip_hidden and e.name.startswith("."):
                continue
            try:
                if e.is_dir():  # follows symlinks: a linked folder is walked like a real one …
                    s = e.stat()
                    key = (s.st_dev, s.st_ino)
                    if key not in seen:  # … once, so a link to an ancestor cannot loop
                        seen.add(key)
                        stack.append((e.path, rel + e.name + "/"))
                    continue
                if os.path.splitext(e.name)[1].lower() not in LISTED_EXTENSIONS:
                    continue
                if e.is_file():
                    s = e.stat()
                    yield Found(e.path, rel + e.name, int(s.st_size), int(s.st_mtime_ns), None)
                elif e.is_symlink() and not os.path.exists(e.path):
                    yield Found(e.path, rel + e.name, -1, -1, broken_link_reason(e.path))
            except OSError:
                continue  # vanished mid-scan


def read_lines(path: str | Path, what: str = "file") -> list[str]:
    """Non-blank, stripped lines of a UTF-8 text file (a BOM is dropped); one clear error otherwise."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"no such {what}: {path}")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    return [t.strip() for t in text.splitlines() if t.strip()]


def read_csv_rows(path: str | Path) -> tuple[list[str], list[dict]]:
    """(header, rows) of a CSV/TSV file, delimiter sniffed; one-line errors for encoding and shape."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"no such file: {path}")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    if not text.strip():
        raise DataError(f"{path}: empty file")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    try:
        reader = csv.DictReader(io.StringIO(text), dialect=dialect)
        rows = list(reader)
    except csv.Error as e:
        raise DataError(f"{path}: malformed CSV ({e})") from None
    header = [h.strip() for h in (reader.fieldnames or [])]
    return header, [
        {(k or "").strip(): (v or "").strip() if isinstance(v, str) else v for k, v in r.items()} for r in rows
    ]


# A file is read as one; a spec that only looks like a file name is a missing file, not a label.
LIST_SUFFIXES = (".txt", ".csv", ".tsv", ".lst", ".list")
_COLUMNS = {"labels": ("label",), "texts": ("text", "caption")}


def read_items(spec: str, what: str = "texts") -> list[str]:
    """Labels or texts as a command line gives them: a .csv/.tsv file (its `label` column for
    labels, `text`/`caption` for texts, else the first), a text file (one per line), or an inline
    comma-separated list (a text with a comma needs a file). Order kept."""
    p = Path(spec).expanduser()
    if p.suffix.lower() in (".csv", ".tsv") and p.is_file():
        header, rows = read_csv_rows(p)
        col = next((c for c in _COLUMNS.get(what, ()) if c in header), header[0] if header else None)
        items = [r.get(col, "") for r in rows] if col else []
    elif p.is_file():
        items = read_lines(p, f"{what} file")
    elif "," not in spec and (p.suffix.lower() in LIST_SUFFIXES or spec.startswith(("/", "./", "../", "~"))):
        raise DataError(f"no such {what} file: {spec}")
    else:
        items = spec.split(",")
    return [s.strip() for s in items if s and s.strip()]


def read_labels(spec: str) -> list[str]:
    """Zero-shot labels (`read_items`), duplicates dropped; at least two."""
    labels = list(dict.fromkeys(read_items(spec, "labels")))
    if len(labels) < 2:
        got = f"only {labels[0]!r}" if labels else "none"
        raise DataError(f"--labels {spec}: zero-shot needs at least two labels to choose between (got {got})")
    return labels
