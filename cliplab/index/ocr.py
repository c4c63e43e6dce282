"""Text read from each photo (OCR, `index --ocr`): the `ocr` table (schema 3) and the keyword index.

`fill` reads every indexed image that has no `ocr` row yet: decoded by `load_image` (the one pixel
limit), read by `data/ocr.py`, stored (text '' when there is none; `engine` is the engine and its
version, or 'failed: reason' when the file could not be read — retried once the file changes), and
added to the file's keyword row (`keywords.text`), so `--mode keyword|hybrid` finds a receipt by a
word on it. `photos.fill` puts the text back whenever it rebuilds a keyword row: the two passes may
run in either order. A changed or deleted file loses its row with its metadata
(`Writer._forget_photo`); a touched one (same content) keeps it. Videos are left to their frames.

Whether an index reads text is remembered in its meta (`ocr` = on | off): `index --ocr` once, and
later `index`, `search` and `serve` runs read the new files too; `--no-ocr` stops that (texts
already read stay searchable).
"""

from __future__ import annotations

import time
from pathlib import Path

from cliplab.data.formats import VIDEO_EXTENSIONS
from cliplab.errors import CliplabError, ImageError

META_KEY = "ocr"
BATCH = 16  # files per commit: a killed pass loses at most this many readings
COMMIT_S = 10.0  # …or this many seconds of them, whichever comes first
FAILED = "failed: "


def enabled(catalog) -> bool:
    return catalog.meta(META_KEY) == "on"


def remember(catalog, on: bool) -> None:
    """Turn reading text on or off for this index (kept in its meta). On needs the engine installed."""
    from cliplab.data.ocr import unavailable_reason

    if on and (why := unavailable_reason()):
        raise CliplabError(f"--ocr: {why}")
    if catalog.meta(META_KEY) != ("on" if on else "off"):
        with catalog.write(bump=False) as w:
            w.set_meta(**{META_KEY: "on" if on else "off"})


def _readable(rel: str) -> bool:
    return Path(rel).suffix.lower() not in VIDEO_EXTENSIONS


def missing(catalog) -> list[tuple[int, str]]:
    """(id, relative path) of the indexed images (not videos) without an `ocr` row."""
    q = "SELECT f.id, f.path FROM files f LEFT JOIN ocr o ON o.id = f.id WHERE f.status = 'ok' AND o.id IS NULL"
    return [(int(i), str(p)) for i, p in catalog.con.execute(q + " ORDER BY f.id") if _readable(p)]


def read_file(path: Path) -> tuple[str, str]:
    """(text, engine) of one file; a file that cannot be decoded or read gives ('', 'failed: reason')."""
    from cliplab.data.images import load_image
    from cliplab.data.ocr import MAX_SIDE, engine_name, read_text

    try:
        # draft: a large JPEG is decoded at a reduced scale, still at least MAX_SIDE on its long side
        return read_text(load_image(path, draft=MAX_SIDE * 3 // 4)), engine_name()
    except ImageError as e:
        return "", f"{FAILED}{e}"


def fill(catalog, root: Path, bar: bool = False) -> int:
    """Read the text of every indexed image that has none yet; commit every BATCH files or COMMIT_S
    seconds (a killed pass keeps what it committed). Returns the files read (failures included)."""
    from cliplab.data.ocr import unavailable_reason
    from cliplab.progress import progress_bar

    todo = missing(catalog)
    if not todo or unavailable_reason():
        return 0
    done, rows, since = 0, [], time.monotonic()
    with progress_bar(len(todo), "reading text in images", bar) as advance:
        for fid, rel in todo:
            rows.append((fid, *read_file(root / rel)))
            advance(1)
            if len(rows) >= BATCH or time.monotonic() - since > COMMIT_S:
                done, rows, since = done + _store(catalog, rows), [], time.monotonic()
        done += _store(catalog, rows)
    return done


def _store(catalog, rows: list[tuple[int, str, str]]) -> int:
    """One transaction: the `ocr` rows, and each text added to its file's keyword row (when that row
    exists; else `photos.fill` adds it when it writes the row)."""
    if not rows:
        return 0
    with catalog.write(bump=False) as w:
        for fid, text, engine in rows:
            w.con.execute(  # only while the file is still the one that was read
                "INSERT OR REPLACE INTO ocr(id, text, engine) SELECT ?, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM files WHERE id = ? AND status = 'ok')",
                (fid, text, engine, fid),
            )
            if text:
                w.con.execute(
                    "UPDATE keywords SET text = ltrim(text || char(10) || ?, char(10)) WHERE rowid = ?", (text, fid)
                )
    return len(rows)


def texts(catalog, ids: list[int]) -> dict[int, str]:
    """id → the text read from it, for the ids that have some."""
    out: dict[int, str] = {}
    ids = [int(i) for i in ids]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        q = f"SELECT id, text FROM ocr WHERE text != '' AND id IN ({', '.join('?' * len(chunk))})"
        out.update((int(i), t) for i, t in catalog.con.execute(q, chunk))
    return out


def coverage(catalog) -> dict:
    """Whether the index reads text, and how many of its images have been read, hold text, failed."""
    con = catalog.con
    images = con.execute("SELECT COUNT(*) FROM files WHERE status = 'ok'").fetchone()[0]
    images -= con.execute("SELECT COUNT(DISTINCT file_id) FROM frames").fetchone()[0]  # videos: not read
    read, with_text, failed = con.execute(
        "SELECT COUNT(*), COALESCE(SUM(text != ''), 0), COALESCE(SUM(engine LIKE ?), 0) FROM ocr",
        (FAILED + "%",),
    ).fetchone()
    from cliplab.data.ocr import unavailable_reason

    out = {"enabled": enabled(catalog), "images": images, "read": read - failed, "with_text": with_text}
    out["failed"] = failed
    if out["enabled"] and (why := unavailable_reason()):
        out["unavailable"] = why
    return out
