"""`--sort date|-date`: date order among the photos relevant to the query (a per-query cut-off)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cliplab.errors import QueryError
from cliplab.index import photos
from cliplab.search import parse, run
from cliplab.search.sort import cutoff, typical_score
from tests.index.helpers import TinyEncoder


@pytest.fixture
def col(dated_collection):
    return dated_collection


def dates(col, hits):
    got = photos.get(col.catalog, [h.id for h in hits])
    return [got[h.id]["taken_at"] for h in hits]


def test_date_order_among_the_relevant(col):
    info: dict = {}
    q = parse("sunset")
    hits = run(col, q, k=50, sort="date", info=info)
    assert dates(col, hits) == sorted(dates(col, hits)) and [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert 0 < info["relevant"] == len(hits) < 36  # a cut-off, not everything
    assert all(h.score >= info["cutoff"] for h in hits)
    vec = col.encoder().encode_texts(["sunset"])[0]
    assert info["cutoff"] == pytest.approx(cutoff(info["top"], typical_score(col, vec)), abs=1e-6)
    newest = run(col, q, k=50, sort="-date")
    assert dates(col, newest) == sorted(dates(col, hits), reverse=True)
    assert len(run(col, q, k=3, sort="date")) == 3


def test_keyword_matches_sort_by_date_as_they_are(col):
    hits = run(col, parse("IMG"), k=100, mode="keyword", sort="-date")
    assert len(hits) == 32 and dates(col, hits) == sorted(dates(col, hits), reverse=True)


def test_bad_sort_is_a_query_error(col):
    with pytest.raises(QueryError, match="unknown sort 'size'"):
        run(col, parse("x"), sort="size")


def test_cli_shows_the_cut_off(col, monkeypatch):
    import cliplab.cli.index as cli_index
    from cliplab.cli import app

    monkeypatch.setattr(cli_index, "load_model", lambda spec, *a, **k: TinyEncoder())
    col.close()
    base = ["search", "sunset", "--dir", str(col.folder), "--no-update", "--sort", "-date"]
    r = CliRunner().invoke(app, [*base, "--format", "table"])
    assert r.exit_code == 0 and "newest first among" in r.output and "(cosine ≥ " in r.output, r.output
    out = json.loads(CliRunner().invoke(app, [*base, "--json"]).stdout)
    assert out["sort"]["by"] == "-date" and out["sort"]["relevant"] >= len(out["results"])
