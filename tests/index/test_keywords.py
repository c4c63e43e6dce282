"""The keyword index (FTS5 over names, captions, EXIF text) and hybrid search (RRF with semantic)."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from PIL.ExifTags import Base
from typer.testing import CliRunner

from cliplab.errors import QueryError
from cliplab.index import Collection
from cliplab.index.filters import make_filters
from cliplab.index.keywords import fts_query, path_words
from cliplab.search import parse, run
from tests.index.helpers import TinyEncoder


def test_path_words():
    assert path_words("holiday-2019/IMG_2041.jpg") == "holiday 2019 IMG 2041"
    assert path_words("Screenshots/BeachDay2020.png") == "Screenshots Beach Day 2020"
    assert path_words("trip 2019/IMG_1.jpg") == "trip 2019 IMG"  # one-character pieces say nothing
    assert path_words("1000268201_693b08cb0e.jpg") == "1000268201 693b08cb0e"  # a hash stays whole
    assert path_words("DSC01234.JPG") == "DSC 01234"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("IMG_4711", '"img" OR "4711"'),
        ('"a" OR 1=1 --', None),  # user syntax is words, never FTS or SQL (and these are all too common)
        ("a dog ON the Beach", '"dog" OR "beach"'),  # stop words and one-letter pieces match everything
        ('NEAR(x y) "quote" col:abc *', '"near" OR "quote" OR "col" OR "abc"'),
        ("!!!", None),
    ],
)
def test_user_text_is_only_ever_words(text, want):
    assert fts_query(text) == want


@pytest.fixture
def col(tmp_path):
    folder = tmp_path / "photos"
    (folder / "holiday-2019").mkdir(parents=True)
    names = ["IMG_4711.jpg", "IMG_4712.jpg", "holiday-2019/beach_day.jpg", "receipt.jpg", "cat.jpg"]
    for i, name in enumerate(names):
        exif = Image.Exif()
        if name == "receipt.jpg":
            exif[Base.ImageDescription] = "Grocery receipt from the corner shop"
        Image.new("RGB", (32, 24), (50 * i, 90, 200 - 40 * i)).save(folder / name, exif=exif)
    (folder / "cat.txt").write_text("a ginger cat asleep on a windowsill")  # a caption beside the photo
    c = Collection(folder, encoder=TinyEncoder())
    c.update()
    yield c
    c.close()


def names(hits):
    return [h.relpath for h in hits]


def test_keyword_search_finds_names_captions_and_exif_text(col):
    assert names(run(col, parse("IMG_4711"), k=2, mode="keyword"))[0] == "IMG_4711.jpg"
    assert names(run(col, parse("beach"), k=5, mode="keyword")) == ["holiday-2019/beach_day.jpg"]
    assert names(run(col, parse("windowsill"), k=5, mode="keyword")) == ["cat.jpg"]
    assert names(run(col, parse("grocery shop"), k=5, mode="keyword")) == ["receipt.jpg"]
    assert run(col, parse('"a" OR 1=1 --'), k=5, mode="keyword") is not None  # plain words: no error
    with pytest.raises(QueryError, match="looks for words"):
        run(col, parse("like:1"), k=5, mode="keyword")


def test_keyword_search_honours_filters_and_folders(col):
    assert names(run(col, parse("holiday beach"), k=5, mode="keyword", under="holiday-2019")) == [
        "holiday-2019/beach_day.jpg"
    ]
    assert run(col, parse("beach"), k=5, mode="keyword", filters=make_filters(types="png")) == []


def test_hybrid_puts_a_file_name_first_and_keeps_semantic_results(col):
    for query in ("IMG_4712", "beach_day", "receipt"):
        hits = run(col, parse(query), k=5, mode="hybrid")
        assert query.split("_")[0].lower() in hits[0].relpath.lower()
        assert len(hits) == 5  # the semantic list fills the rest
    sem = run(col, parse("zzz nothing matches"), k=3, mode="semantic")
    assert run(col, parse("zzz nothing matches"), k=3, mode="hybrid") == sem  # no keyword match: the semantic hits
    like = parse(f"like:{sem[0].id}")
    info: dict = {}
    assert run(col, like, k=3, info=info) == run(col, like, k=3, mode="semantic")  # no words: cosines as they are
    assert info["mode"] == "hybrid"  # the default for a folder's index (benchmarks/hybrid_search.py)


def test_words_follow_the_file(col):
    (col.folder / "cat.txt").write_text("a tabby kitten")
    Image.new("RGB", (32, 24), "white").save(col.folder / "cat.jpg")  # changed: its words are read again
    col.update()
    assert names(run(col, parse("kitten"), k=5, mode="keyword")) == ["cat.jpg"]
    assert run(col, parse("windowsill"), k=5, mode="keyword") == []


def test_cli_mode(col, monkeypatch):
    import cliplab.cli.index as cli_index
    from cliplab.cli import app

    monkeypatch.setattr(cli_index, "load_model", lambda spec, *a, **k: TinyEncoder())
    col.close()
    base = ["search", "--dir", str(col.folder), "--no-update", "--json", "-k", "1"]
    r = CliRunner().invoke(app, [*base, "--mode", "keyword", "IMG_4711"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["mode"] == "keyword" and out["results"][0]["path"].endswith("IMG_4711.jpg")
    r = CliRunner().invoke(app, [*base, "--mode", "fuzzy", "x"])
    assert r.exit_code == 2 and "unknown mode 'fuzzy'" in r.stderr


def test_a_match_holds_two_of_the_words_and_user_syntax_stays_words(col, monkeypatch):
    from cliplab.index import keywords

    def found(text):
        ids, _, held = keywords.search(col.catalog, text, 10)
        paths = col.catalog.paths([int(i) for i in ids])
        return [(paths[int(i)], round(float(h), 2)) for i, h in zip(ids, held)]

    # cat.jpg's caption holds "ginger" and "windowsill", receipt.jpg's EXIF text "grocery" and "shop"
    assert found("ginger windowsill shop") == [("cat.jpg", 0.67)]  # receipt.jpg: one word of three
    assert found("shop grocery") == [("receipt.jpg", 1.0)]
    assert found("windowsill") == [("cat.jpg", 1.0)]  # a one-word query: that word
    # user syntax stays words: quotes, FTS operators and SQL are searched for as plain words
    assert found('ginger") OR 1=1; DROP TABLE files --') == []  # ginger, drop, table, files: 1 held
    assert found('"ginger" NEAR(windowsill*)') == [("cat.jpg", 0.67)]  # ginger, near, windowsill
    assert col.catalog.count_vectors() == 5
    monkeypatch.setattr(keywords, "MIN_WORDS", 1)  # any word (the rule before issue 22)
    assert found("ginger windowsill shop") == [("cat.jpg", 0.67), ("receipt.jpg", 0.33)]
    assert found('ginger") OR 1=1; DROP TABLE files --') == [("cat.jpg", 0.25)]


def test_one_shared_word_does_not_enter_the_fusion(col):
    """A receipt sharing one word ("corner") with a two-word photo query is no keyword match: hybrid
    gives the semantic ranking; holding both words, it comes first."""
    query = parse("corner zebra")
    assert run(col, query, k=5, mode="hybrid") == run(col, query, k=5, mode="semantic")
    assert names(run(col, parse("grocery corner"), k=5, mode="hybrid"))[0] == "receipt.jpg"
