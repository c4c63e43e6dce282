"""Query expressions: rclip's syntax parsed into weighted terms, and the one combination rule."""

from __future__ import annotations

import numpy as np
import pytest

from cliplab.errors import QueryError
from cliplab.search.expression import MAX_TERMS, Term, combine, describe, parse


def kinds(expr, **kw):
    return [(t.kind, t.value, t.weight) for t in parse(expr, **kw)]


def test_terms_signs_and_weights():
    assert kinds('"beach" + "sunset" - "people"') == [
        ("text", "beach", 1.0),
        ("text", "sunset", 1.0),
        ("text", "people", -1.0),
    ]
    assert kinds('2:"golden retriever" + 0.5:like:123 - fruit') == [
        ("text", "golden retriever", 2.0),
        ("like", "123", 0.5),
        ("text", "fruit", -1.0),
    ]
    assert kinds("- cars + red") == [("text", "cars", -1.0), ("text", "red", 1.0)]


def test_words_keep_their_dashes_and_quotes_their_signs():
    assert kinds("a t-shirt with -5 % off") == [("text", "a t-shirt with -5 % off", 1.0)]
    assert kinds('"salt + pepper" - "a - b"') == [("text", "salt + pepper", 1.0), ("text", "a - b", -1.0)]
    assert kinds('"10:30 meeting"') == [("text", "10:30 meeting", 1.0)]  # a weight stands outside the quotes
    assert kinds('"like:5"') == [("text", "like:5", 1.0)]  # quoted: text, not an id
    assert kinds('"a" OR 1=1 --') == [("text", '"a" OR 1=1 --', 1.0)]  # not one quoted string: text as typed


def test_images_only_where_the_caller_says_so(tmp_path):
    photo = tmp_path / "pool.jpg"
    photo.write_bytes(b"x")
    is_image = lambda v: v.startswith("https://") or v == str(photo)  # noqa: E731
    assert kinds(f"dog + {photo} - https://example.org/x.jpg", image_ref=is_image) == [
        ("text", "dog", 1.0),
        ("image", str(photo), 1.0),
        ("image", "https://example.org/x.jpg", -1.0),
    ]
    assert kinds(f"dog + {photo}")[1][0] == "text"  # the server passes no image_ref: no paths there


@pytest.mark.parametrize(
    ("expr", "needle"),
    [
        ('"beach + sunset', "unbalanced quotes"),
        ("a + + b", "two signs in a row"),
        ("a -", "and no term after it"),
        ("   ", "empty query"),
        ("- a - b", "every term is subtracted"),
        ("0:a + b", "non-zero"),
        ("like:abc", "whole number"),
        ('2:"a', "unbalanced quotes"),
        ('""', "empty quoted term"),
        ("2:", "needs a term"),
        (" + ".join(["cat"] * (MAX_TERMS + 1)), f"at most {MAX_TERMS}"),
    ],
)
def test_bad_expressions_are_one_clear_error(expr, needle):
    with pytest.raises(QueryError, match=needle) as ei:
        parse(expr)
    assert "\n" not in str(ei.value)


def test_describe_round_trips():
    for expr in ['"beach" + 2:"sunset" - like:7', '- "cars" + 0.5:"red"', '"a t-shirt"']:
        terms = parse(expr)
        assert parse(describe(terms)) == terms


def test_combine_is_the_normalised_weighted_sum_of_unit_vectors():
    a, b = np.array([3.0, 0, 0]), np.array([0, 0.5, 0])  # not unit: each term counts once, whatever its norm
    q = combine(np.stack([a, b]), [2.0, -1.0])
    np.testing.assert_allclose(q, np.array([2.0, -1.0, 0]) / np.sqrt(5), rtol=1e-6)
    assert q.dtype == np.float32
    with pytest.raises(QueryError, match="cancel out"):
        combine(np.stack([a, a]), [1.0, -1.0])


def test_terms_are_plain_data():
    assert Term("text", "x", -2.0).as_dict() == {"kind": "text", "value": "x", "weight": -2.0}
