"""`cliplab explore DIR`: the folder's summary and named clusters, a cluster's paths, clear errors
(toy encoder, PCA)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import cliplab.cli.explore as cli_explore
from cliplab.cli.app import app
from tests.helpers import ToyEncoder, make_image

COLOURS = [(230, 20, 20), (20, 220, 20), (20, 20, 230)]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    from cliplab.index import Collection

    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(cli_explore, "load_model", lambda *a, **k: ToyEncoder())
    pics = tmp_path / "pics"
    for i in range(24):
        r, g, b = COLOURS[i % 3]
        make_image(pics / f"{['red', 'green', 'blue'][i % 3]}/{i:02d}.png", size=(16, 16), color=(r, g + i % 4, b))
    with Collection(pics, model="toy", loader=lambda spec: ToyEncoder()) as col:
        col.update()
        index_dir = col.index_dir
    return pics, index_dir


def run(*args):
    return CliRunner().invoke(app, ["explore", *map(str, args)])


def test_json_summary_and_clusters(folder):
    pics, index_dir = folder
    before = sorted(p.name for p in pics.rglob("*"))
    got = run(pics, "--model", "toy", "--method", "pca", "--json")
    assert got.exit_code == 0, got.output
    body = json.loads(got.stdout)
    assert body["model"] == "toy" and body["method"] == "pca" and body["k"] == 3 and "silhouette" in body["rule"]
    assert sorted(c["size"] for c in body["clusters"]) == [8, 8, 8]
    assert body["summary"]["text"].startswith("24 photos in 3 groups")
    assert sorted(p.name for p in pics.rglob("*")) == before  # nothing written into the folder
    assert (index_dir / "map" / "pca.npz").is_file()  # only the cache, with the index


def test_table_and_a_clusters_paths(folder):
    pics, _ = folder
    got = run(pics, "--model", "toy", "--method", "pca")
    assert got.exit_code == 0, got.output
    assert "24 photos in 3 groups" in got.stdout and "top names" in got.stdout
    body = json.loads(run(pics, "--model", "toy", "--method", "pca", "--json").stdout)
    c = body["clusters"][0]
    lines = run(pics, "--model", "toy", "--method", "pca", "--paths", c["cluster"]).stdout.splitlines()
    assert len(lines) == c["size"] and len({line.split("/")[0] for line in lines}) == 1  # one colour: one folder


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--method", "tsne"], "--method 'tsne'"),
        (["--paths", "7"], "clusters 0…2"),
        (["--model", "lite"], "has no lite index"),
    ],
)
def test_user_errors(folder, args, needle):
    pics, _ = folder
    got = run(pics, "--model", "toy", "--method", "pca", *args) if "--model" not in args else run(pics, *args)
    assert got.exit_code == 2 and needle in got.output and "Traceback" not in got.output


def test_a_folder_without_an_index(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "home"))
    (tmp_path / "empty").mkdir()
    got = run(tmp_path / "empty")
    assert got.exit_code == 2 and "cliplab index" in got.output
    assert not (tmp_path / "home").exists()  # no index made
