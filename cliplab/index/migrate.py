"""The catalog's schema, by version, and the steps that upgrade an older catalog in place.

Each step runs in the same write transaction as the version bump, so a killed upgrade (even
SIGKILL) leaves the old schema and every row as they were; the next open tries again. Data that
a step makes room for (photo metadata) is filled in afterwards by `photos.fill`, never by
re-embedding. A catalog newer than this cliplab is refused with a clear error by `Catalog`.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 3

SCHEMA_1 = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files(
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a stale FAISS cache can't misname a file
    path TEXT NOT NULL UNIQUE,             -- relative to the folder, '/'-separated
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT,                             -- blake2b-128 of the content, NULL if unreadable
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error TEXT,
    indexed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_hash ON files(hash);
CREATE TABLE IF NOT EXISTS vectors(id INTEGER PRIMARY KEY, gen INTEGER NOT NULL, vec BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS vectors_gen ON vectors(gen);
CREATE TABLE IF NOT EXISTS removed(id INTEGER NOT NULL, gen INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS removed_gen ON removed(gen);
"""

# 2: what each photo says about itself (data/exif.py), one row per file, for filters and date sort,
# and its words for keyword search (index/keywords.py; rowid = files.id). Both rows are dropped
# whenever the file's row is written, and `photos.fill` reads them again.
SCHEMA_2 = """
CREATE TABLE IF NOT EXISTS photos(
    id INTEGER PRIMARY KEY,                -- = files.id
    taken_at TEXT,                         -- ISO 8601 as the camera wrote it (+offset when recorded)
    taken_from TEXT NOT NULL,              -- DateTimeOriginal | CreateDate | DateTime | mtime
    camera_make TEXT,
    camera_model TEXT,
    gps_lat REAL,
    gps_lon REAL,
    width INTEGER,                         -- as shown: after EXIF rotation
    height INTEGER,
    orientation TEXT,                      -- landscape | portrait | square
    format TEXT,
    file_size INTEGER NOT NULL,
    text TEXT NOT NULL DEFAULT ''          -- EXIF description, artist, copyright, user comment
);
CREATE INDEX IF NOT EXISTS photos_taken ON photos(taken_at);
CREATE VIRTUAL TABLE IF NOT EXISTS keywords USING fts5(name, text, tokenize='unicode61 remove_diacritics 2');
"""

# 3: the text read from a photo (OCR, `index --ocr`, index/ocr.py; '' when it has none) and the moments of
# a video (index/frames.py): one vector per sampled frame, under a vector id of its own (>= FRAME_ID_BASE,
# so never a files.id), the file's own vector being its poster frame.
SCHEMA_3 = """
CREATE TABLE IF NOT EXISTS ocr(
    id INTEGER PRIMARY KEY,                -- = files.id
    text TEXT NOT NULL,
    engine TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS frames(
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- the frame's vector id (vectors.id), never reused
    file_id INTEGER NOT NULL,              -- = files.id of its video
    t REAL NOT NULL                        -- seconds from the start
);
CREATE INDEX IF NOT EXISTS frames_file ON frames(file_id);
"""
FRAME_ID_BASE = 1 << 40  # frame vector ids start here: files.id never gets this far

STEPS = {2: SCHEMA_2, 3: SCHEMA_3}  # version → what turns the version before it into this one


def _run(con: sqlite3.Connection, script: str) -> None:
    for stmt in script.split(";"):
        if stmt.strip():
            con.execute(stmt)


def create(con: sqlite3.Connection) -> None:
    """Every table of the current version (inside the caller's transaction)."""
    _run(con, SCHEMA_1)
    for version in sorted(STEPS):
        _run(con, STEPS[version])


def upgrade(con: sqlite3.Connection, version: int) -> None:
    """From `version` to SCHEMA_VERSION inside the caller's transaction (the caller bumps the meta)."""
    for v in range(version + 1, SCHEMA_VERSION + 1):
        step(con, v)


def step(con: sqlite3.Connection, version: int) -> None:
    _run(con, STEPS[version])
