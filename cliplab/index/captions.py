"""The keyword index of an index built from embeddings: SQLite FTS5 over its rows' captions.

`captions.db` beside `index.faiss` holds one FTS5 table, `captions(text)`, whose rowid is the
row's global id, so a keyword hit leads to its metadata as a vector hit does. Built with the index
(`large.build_from_embeddings`); an index built before this file existed gets it on first use, in
place, read from the shards' metadata (the `caption` column of clip-retrieval's layout) — never by
re-embedding. Queries follow the folder keyword index's match rule and take its words
(`keywords.query_words`, quoted): a user's text is cut into words, never FTS5 syntax.
"""

from __future__ import annotations

import contextlib
import sqlite3
from itertools import combinations
from pathlib import Path
from typing import Sequence

import numpy as np

from cliplab.data.atomic import atomic_path
from cliplab.index import keywords

CAPTIONS_FILE = "captions.db"
_SCHEMA = "CREATE VIRTUAL TABLE captions USING fts5(text, tokenize='unicode61 remove_diacritics 2')"


def build(index_dir: str | Path, table, ok: Sequence[np.ndarray]) -> int:
    """Write `index_dir/captions.db` from the shards of `table` (a `large.ShardTable`), the rows of
    `ok` (per shard, the global ids in the index) that have a caption; returns how many. Written
    under a temp name and renamed, so a reader never sees half of it."""
    with atomic_path(Path(index_dir) / CAPTIONS_FILE) as tmp:
        con = sqlite3.connect(tmp)
        try:
            con.execute("PRAGMA journal_mode=OFF")  # a fresh temp file: nothing to roll back to
            con.execute(_SCHEMA)
            for p, ids in enumerate(ok):
                shard = table.shards[p]
                if not len(ids) or "caption" not in _columns(shard):
                    continue
                captions = shard.metadata(["caption"])["caption"].to_numpy(dtype=object)
                rows = ((int(i), str(c)) for i, c in zip(ids, captions[ids - table.offsets[p]]) if _text(c))
                con.executemany("INSERT INTO captions(rowid, text) VALUES (?, ?)", rows)
            con.commit()
            n = int(con.execute("SELECT count(*) FROM captions").fetchone()[0])
        finally:
            con.close()
    return n


def _columns(shard) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.ParquetFile(shard.paths["meta"]).schema_arrow.names)


def _text(c) -> bool:
    return isinstance(c, str) and bool(c.strip())


def exists(index_dir: str | Path) -> bool:
    return (Path(index_dir) / CAPTIONS_FILE).is_file()


def count(index_dir: str | Path) -> int:
    with _reader(index_dir) as con:
        return int(con.execute("SELECT count(*) FROM captions").fetchone()[0])


def search(index_dir: str | Path, text: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(global ids, scores) of the k captions that match the words of `text` best (score = -BM25 of
    the query's words: higher is better; ties by id), by the folder keyword index's rule
    (`keywords.search`): a match holds at least MIN_WORDS of the words (the one word of a one-word
    query), and with EVERY_WORD_FIRST the captions holding every word come first — a cheap first query
    (posting-list intersections) that is enough when k captions hold them all. A common word alone
    never makes a row a match, so far fewer rows get ranked (over 1M captions "dog" is in 194k rows)."""
    words = keywords.query_words(text)  # the rule's owner: read at each query, never copied
    if not words or k < 1:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    need = min(keywords.MIN_WORDS, len(words))
    quoted = [keywords.quoted(w) for w in words]
    sql = "SELECT rowid, -bm25(captions) AS s FROM captions WHERE captions MATCH ? ORDER BY s DESC, rowid LIMIT ?"
    rows: list = []
    with _reader(index_dir) as con:
        if keywords.EVERY_WORD_FIRST or need == len(words):
            rows = con.execute(sql, (" AND ".join(quoted), int(k))).fetchall()
        if len(rows) < k and need < len(words):
            # the rows holding any `need` of the words (an OR of ANDs: posting-list intersections),
            # ranked by BM25 of all the words as the folder's query ranks them (the OR of ANDs' own
            # BM25 would count a word once per matching clause)
            some = " OR ".join("(" + " AND ".join(c) + ")" for c in combinations(quoted, need))
            seen = {r[0] for r in rows}
            more = con.execute(
                "WITH m(id) AS MATERIALIZED (SELECT rowid FROM captions WHERE captions MATCH ?) "
                "SELECT rowid, -bm25(captions) AS s FROM captions WHERE captions MATCH ? AND +rowid IN m "
                "ORDER BY s DESC, rowid LIMIT ?",
                (some, " OR ".join(quoted), int(k) + len(rows)),
            ).fetchall()
            rows += [r for r in more if r[0] not in seen][: k - len(rows)]
    return np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.float32)


def _reader(index_dir: str | Path) -> contextlib.closing:
    """A read-only connection for one query (cheap, and no connection shared between server threads)."""
    uri = f"{(Path(index_dir) / CAPTIONS_FILE).resolve().as_uri()}?mode=ro"
    return contextlib.closing(sqlite3.connect(uri, uri=True))
