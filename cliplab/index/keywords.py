"""The keyword index: SQLite FTS5 (`keywords` table, schema 2) over each photo's words.

    name   the words of its path: folders and file name, split at separators, case changes and
           letter/digit boundaries (`holiday-2019/IMG_2041.jpg` → holiday 2019 img 2041)
    text   its caption (a `.txt` file beside it, clip-retrieval's convention) and EXIF text

Filled with the photo metadata (`photos.fill`), dropped with it when the file changes. A user's
query never reaches FTS5's syntax: it is cut into words (stop words dropped), each quoted, so
`"a" OR 1=1 --` stays plain words. A match holds at least two of the query's words (the one word
of a one-word query): a document sharing one common word with a photo's caption ("street") is no
match, a caption sharing two is. The files holding every word come first (a document's phrase),
then BM25 orders the rest (a word in the name weighs more than one in the text). The rule was chosen
by `benchmarks/hybrid_search.py --rules` and `benchmarks/ocr_bench.py --rules` (docs/benchmarks.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

NAME_WEIGHT, TEXT_WEIGHT = 2.0, 1.0
MAX_WORDS = 32  # of a query
# The keyword-match rule (benchmarks/hybrid_search.py and ocr_bench.py --rules compare the choices):
MIN_WORDS = 2  # a match holds at least this many of the query's words (all of a shorter query)
EVERY_WORD_FIRST = True  # the files holding every word come first, then BM25 (a document's phrase)
_WORD = re.compile(r"\w+", re.UNICODE)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")
# Words too common to say anything: a query's "a", "the", "on" would match nearly every caption, and
# one-character pieces (the "c", "9" of a hashed file name) nearly every name.
STOPWORDS = frozenset(
    "a an the of on in at to and or with is are was be for by from as it its this that into over under "
    "while his her their there some".split()
)


def path_words(rel: str) -> str:
    """'holiday-2019/IMG_2041.jpg' → 'holiday 2019 IMG 2041' (the extension is a type, not a word)."""
    p = Path(rel)
    parts = [*p.parent.parts, p.stem] if str(p.parent) != "." else [p.stem]
    return " ".join(w for part in parts for w in _split(part))


def sidecar_caption(path: Path) -> str:
    side = path.with_suffix(".txt")
    try:
        return side.read_text(encoding="utf-8", errors="replace").strip()[:10_000] if side.is_file() else ""
    except OSError:
        return ""


_HASH = re.compile(r"(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{8,}", re.I)


def _split(text: str) -> list[str]:
    """Words at separators, case changes and letter/digit boundaries; one-character pieces dropped.
    A hash (8+ hex digits with letters and digits, as in 1000268201_693b08cb0e) stays one word: its
    pieces ("b", "cb", "0e") would match unrelated words."""
    out = []
    for w in _WORD.findall(str(text).replace("_", " ")):
        out += [w] if _HASH.fullmatch(w) else [x for x in _CAMEL.sub(" ", w).split() if len(x) > 1]
    return out


def _words(text: str) -> list[str]:
    return [w.lower() for w in _split(text)]


def query_words(text: str) -> list[str]:
    """The words of a query that say something: lower case, no stop words, no repeats, at most 32."""
    return list(dict.fromkeys(w for w in _words(text) if w not in STOPWORDS))[:MAX_WORDS]


def quoted(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def fts_query(text: str) -> str | None:
    """Free text → a safe FTS5 query: its words (not stop words), each quoted, joined by OR (None:
    no such words)."""
    return " OR ".join(quoted(w) for w in query_words(text)) or None


def looks_like_a_name(text: str) -> bool:
    """One word with a digit, '_', '-' or '.' in it (IMG_4711, DSC01234, beach_day): a file name."""
    t = str(text).strip()
    return bool(t) and " " not in t and any(c.isdigit() or c in "_-." for c in t) and bool(_words(t))


def name_phrase_query(text: str) -> str | None:
    """The words of `text` as one phrase in the name column: the file names that contain it."""
    words = _words(text)[:MAX_WORDS]
    return 'name : "' + " ".join(words) + '"' if words else None  # \w+ words: nothing to escape


def search(
    catalog,
    text: str,
    k: int,
    where: str = "",
    args: list | tuple = (),
    photos_join: bool = False,
    names: bool = False,
):
    """(ids, scores, held) of the k best keyword matches (score = -BM25: higher is better; held: the
    share of the query's words each file holds), restricted by `where`/`args` (' AND …' over files
    f and photos p, as `sql.where_clause` and `Filters.sql` make). A match holds at least MIN_WORDS
    of the words; with EVERY_WORD_FIRST the files holding all of them come first.
    `names`: only files whose name holds the words of `text` as a phrase (held: 1)."""
    join = " JOIN photos p ON p.id = f.id" if photos_join else ""
    base = (
        f"FROM keywords JOIN files f ON f.id = keywords.rowid JOIN vectors v ON v.id = f.id{join} "
        "WHERE keywords MATCH ?"
    )
    bm25 = f"-bm25(keywords, {NAME_WEIGHT}, {TEXT_WEIGHT})"
    if names:
        q, n = name_phrase_query(text), 1
        sql = f"SELECT f.id, {bm25} AS s, 1 AS m {base}{where} ORDER BY s DESC, f.id LIMIT ?"
        params = [q, *args, int(k)]
    else:
        words = query_words(text)
        q, n = " OR ".join(quoted(w) for w in words), len(words)
        # m: how many of the words the row holds (each subquery runs once; SQLite keeps its rowids)
        m = " + ".join(["(keywords.rowid IN (SELECT rowid FROM keywords WHERE keywords MATCH ?))"] * n) or "0"
        first = f"m >= {n} DESC, " if EVERY_WORD_FIRST else ""
        sql = f"SELECT f.id, {bm25} AS s, {m} AS m {base} AND m >= ?{where} ORDER BY {first}s DESC, f.id LIMIT ?"
        params = [*map(quoted, words), q, min(MIN_WORDS, n), *args, int(k)]
    if not q:
        return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32)
    rows = catalog.con.execute(sql, params).fetchall()
    return (
        np.array([r[0] for r in rows], np.int64),
        np.array([r[1] for r in rows], np.float32),
        np.array([r[2] / n for r in rows], np.float32),
    )
