"""The moments of indexed videos: frame vector id ↔ (video, seconds), and search hits grouped by video.

A video is one `files` row (its own vector: the poster frame, so counts, filters, duplicates and
thumbnails treat it as any file) plus one `frames` row and vector per sampled frame (catalog.py
`Writer.put_video`). A search may meet several frames of one video: they become one hit, whose
moments are scored exactly over all the video's frames (≤ 200, a few µs), best first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from cliplab.index.catalog import from_blobs
from cliplab.index.migrate import FRAME_ID_BASE
from cliplab.index.results import Hit

MOMENTS = 3  # moments a video hit lists (its best first)


def _in(catalog, query: str, values: list) -> list[tuple]:
    out: list[tuple] = []
    for i in range(0, len(values), 500):
        chunk = values[i : i + 500]
        out += catalog.con.execute(f"{query} ({','.join('?' * len(chunk))})", chunk).fetchall()
    return out


def owners(catalog, ids: Sequence[int]) -> dict[int, tuple[int, float]]:
    """frame vector id → (file id of its video, seconds), for the ids that are frames."""
    frames = [int(i) for i in ids if int(i) >= FRAME_ID_BASE]
    rows = _in(catalog, "SELECT id, file_id, t FROM frames WHERE id IN", frames) if frames else []
    return {int(i): (int(f), float(t)) for i, f, t in rows}


def videos(catalog, file_ids: Sequence[int]) -> set[int]:
    """Which of these files are videos (have frames)."""
    rows = _in(catalog, "SELECT DISTINCT file_id FROM frames WHERE file_id IN", sorted({int(i) for i in file_ids}))
    return {int(r[0]) for r in rows}


def moments_of(catalog, file_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(seconds, unit vectors) of every sampled frame of a video, in time order."""
    rows = catalog.con.execute(
        "SELECT fr.t, v.vec FROM frames fr JOIN vectors v ON v.id=fr.id WHERE fr.file_id=? ORDER BY fr.t",
        (int(file_id),),
    ).fetchall()
    return np.array([r[0] for r in rows], np.float64), from_blobs([r[1] for r in rows], catalog.dim or 0)


def poster_time(catalog, file_id: int) -> float:
    """The moment a video's own (poster) vector was taken from: the frame whose vector it copies."""
    row = catalog.con.execute(
        "SELECT fr.t FROM frames fr JOIN vectors v ON v.id=fr.id JOIN vectors pv ON pv.id=fr.file_id "
        "WHERE fr.file_id=? AND v.vec=pv.vec ORDER BY fr.t LIMIT 1",
        (int(file_id),),
    ).fetchone()
    return float(row[0]) if row else 0.0


def counts(catalog, under: str | None = None) -> dict[str, int]:
    """Indexed videos and their sampled frames (below `under`)."""
    from cliplab.index.sql import where_clause

    where, args = where_clause(under, None)
    q = f"SELECT COUNT(DISTINCT fr.file_id), COUNT(*) FROM frames fr JOIN files f ON f.id=fr.file_id WHERE 1{where}"
    n_videos, n_frames = catalog.con.execute(q, args).fetchone()
    return {"videos": int(n_videos or 0), "frames": int(n_frames or 0)}


def as_hits(catalog, folder: Path, scores, ids, k: int, threshold, exclude, query=None) -> list[Hit]:
    """Ranked (score, vector id) pairs → at most k hits, one per file: a frame counts for its video,
    whose best moment (scored exactly against `query` when given) sets its place."""
    ids = [int(i) for i in ids]
    frame_of = owners(catalog, [i for i in ids if i >= 0])
    file_ids = [frame_of[i][0] if i in frame_of else i for i in ids]
    paths = catalog.paths([f for f in file_ids if f >= 0])
    exclude = {int(i) for i in exclude}
    hits: list[Hit] = []
    for s, i, fid in zip(scores, ids, file_ids):
        rel = paths.get(fid)
        if i < 0 or rel is None or fid in exclude or (threshold is not None and s < threshold):
            continue
        if any(h.id == fid for h in hits):
            continue
        hits.append(Hit(len(hits) + 1, round(float(s), 6), str(folder / rel), rel, fid))
        if len(hits) == k:
            break
    return with_moments(catalog, hits, query)


def with_moments(catalog, hits: list[Hit], query=None, rerank: bool = True) -> list[Hit]:
    """Video hits get `media`, `timestamp` and `moments`: scored against `query` when given (and,
    with `rerank`, the hit takes its best moment's cosine and place), else the poster's moment."""
    vids = videos(catalog, [h.id for h in hits])
    if not vids:
        return hits
    q = None if query is None else np.asarray(query, np.float32).reshape(-1)
    for h in hits:
        if h.id not in vids:
            continue
        h.media = "video"
        times, vecs = moments_of(catalog, h.id)
        if q is None or not len(times):
            h.timestamp = poster_time(catalog, h.id)
            h.moments = [{"timestamp": h.timestamp, "score": None}]
            continue
        sc = vecs @ q
        order = np.argsort(-sc, kind="stable")[:MOMENTS]
        h.moments = [{"timestamp": round(float(times[j]), 3), "score": round(float(sc[j]), 6)} for j in order]
        h.timestamp = h.moments[0]["timestamp"]
        if rerank:
            h.score = max(h.score, h.moments[0]["score"])
    if rerank and q is not None:
        hits.sort(key=lambda h: -h.score)
        for r, h in enumerate(hits, 1):
            h.rank = r
    return hits


def timecode(seconds: float) -> str:
    """83.0 → '00:01:23' (as the CLI prints a moment)."""
    s = int(round(max(0.0, float(seconds))))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
