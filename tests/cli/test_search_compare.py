"""`cliplab search QUERY --model a --model b`: the models' results side by side (toy encoders: "lite"
is the toy model, "conse" the toy model with red and blue swapped, so their text rankings differ)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import cliplab.cli  # noqa: F401  (registers every command)
import cliplab.cli.index as cli_index
from cliplab.cli.app import app
from tests.helpers import ToyEncoder, make_image
from tests.serve.test_compare import SwappedToy

runner = CliRunner()
COLOURS = {"red.jpg": (220, 20, 20), "green.jpg": (20, 200, 20), "blue.jpg": (20, 20, 220), "grey.jpg": (128,) * 3}


@pytest.fixture
def loads(monkeypatch, tmp_path):
    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "home"))
    seen = []

    def load(spec, *args, **kwargs):
        seen.append(spec)
        return SwappedToy() if spec == "conse" else ToyEncoder()

    monkeypatch.setattr(cli_index, "load_model", load)
    return seen


@pytest.fixture
def pics(tmp_path, loads):
    for name, colour in COLOURS.items():
        make_image(tmp_path / "pics" / name, color=colour)
    r = run("index", tmp_path / "pics", "--model", "lite", "--model", "conse")
    assert r.exit_code == 0, r.stderr
    loads.clear()
    return tmp_path / "pics"


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_two_models_side_by_side(pics):
    r = run("search", "a red photo", "--dir", pics, "--model", "lite", "--model", "conse", "-k", "3")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any("lite" in ln and "conse" in ln for ln in lines)  # one column per model
    assert "agreement over" in r.stdout and "lite|conse: overlap@3" in r.stdout and "ρ" in r.stdout


def test_json_is_the_apis_shape(pics):
    r = run("search", "a red photo", "--dir", pics, "-m", "lite", "-m", "conse", "-k", "3", "--json")
    assert r.exit_code == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["query"] == "a red photo" and body["k"] == 3 and body["mode"] == "semantic"
    assert [m["model"] for m in body["models"]] == ["lite", "conse"]
    cols = {m["model"]: [row["path"] for row in m["results"]] for m in body["models"]}
    assert set(cols["lite"]) != set(cols["conse"])  # the toy models disagree on this text
    for m in body["models"]:
        assert m["missing"] == 0
        for row in m["results"]:
            assert set(row) == {"rank", "id", "score", "path", "name", "only_here"}
            other = cols["conse" if m["model"] == "lite" else "lite"]
            assert row["only_here"] == (row["path"] not in other)
    agree = body["agreement"]
    shared = len(set(cols["lite"]) & set(cols["conse"]))
    assert agree["overlap"] == {"lite|conse": round(shared / 3, 4)} and agree["union"] == len(
        set(cols["lite"] + cols["conse"])
    )


def test_one_model_keeps_the_plain_search(pics):
    r = run("search", "a red photo", "--dir", pics, "--model", "conse", "-k", "2", "--json")
    body = json.loads(r.stdout)
    assert r.exit_code == 0 and body["model"] == "conse" and len(body["results"]) == 2 and "agreement" not in body


def test_a_model_without_an_index_is_an_error_not_an_embedding(pics, loads):
    r = run("search", "red", "--dir", pics, "--model", "lite", "--model", "preclip")
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith("error:") and "has no preclip index; run cliplab index" in lines[0]
    assert "--model preclip" in lines[0] and loads == []  # no model loaded, nothing embedded


@pytest.mark.parametrize(
    "extra, option",
    [(["--sort", "date"], "--sort"), (["--paths"], "--paths"), (["--lang", "deu_Latn"], "--lang")],
)
def test_options_for_one_model_are_refused(pics, extra, option):
    r = run("search", "red", "--dir", pics, "--model", "lite", "--model", "conse", *extra)
    assert r.exit_code == 2 and r.stderr.startswith(f"error: {option}: not with several models"), r.stderr
