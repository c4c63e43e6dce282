"""An id restriction in the filter model (a selection on the map): semantic, keyword and hybrid search
return only those photos, alone or with the other filters."""

from __future__ import annotations

from dataclasses import replace

import pytest

import cliplab.index.collection as collection_module
from cliplab.index.filters import Filters, make_filters
from cliplab.search import parse, run


@pytest.fixture
def col(dated_collection):
    return dated_collection


def chosen(col, every: int = 3) -> tuple[int, ...]:
    ids = sorted(col.catalog.ids_matching(None, None).tolist())
    return tuple(ids[::every])


@pytest.mark.parametrize("exact_max", [10_000, 3])  # the exact path, and FAISS with an id selector
@pytest.mark.parametrize("mode", ["semantic", "keyword", "hybrid"])
def test_only_the_chosen_ids_come_back(col, monkeypatch, exact_max, mode):
    monkeypatch.setattr(collection_module, "SEARCH_EXACT_MAX", exact_max)
    keep = chosen(col)
    hits = run(col, parse("img"), k=50, filters=Filters(ids=keep), mode=mode)
    assert hits and {h.id for h in hits} <= set(keep)
    if mode == "semantic":
        assert len(hits) == len(keep)  # every chosen photo, nothing else


def test_ids_with_other_filters_and_an_empty_selection(col):
    keep = chosen(col, 2)
    f = replace(make_filters(camera="nikon"), ids=keep)
    assert f.active and not Filters(ids=None).active and Filters(ids=()).active
    both = set(col.catalog.ids_matching(None, None, f).tolist())
    assert both == set(keep) & set(col.catalog.ids_matching(None, None, make_filters(camera="nikon")).tolist())
    assert both and {h.id for h in run(col, parse("img"), k=50, filters=f, mode="hybrid")} <= both
    assert run(col, parse("img"), k=5, filters=Filters(ids=()), mode="hybrid") == []
    assert col.count_under(filters=Filters(ids=keep)) == len(keep)
