"""The caption keyword index of an index built from embeddings follows the folder keyword index's
match rule (`keywords.py`): two of the query's words (the one word of a one-word query), every word first."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cliplab.index import captions, keywords
from tests.helpers import ToyEncoder

CAPTIONS = [
    "a black dog runs on the grass",  # 0: every word of "black dog grass"
    "a black cat sleeps",  # 1: one word
    "a dog on the beach",  # 2: one word
    "the grass is green",  # 3: one word
    "black dog, black dog, black dog",  # 4: two words
    None,  # 5: no caption
    "a brown dog runs",  # 6: one word
    "grass and a black horse",  # 7: two words
]


def caption_index(tmp_path: Path, texts: list = CAPTIONS) -> Path:
    """A small index built from embeddings whose rows have these captions (toy vectors of them)."""
    from cliplab.data.writers import write_shard
    from cliplab.data.writers import write_shards_manifest as write_manifest
    from cliplab.index.large import build_from_embeddings

    emb, idx = tmp_path / "emb", tmp_path / "idx"
    rows = pd.DataFrame(
        {"image_path": [f"/photos/{i}.jpg" for i in range(len(texts))], "caption": texts, "status": "ok"}
    )
    vectors = ToyEncoder().encode_texts([c or "nothing" for c in texts])
    write_shard(emb, 0, vectors, rows)
    write_manifest(emb, {"model": "toy", "model_info": None})
    assert build_from_embeddings([emb], idx)["captions"] == sum(c is not None for c in texts)
    return idx


@pytest.fixture
def idx(tmp_path):
    return caption_index(tmp_path)


def _or_bm25(idx: Path, text: str) -> dict[int, float]:
    """-BM25 of every row holding any word: the folder's keyword ranking of the same words."""
    q = keywords.fts_query(text)
    with sqlite3.connect(idx / captions.CAPTIONS_FILE) as con:
        sql = "SELECT rowid, -bm25(captions) FROM captions WHERE captions MATCH ?"
        return dict(con.execute(sql, (q,)).fetchall())


def test_a_match_holds_two_of_the_words_and_every_word_comes_first(idx):
    ids, scores = captions.search(idx, "Black DOG on the grass?", 10)
    assert ids[0] == 0 and set(ids.tolist()) == {0, 4, 7}  # 1, 2, 3, 6 hold one word only
    bm25 = _or_bm25(idx, "black dog grass")
    np.testing.assert_allclose(scores, [bm25[i] for i in ids.tolist()], rtol=1e-5)  # the folder's scores
    assert scores[1] >= scores[2]  # after the every-word rows: BM25
    assert captions.search(idx, "cat", 10)[0].tolist() == [1]  # a one-word query: that word
    assert captions.search(idx, "cat zebra", 10)[0].tolist() == []  # one word of two is not a match
    assert captions.search(idx, "the a of", 10)[0].tolist() == []  # stop words only
    assert captions.search(idx, "black dog grass", 1)[0].tolist() == [0]


def test_the_rule_has_one_owner(idx, monkeypatch):
    monkeypatch.setattr(keywords, "MIN_WORDS", 1)  # the any-word rule, were keywords.py to choose it
    assert set(captions.search(idx, "cat zebra", 10)[0].tolist()) == {1}
    assert len(captions.search(idx, "black dog grass", 10)[0]) == 7


def test_user_text_is_words_never_fts_syntax(idx):
    for text in ['"black" OR dog', "dog NEAR(black)", "black* dog -", "'; DROP TABLE captions; --"]:
        ids, _ = captions.search(idx, text, 5)
        assert set(ids.tolist()) <= {0, 4, 7}, text
