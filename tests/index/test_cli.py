"""`cliplab index / search / duplicates` parse arguments and call the Collection API."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

import cliplab.cli.index as cli_index
from cliplab.cli.app import app
from tests.index.helpers import TinyEncoder


@pytest.fixture
def run(monkeypatch):
    loaded = []

    def fake_load(spec, *args, **kwargs):
        loaded.append(spec)
        return TinyEncoder()

    monkeypatch.setattr(cli_index, "load_model", fake_load)
    runner = CliRunner()

    def invoke(*args):
        res = runner.invoke(app, [str(a) for a in args])
        return res.exit_code, res.stdout, res.stderr

    invoke.loaded = loaded
    return invoke


def test_search_indexes_first_then_json(run, photos):
    code, out, _ = run("search", "a red car", "--dir", photos, "-k", 5, "--json", "--model", "lite")
    assert code == 0
    res = json.loads(out)
    assert res["model"] == "lite" and res["query"] == "a red car"
    assert [r["rank"] for r in res["results"]] == [1, 2, 3, 4, 5]
    assert all(r["path"].startswith(str(photos)) for r in res["results"])
    scores = [r["score"] for r in res["results"]]
    assert scores == sorted(scores, reverse=True)


def test_index_status_image_search_duplicates(run, photos, tmp_path):
    shutil.copy(photos / "img003.jpg", photos / "copy3.jpg")
    (photos / "bad.jpg").write_bytes(b"")
    code, out, _ = run("index", photos, "--model", "lite")
    assert code == 0 and "31 images indexed, 1 failed" in out
    code, out, _ = run("index", photos, "--status", "--json")
    st = json.loads(out)
    assert (st["indexed"], st["failed"], st["model"]) == (31, 1, "lite")
    assert st["failures"][0]["path"] == "bad.jpg" and st["pending"]["new"] == 0
    code, out, _ = run("index", photos, "--status")
    assert code == 0 and "empty file" in out
    code, out, _ = run("search", "--image", photos / "img003.jpg", "--dir", photos, "-k", 1, "--json")
    assert json.loads(out)["results"][0]["path"] == str(photos / "copy3.jpg")
    code, out, _ = run("duplicates", photos, "--threshold", ".999", "--json")
    groups = json.loads(out)["groups"]
    assert sorted(groups[0]["paths"]) == [str(photos / "copy3.jpg"), str(photos / "img003.jpg")]
    code, out, _ = run("search", "x", "--dir", photos, "--glob", "copy*", "--json")
    assert [r["path"] for r in json.loads(out)["results"]] == [str(photos / "copy3.jpg")]
    assert run.loaded == ["lite"] * len(run.loaded)


def test_errors_are_one_line(run, photos, tmp_path):
    assert run("index", photos, "--index", tmp_path / "idx")[0] == 0
    code, _, err = run("search", "x", "--index", tmp_path / "idx", "--model", "conse")  # one index, one model
    assert code == 2 and "built with model 'lite'" in err and "--reindex" in err
    code, _, err = run("search", "--dir", photos)
    assert code == 2 and "QUERY" in err
    code, _, err = run("search", "x", "--dir", photos / "nope")
    assert code == 2 and "no such folder" in err
