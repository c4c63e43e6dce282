"""The mistakes a new user makes with index/search: one `error:` line (exit 2) or the right thing, and
nothing stored lost, nothing indexed that the user did not name."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest
from typer.testing import CliRunner

import cliplab.cli.index as cli_index
from cliplab.cli.app import app
from cliplab.index import Collection
from tests.index.helpers import TinyEncoder, copy_images


@pytest.fixture
def run(monkeypatch):
    monkeypatch.setattr(cli_index, "load_model", lambda spec, *a, **k: TinyEncoder())
    runner = CliRunner()

    def invoke(*args, input=None):
        res = runner.invoke(app, [str(a) for a in args], input=input)
        return res.exit_code, res.stdout, res.stderr

    return invoke


def user_error(code, stderr, *words):
    """Exit 2 and exactly one line `error: …` that mentions every word."""
    assert code == 2, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    assert "Traceback" not in stderr
    for w in words:
        assert str(w) in lines[0], (w, lines[0])


def indexed_paths(index_dir) -> set[str]:
    con = sqlite3.connect(index_dir / "catalog.db")
    try:
        return {p for (p,) in con.execute("SELECT path FROM files")}
    finally:
        con.close()


def test_search_with_index_uses_its_folder_not_the_current_one(run, photos, shared, tmp_path, monkeypatch):
    idx = tmp_path / "idx"
    assert run("index", photos, "--index", idx)[0] == 0
    before = indexed_paths(idx)
    elsewhere = tmp_path / "home"  # the current folder holds other images: they must stay out
    copy_images(shared, elsewhere / "private", 3)
    (elsewhere / "private" / "img000.jpg").rename(elsewhere / "private" / "secret.jpg")
    monkeypatch.chdir(elsewhere)
    code, out, _ = run("search", "a red car", "--index", idx, "-k", 3, "--json")
    assert code == 0
    res = json.loads(out)
    assert res["folder"] == str(photos) and all(r["path"].startswith(str(photos)) for r in res["results"])
    assert indexed_paths(idx) == before
    code, out, _ = run("index", "--index", idx)  # `index --index DIR` updates the index's own folder
    assert code == 0 and str(photos) in out and indexed_paths(idx) == before


def test_index_option_without_catalog_is_an_error(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    user_error(*run("search", "q", "--index", tmp_path / "nothing")[::2], "nothing")
    assert not (tmp_path / "nothing" / "catalog.db").exists()


def test_first_implicit_index_of_a_big_folder_needs_yes_off_a_terminal(run, photos, shared, index_home, monkeypatch):
    monkeypatch.setattr(cli_index, "ASK_ABOVE", 10)  # 1,000 in use; 10 keeps the folder small
    monkeypatch.chdir(photos)
    code, out, err = run("search", "a red car")
    user_error(code, err, "holds 30 images", "--yes", "cliplab index")
    assert not index_home.exists() or not any(index_home.iterdir())  # no empty index left behind
    code, out, err = run("search", "a red car", "--yes", "-k", 2)
    assert code == 0 and "has no index yet: indexing 30 images" in err
    copy_images(shared, photos / "more", 15)  # an existing index catches up without asking
    code, out, err = run("search", "a red car", "-k", 2, "--json")
    assert code == 0 and "no index yet" not in err and len(json.loads(out)["results"]) == 2
    assert Collection(photos).status()["indexed"] == 45  # the folder's (lite) index


def test_on_a_terminal_a_big_first_index_is_asked_for(run, photos, index_home, monkeypatch):
    monkeypatch.setattr(cli_index, "ASK_ABOVE", 10)
    monkeypatch.setattr(cli_index, "_is_terminal", lambda: True)
    code, _, err = run("search", "a red car", "--dir", photos, input="n\n")
    assert code == 2 and "Index them now?" in err and "error: not indexed" in err
    assert not index_home.exists() or not any(index_home.iterdir())
    code, out, err = run("search", "a red car", "--dir", photos, input="y\n")
    assert code == 0 and Collection(photos).status()["indexed"] == 30
    code, out, err = run("index", photos, "--model", "conse")  # explicit: never asks, even for a new index
    assert code == 0 and "Index them now?" not in err and "30 images indexed" in out


def test_status_of_a_never_indexed_folder_creates_nothing(run, photos, index_home):
    code, out, err = run("index", photos, "--status")
    assert code == 0 and "not indexed" in out and not err
    code, out, _ = run("index", photos, "--status", "--json")
    assert json.loads(out) == {"folder": str(photos), "indexed": False}
    assert not index_home.exists() or not any(index_home.iterdir())


def test_broken_links_reported_and_linked_folders_followed(run, photos, shared, tmp_path):
    (photos / "gone.jpg").symlink_to(tmp_path / "missing.jpg")
    other = tmp_path / "other"
    copy_images(shared, other, 2)
    (photos / "linked").symlink_to(other)
    (photos / "loop").symlink_to(photos)  # a link to an ancestor must not loop
    code, out, _ = run("index", photos, "--json")
    assert code == 0
    res = json.loads(out)
    assert res["embedded"] == 32
    assert [f["path"] for f in res["failures"]] == ["gone.jpg"]
    assert "broken symbolic link" in res["failures"][0]["reason"]
    st = json.loads(run("index", photos, "--status", "--json")[1])
    assert st["indexed"] == 32 and st["failures"][0]["path"] == "gone.jpg"
    # once the target exists, the next run embeds it
    copy_images(shared, tmp_path / "t", 1)
    (tmp_path / "t" / "img000.jpg").rename(tmp_path / "missing.jpg")
    res = json.loads(run("index", photos, "--json")[1])
    assert res["embedded"] + res["reused"] == 1 and res["failed"] == 0


@pytest.mark.parametrize(
    "args, culprit",
    [
        (("search", "q", "-k", "0"), "--top-k"),
        (("search", "q", "--threshold", "2"), "--threshold"),
        (("index", "--batch-size", "0"), "--batch-size"),
        (("duplicates", "--threshold", "-3"), "--threshold"),
    ],
)
def test_numeric_options_checked_at_parse_time(run, photos, index_home, args, culprit, monkeypatch):
    monkeypatch.chdir(photos)
    code, _, err = run(*args)
    assert code == 2 and culprit in err and "Traceback" not in err
    assert not index_home.exists()  # rejected before anything was opened


def test_missing_query_image_named_before_indexing(run, photos, index_home, tmp_path):
    code, _, err = run("search", "--image", tmp_path / "nope.jpg", "--dir", photos)
    user_error(code, err, "nope.jpg", "file not found")
    (tmp_path / "notes.jpg").write_text("not an image")
    user_error(*run("search", "--image", tmp_path / "notes.jpg", "--dir", photos)[::2], "notes.jpg")
    assert not index_home.exists()  # checked before a (possibly long) first index


def test_under_that_matches_nothing_says_so(run, photos):
    (photos / "sub").mkdir()
    (photos / "img001.jpg").rename(photos / "sub" / "a.jpg")
    code, out, _ = run("search", "q", "--dir", photos, "--under", "./sub", "--json")
    assert code == 0 and [r["path"] for r in json.loads(out)["results"]] == [str(photos / "sub" / "a.jpg")]
    user_error(*run("search", "q", "--dir", photos, "--under", "./nope")[::2], "--under ./nope", "no such folder")
    (photos / "empty").mkdir()
    user_error(*run("search", "q", "--dir", photos, "--under", "empty")[::2], "no indexed images below")


def test_text_output_names_model_and_index_and_paths_mode(run, photos):
    code, out, _ = run("search", "q", "--dir", photos, "-k", 3, "--format", "table")
    header, *rows = out.splitlines()
    assert "model lite" in header and "index " in header and len(rows) == 3
    code, out, _ = run("search", "q", "--dir", photos, "-k", 3, "--paths")
    assert code == 0 and [os.path.isfile(p) for p in out.splitlines()] == [True] * 3


def test_changed_model_is_a_sentence_not_json(photos, tmp_path):
    Collection(photos, index_dir=tmp_path / "i", encoder=TinyEncoder()).update()

    class Retrained(TinyEncoder):
        logit_scale = 5.0

        def describe(self):
            return {**super().describe(), "weights": "retrained"}

    col = Collection(photos, index_dir=tmp_path / "i", encoder=Retrained())
    with pytest.raises(Exception) as e:
        col.search("q")
    msg = str(e.value)
    assert "weights was absent, now retrained" in msg and "--reindex" in msg and "{" not in msg


def test_vanished_folder_drops_nothing(photos, tmp_path):
    col = Collection(photos, index_dir=tmp_path / "i", encoder=TinyEncoder())
    col.update()
    col.close()
    photos.rename(tmp_path / "moved")
    col = Collection(None, index_dir=tmp_path / "i", encoder=TinyEncoder())
    with pytest.raises(Exception, match="does not exist"):
        col.update()
    assert col.catalog.counts()["indexed"] == 30


def test_indexes_list_and_prune(run, photos, shared, tmp_path, index_home):
    gone = tmp_path / "gone"
    copy_images(shared, gone, 2)
    assert run("index", photos)[0] == 0 and run("index", gone)[0] == 0
    rows = json.loads(run("indexes", "--json")[1])["indexes"]
    assert {(r["folder"], r["images"], r["model"]) for r in rows} == {(str(photos), 30, "lite"), (str(gone), 2, "lite")}
    for p in gone.iterdir():
        p.unlink()
    gone.rmdir()
    code, out, _ = run("indexes", "prune", "--dry-run")
    assert code == 0 and "would remove 1 index" in out and len(list(index_home.iterdir())) == 2
    code, out, _ = run("indexes", "prune")
    assert code == 0 and "removed 1 index" in out
    assert [r["folder"] for r in json.loads(run("indexes", "--json")[1])["indexes"]] == [str(photos)]
