"""Output people can pipe: --format csv/tsv/jsonl (one line per image, whatever the path), the
piped default, -0/--print0, inline --texts, serve's busy-port line."""

from __future__ import annotations

import csv
import io
import json
import socket

import pandas as pd
import pytest
from typer.testing import CliRunner

import cliplab.cli  # noqa: F401  (registers every command)
import cliplab.cli.core as cli_core
import cliplab.cli.index as cli_index
from cliplab.cli.app import app
from tests.helpers import ToyEncoder, make_image
from tests.index.helpers import TinyEncoder

runner = CliRunner()
COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200)]
NAMES = ["plain.jpg", "with a space.jpg", "new\nline.jpg", "comma, and tab\t.jpg", 'quote".jpg']


@pytest.fixture
def pics(tmp_path):
    """Five images whose names a naive line-based output would break."""
    folder = tmp_path / "my pics"
    return [make_image(folder / n, color=c) for n, c in zip(NAMES, COLOURS)]


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(cli_core, "load_model", lambda *a, **k: ToyEncoder())


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(cli_index, "load_model", lambda *a, **k: TinyEncoder())


def run(*args):
    r = runner.invoke(app, [str(a) for a in args])
    return r.exit_code, r.stdout, r.stderr


def parse(fmt: str, out: str) -> list[dict]:
    if fmt == "jsonl":
        return [json.loads(line) for line in out.splitlines()]
    return list(csv.DictReader(io.StringIO(out, newline=""), delimiter="\t" if fmt == "tsv" else ","))


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_classify_formats_one_row_per_image(toy, pics, fmt):
    code, out, err = run("classify", pics[0].parent, "--labels", "red,green,blue", "-k", 2, "--format", fmt)
    assert code == 0, err
    rows = parse(fmt, out)
    assert sorted(r["path"] for r in rows) == sorted(map(str, pics))  # exact, newline and tab included
    assert set(rows[0]) == {"path", "label_1", "prob_1", "label_2", "prob_2"}
    assert all(r["label_1"] in ("red", "green", "blue") and 0 <= float(r["prob_1"]) <= 1 for r in rows)
    assert "zero-shot with model toy" in err  # the title stays out of the data
    if fmt != "jsonl":
        # one physical line per image, except the name that holds a newline itself
        assert len(out.splitlines()) == 1 + len(pics) + 1
        line = next(ln for ln in out.splitlines() if "with a space" in ln)
        assert line.startswith(str(pics[1]))


def test_piped_default_is_tsv_and_the_table_is_asked_for(toy, pics):
    code, out, _ = run("classify", pics[1], pics[0], "--labels", "red,green")
    assert code == 0 and out.splitlines()[0] == "path\tlabel_1\tprob_1\tlabel_2\tprob_2"
    assert out.splitlines()[1].split("\t")[0] == str(pics[1])
    code, out, _ = run("classify", pics[1], "--labels", "red,green", "--format", "table")
    assert code == 0 and "zero-shot with model toy" in out and "┃" in out


@pytest.mark.parametrize(
    "args, words",
    [
        (["--json", "--format", "csv"], ["--json and --format"]),
        (["--format", "xml"], ["--format 'xml'", "jsonl"]),
    ],
)
def test_conflicting_or_unknown_formats_are_one_line(toy, pics, args, words):
    code, out, err = run("classify", pics[0], "--labels", "a,b", *args)
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("error:"), err
    assert all(w in lines[0] for w in words)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_search_and_duplicates_formats(tiny, pics, fmt):
    folder = pics[0].parent
    make_image(folder / "copy of plain.jpg", color=COLOURS[0])  # a duplicate of plain.jpg
    code, out, err = run("search", "x", "--dir", folder, "-k", 3, "--format", fmt)
    assert code == 0, err
    rows = parse(fmt, out)
    assert [int(r["rank"]) for r in rows] == [1, 2, 3] and all(r["path"].startswith(str(folder)) for r in rows)
    assert " · model " in err and " · index " in err  # the header line, on stderr
    code, out, err = run("duplicates", folder, "--threshold", "0.999", "--format", fmt)
    assert code == 0, err
    rows = parse(fmt, out)
    assert sorted(r["path"] for r in rows) == [str(folder / "copy of plain.jpg"), str(pics[0])]
    assert {str(r["group"]) for r in rows} == {"1"} and float(rows[0]["min_score"]) >= 0.999


def test_print0_keeps_every_name_whole(tiny, pics):
    folder = pics[0].parent
    code, out, err = run("search", "x", "--dir", folder, "-k", 10, "-0")
    assert code == 0, err
    assert out.endswith("\0") and sorted(out.split("\0")[:-1]) == sorted(map(str, pics))
    code, out, _ = run("search", "x", "--dir", folder, "-k", 10, "--print0", "--no-update")
    assert sorted(out.split("\0")[:-1]) == sorted(map(str, pics))
    code, _, err = run("search", "x", "--dir", folder, "-0", "--paths")
    assert code == 2 and err.startswith("error:") and "--paths and --print0" in err


def test_similarity_and_embed_take_inline_texts(toy, pics, tmp_path):
    code, out, err = run("similarity", *pics[:2], "--texts", "a red thing, a green thing", "-o", tmp_path / "s.csv")
    assert code == 0, err
    sim = pd.read_csv(tmp_path / "s.csv", index_col=0)
    assert list(sim.columns) == ["a red thing", "a green thing"] and sim.shape == (2, 2)
    (tmp_path / "caps.csv").write_text("id,caption\n1,a blue thing\n2,a yellow thing\n3,a blue thing\n")
    code, out, err = run("embed", "--texts", tmp_path / "caps.csv", "-o", tmp_path / "e", "--json")
    assert code == 0 and json.loads(out)["texts"] == 3, err
    assert list(pd.read_csv(tmp_path / "e" / "text_metadata.csv")["text"]) == [
        "a blue thing",
        "a yellow thing",
        "a blue thing",
    ]
    code, _, err = run("similarity", pics[0], "--texts", "nope.txt", "-o", tmp_path / "t.csv")
    assert code == 2 and err.strip() == "error: no such texts file: nope.txt"


def test_serve_on_a_busy_port_is_one_error_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = run("serve", tmp_path, "--port", port, "--json")
    assert code == 2 and out == "" and err.startswith("error: cannot listen on 127.0.0.1:")
    assert len(err.strip().splitlines()) == 1
