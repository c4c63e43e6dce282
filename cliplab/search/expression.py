"""Query expressions, rclip's syntax: `"beach" + "sunset" - "people"`, `2:"golden retriever" + ./pool.jpg`.

An expression is terms joined by ` + ` and ` - ` (the signs stand apart, so "t-shirt" stays one
word). A term is a quoted or bare text, an image (a file path or an http(s) URL, where the caller
allows them), or `like:ID` (an indexed image), with an optional weight before it: `2:"sunset"`,
`0.5:like:123`. The query vector is the weighted sum of the terms' unit vectors, normalised (as
rclip does); a term after ` - ` counts with a negative weight.

Pure functions: parsing knows nothing of models or indexes (`query.py` runs a parsed query).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from cliplab.errors import QueryError

MAX_TERMS = 16
_WEIGHT = re.compile(r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?):(.*)", re.S)
_LIKE = re.compile(r"like:(\S+)")


@dataclass(frozen=True)
class Term:
    kind: str  # "text" | "image" | "like"
    value: str  # the text, the image path or URL, or the indexed image's id
    weight: float = 1.0  # signed: a term after " - " is negative
    # the term's vector when the caller already has it (a server encodes uploads and texts itself)
    vector: Any = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "value": self.value, "weight": self.weight}


def _apart(expr: str, i: int) -> bool:
    """A + or - stands apart (space or an end on both sides): a sign, not part of a word."""
    return (i == 0 or expr[i - 1].isspace()) and (i + 1 == len(expr) or expr[i + 1].isspace())


def _split(expr: str) -> list[tuple[int, str]]:
    """(sign, raw term) for each term; quotes protect the signs inside them."""
    parts: list[tuple[int, str]] = []
    sign, buf, in_quote, pending = 1, [], False, False
    for i, c in enumerate(expr):
        if c == '"':
            in_quote = not in_quote
        elif not in_quote and c in "+-" and _apart(expr, i):
            raw = "".join(buf).strip()
            if raw:
                parts.append((sign, raw))
            elif parts or pending:
                raise QueryError(f"two signs in a row at character {i + 1} of the query: put a term between them")
            sign, buf, pending = (1 if c == "+" else -1), [], True
            continue
        buf.append(c)
    if in_quote:
        raise QueryError('unbalanced quotes in the query: close every " you open')
    raw = "".join(buf).strip()
    if not raw:
        raise QueryError("the query ends with a + or - and no term after it" if pending else "empty query")
    parts.append((sign, raw))
    return parts


def _unquote(raw: str) -> tuple[str, bool]:
    """A term that is one quoted string → its text; anything else (quotes inside, or text around
    them, as in `"a" OR 1=1`) is plain text as typed: quotes are balanced by now."""
    if len(raw) >= 2 and raw[0] == raw[-1] == '"' and '"' not in raw[1:-1]:
        return raw[1:-1], True
    return raw, False


def parse(expr: str, image_ref: Callable[[str], bool] | None = None) -> list[Term]:
    """`expr` → its terms (QueryError with one line for anything malformed). `image_ref(value)` says
    whether a term names an image (a file that exists, a URL); without it every term is text or like:."""
    if expr is None or not str(expr).strip():
        raise QueryError('empty query: give some text, an image, or an expression like "beach" + "sunset"')
    terms = []
    for sign, raw in _split(str(expr)):
        weight = 1.0
        m = _WEIGHT.fullmatch(raw)
        if m and not raw.startswith('"'):
            weight, raw = float(m.group(1)), m.group(2).strip()
            if not raw:
                raise QueryError(f'{m.group(1)}: a weight needs a term after its colon, e.g. {m.group(1)}:"sunset"')
        if weight == 0 or not math.isfinite(weight):
            raise QueryError(f"weight {m.group(1) if m else weight}: give a non-zero number")
        value, quoted = _unquote(raw)
        if not value.strip():
            raise QueryError("an empty quoted term: put some text between the quotes")
        like = None if quoted else _LIKE.fullmatch(value)
        if like:
            if not like.group(1).isdigit() or len(like.group(1)) > 18:
                raise QueryError(f"{value}: like: takes an indexed image's id, a whole number (like:123)")
            terms.append(Term("like", like.group(1), sign * weight))
        elif image_ref is not None and image_ref(value):
            terms.append(Term("image", value, sign * weight))
        else:
            terms.append(Term("text", value, sign * weight))
    check(terms)
    return terms


def check(terms: Sequence[Term]) -> None:
    """The rules every query obeys, however its terms were given (expression, API list, --image)."""
    if not terms:
        raise QueryError("empty query: give some text or an image")
    if len(terms) > MAX_TERMS:
        raise QueryError(f"{len(terms)} terms in one query: at most {MAX_TERMS}")
    for t in terms:
        if t.kind not in ("text", "image", "like"):
            raise QueryError(f"unknown term kind {t.kind!r}: text, image or like")
        if not math.isfinite(t.weight) or t.weight == 0:
            raise QueryError(f"term {t.value!r}: its weight must be a non-zero number")
    if not any(t.weight > 0 for t in terms):
        raise QueryError("every term is subtracted: a query needs at least one term to look for")


def combine(vectors: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Σ weight · unit(vector), normalised: the query vector (QueryError when the terms cancel out)."""
    v = np.asarray(vectors, np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    q = (np.asarray(weights, np.float32)[:, None] * v).sum(axis=0)
    n = float(np.linalg.norm(q))
    if n < 1e-6:
        raise QueryError("the terms cancel out (their weighted sum is zero): change a weight or a term")
    return (q / n).astype(np.float32)


def describe(terms: Sequence[Term]) -> str:
    """The expression back in its canonical spelling (for headers and JSON)."""
    out = []
    for i, t in enumerate(terms):
        w = abs(t.weight)
        body = f"like:{t.value}" if t.kind == "like" else (t.value if t.kind == "image" else f'"{t.value}"')
        body = (f"{w:g}:" if w != 1 else "") + body
        out.append(body if i == 0 and t.weight > 0 else f"{'+' if t.weight > 0 else '-'} {body}")
    return " ".join(out)
