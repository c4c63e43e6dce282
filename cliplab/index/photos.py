"""Photo metadata in the catalog (`photos` table, schema 2) and each photo's words (`keywords`,
index/keywords.py): filled from each file's header by `data/exif.py`, for the files that have none yet — new and changed files, and every file of an
index made before schema 2. Reading a header costs ~0.2 ms, so filling never decodes or embeds.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cliplab.data.exif import read_photo_meta
from cliplab.index.keywords import path_words, sidecar_caption
from cliplab.index.ocr import texts as ocr_texts

BATCH = 500
COLUMNS = (
    "taken_at",
    "taken_from",
    "camera_make",
    "camera_model",
    "gps_lat",
    "gps_lon",
    "width",
    "height",
    "orientation",
    "format",
    "file_size",
    "text",
)


def missing(catalog) -> list[tuple[int, str]]:
    """(id, relative path) of the indexed files without a metadata row."""
    q = "SELECT f.id, f.path FROM files f LEFT JOIN photos p ON p.id = f.id WHERE f.status = 'ok' AND p.id IS NULL"
    return [(int(i), str(p)) for i, p in catalog.con.execute(q + " ORDER BY f.id")]


def _read(root: Path, rel: str) -> tuple[tuple, tuple] | None:
    """(its photos row, its keywords row: name words and text) without the id."""
    try:
        m = read_photo_meta(root / rel)
    except OSError:  # gone since it was indexed: the next update drops it
        return None
    text = " ".join(t for t in (sidecar_caption(root / rel), m.text) if t)
    return tuple(getattr(m, c) for c in COLUMNS), (path_words(rel), text)


def fill(catalog, root: Path, bar: bool = False) -> int:
    """Read the metadata of every indexed file that has none; commit every BATCH files (a killed
    fill keeps what it committed). `bar`: a progress bar when it is long. Returns rows written."""
    from cliplab.progress import progress_bar

    todo = missing(catalog)
    done = 0
    with (
        ThreadPoolExecutor(max_workers=4) as pool,
        progress_bar(len(todo), "reading photo metadata", bar and len(todo) > 1000) as advance,
    ):
        for start in range(0, len(todo), BATCH):  # header reads: I/O and C code, threads overlap
            chunk = todo[start : start + BATCH]
            got = [(fid, r) for (fid, _), r in zip(chunk, pool.map(lambda t: _read(root, t[1]), chunk)) if r]
            with catalog.write(bump=False) as w:
                w.con.executemany(
                    f"INSERT OR REPLACE INTO photos(id, {', '.join(COLUMNS)}) VALUES ({', '.join('?' * (len(COLUMNS) + 1))})",
                    [(fid, *meta) for fid, (meta, _) in got],
                )
                w.con.executemany("DELETE FROM keywords WHERE rowid=?", [(fid,) for fid, _ in got])
                read = ocr_texts(catalog, [fid for fid, _ in got])  # text read before the words were (re)built
                w.con.executemany(
                    "INSERT INTO keywords(rowid, name, text) VALUES (?,?,?)",
                    [(fid, name, "\n".join(t for t in (text, read.get(fid)) if t)) for fid, (_, (name, text)) in got],
                )
            done += len(got)
            advance(len(chunk))
    return done


def coverage(catalog) -> dict[str, int]:
    """How many indexed files have metadata, and from which date field their date comes."""
    con = catalog.con
    total = con.execute("SELECT COUNT(*) FROM files WHERE status='ok'").fetchone()[0]
    by = dict(con.execute("SELECT taken_from, COUNT(*) FROM photos GROUP BY taken_from").fetchall())
    return {"with_metadata": sum(by.values()), "indexed": int(total), **{f"date_from_{k}": v for k, v in by.items()}}


def get(catalog, ids: list[int]) -> dict[int, dict]:
    """id → its metadata (only ids that have a row)."""
    out: dict[int, dict] = {}
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        q = f"SELECT id, {', '.join(COLUMNS)} FROM photos WHERE id IN ({', '.join('?' * len(chunk))})"
        for row in catalog.con.execute(q, chunk):
            out[int(row[0])] = dict(zip(COLUMNS, row[1:]))
    return out


def facets(catalog, limit: int = 50) -> dict:
    """What there is to filter by: years (with counts), cameras and file types, most common first."""
    con = catalog.con
    years = con.execute(
        "SELECT substr(taken_at, 1, 4) AS y, COUNT(*) FROM photos JOIN vectors v ON v.id = photos.id "
        "WHERE taken_at IS NOT NULL GROUP BY y ORDER BY y"
    ).fetchall()
    cameras = con.execute(
        "SELECT trim(coalesce(camera_make, '') || ' ' || coalesce(camera_model, '')) AS c, COUNT(*) AS n FROM photos "
        "JOIN vectors v ON v.id = photos.id WHERE camera_make IS NOT NULL OR camera_model IS NOT NULL "
        "GROUP BY c ORDER BY n DESC, c LIMIT ?",
        (limit,),
    ).fetchall()
    types: dict[str, int] = {}
    for (path,) in con.execute("SELECT f.path FROM files f JOIN vectors v ON v.id = f.id"):
        ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
        types[ext] = types.get(ext, 0) + 1
    orient = dict(
        con.execute("SELECT orientation, COUNT(*) FROM photos WHERE orientation IS NOT NULL GROUP BY orientation")
    )
    gps = con.execute("SELECT COUNT(*) FROM photos WHERE gps_lat IS NOT NULL").fetchone()[0]
    return {
        "years": [{"year": y, "count": n} for y, n in years],
        "cameras": [{"camera": c, "count": n} for c, n in cameras],
        "types": [{"type": t, "count": n} for t, n in sorted(types.items(), key=lambda kv: (-kv[1], kv[0])) if t],
        "orientations": orient,
        "with_gps": int(gps),
    }
