"""keyword and hybrid search on an index built from embeddings: its rows' captions stand in for a
folder's keyword index (`index/captions.py`), fused with the semantic ranking as for folders."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import cliplab.cli.index as cli_index
from cliplab.cli import app
from cliplab.errors import QueryError
from cliplab.index.shards import ShardsIndex
from cliplab.search import parse, run
from cliplab.search.query import RRF_K
from tests.helpers import ToyEncoder
from tests.index.test_captions import caption_index


@pytest.fixture
def idx(tmp_path):
    with ShardsIndex(caption_index(tmp_path), encoder=ToyEncoder()) as index:
        yield index


def test_keyword_mode_ranks_the_captions_by_their_words(idx):
    info: dict = {}
    hits = run(idx, parse("black dog grass"), k=5, mode="keyword", info=info)
    assert info["mode"] == "keyword" and [h.id for h in hits][:1] == [0] and {h.id for h in hits} == {0, 4, 7}
    assert [h.rank for h in hits] == [1, 2, 3] and hits[0].score == round(1 / (RRF_K + 1), 6)
    assert hits[0].caption == CAPTION_0 and hits[0].path == "/photos/0.jpg"
    assert run(idx, parse("zebra"), k=5, mode="keyword") == []


CAPTION_0 = "a black dog runs on the grass"


def test_hybrid_fuses_the_semantic_and_keyword_rankings(idx):
    sem = run(idx, parse("a dog on the beach"), k=8)  # default: semantic (the toy text vectors)
    assert sem[0].id == 2 and sem[0].score == pytest.approx(1.0, abs=1e-3)  # stored as float16
    hybrid = run(idx, parse("a dog on the beach"), k=8, mode="hybrid")
    # row 2 is first in both lists; every semantic hit is in the fused list, keyword-only rows too
    assert hybrid[0].id == 2 and hybrid[0].score == round(2 / (RRF_K + 1), 6)
    assert {h.id for h in hybrid} == {h.id for h in sem}
    assert [h.rank for h in hybrid] == list(range(1, len(hybrid) + 1))
    # no keyword match: the semantic ranking with its cosines
    assert [(h.id, h.score) for h in run(idx, parse("zebra"), k=3, mode="hybrid")] == [
        (h.id, h.score) for h in run(idx, parse("zebra"), k=3)
    ]


def test_what_such_an_index_cannot_do_is_one_clear_error(idx):
    from cliplab.index.filters import make_filters

    with pytest.raises(QueryError, match="give the query some text"):
        run(idx, parse("like:1"), k=3, mode="keyword")
    with pytest.raises(QueryError, match="no folder tree or photo metadata"):
        run(idx, parse("dog"), k=3, mode="keyword", under="sub")
    with pytest.raises(QueryError, match="no folder tree or photo metadata"):
        run(idx, parse("dog"), k=3, mode="hybrid", filters=make_filters(camera="canon"))
    with pytest.raises(QueryError, match="photo dates"):
        run(idx, parse("dog"), k=3, mode="keyword", sort="date")
    with pytest.raises(QueryError, match="unknown mode"):
        run(idx, parse("dog"), k=3, mode="fuzzy")


def test_cli_keyword_search_on_an_index_built_from_embeddings(tmp_path, monkeypatch):
    index = caption_index(tmp_path)
    fake = lambda spec, *a, **k: ToyEncoder()  # noqa: E731
    monkeypatch.setattr(cli_index, "load_model", fake)
    monkeypatch.setattr(cli_index, "model_loader", lambda *a, **k: fake)
    base = ["search", "black dog grass", "--index", str(index), "--json", "-k", "5"]
    r = CliRunner().invoke(app, [*base, "--mode", "keyword"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [h["id"] for h in out["results"]][0] == 0 and {h["id"] for h in out["results"]} == {0, 4, 7}
    r = CliRunner().invoke(app, [*base, "--mode", "hybrid"])
    assert r.exit_code == 0 and json.loads(r.stdout)["results"][0]["id"] == 0
    r = CliRunner().invoke(app, [*base, "--mode", "keyword", "--camera", "canon"])
    assert r.exit_code == 2 and "error:" in r.stderr and "no photo metadata" in r.stderr
    r = CliRunner().invoke(app, ["search", "zebra", "--index", str(index), "--mode", "keyword"])
    assert r.exit_code == 0 and "no results" in r.stderr


def test_keyword_mode_on_an_index_without_captions_says_so(tmp_path):
    with ShardsIndex(caption_index(tmp_path, [None, None]), encoder=ToyEncoder()) as index:
        with pytest.raises(QueryError, match="holds no captions"):
            run(index, parse("dog"), k=3, mode="keyword")
        assert [h.id for h in run(index, parse("dog"), k=3, mode="hybrid")] == [h.id for h in run(index, parse("dog"))]
