"""A folder's collection and an index built `--from-embeddings` answer through one interface: the
query image is left out of image→image results in both, both print the same header, and
`index --status --index DIR` reports either kind."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from typer.testing import CliRunner

import cliplab.cli.index as cli_index
from cliplab.cli.app import app
from cliplab.distributed import embed_to_shards
from cliplab.index import Collection
from cliplab.index.large import build_from_embeddings
from cliplab.index.shards import ShardsIndex
from tests.index.helpers import TinyEncoder

HEADER = re.compile(r"^(?P<source>.+) · model (?P<model>\S+)( \(.+\))? · index (?P<index>.+)$")


@pytest.fixture
def both(photos, tmp_path):
    """The same 31 images (img003 twice: copy3.jpg) as a folder collection and as a shards index."""
    shutil.copy(photos / "img003.jpg", photos / "copy3.jpg")
    col = Collection(photos, index_dir=tmp_path / "col", encoder=TinyEncoder())
    col.update()
    col.close()
    embed_to_shards([str(photos)], tmp_path / "emb", model=TinyEncoder(), shard_size=8)
    build_from_embeddings([tmp_path / "emb"], tmp_path / "shards")
    return tmp_path / "col", tmp_path / "shards"


@pytest.fixture
def run(monkeypatch):
    fake = lambda spec, *a, **k: TinyEncoder()  # noqa: E731
    monkeypatch.setattr(cli_index, "load_model", fake)
    monkeypatch.setattr(cli_index, "model_loader", lambda *a, **k: fake)
    runner = CliRunner()

    def invoke(*args):
        res = runner.invoke(app, [str(a) for a in args])
        return res.exit_code, res.stdout, res.stderr

    return invoke


def test_the_query_image_is_left_out_in_both(both, photos):
    col_dir, shards_dir = both
    query = photos / "img003.jpg"
    col = Collection(None, index_dir=col_dir, encoder=TinyEncoder())
    idx = ShardsIndex(shards_dir, encoder=TinyEncoder())
    from_col = [h.path for h in col.search_image(query, k=5)]
    from_shards = [h.path for h in idx.search_image(query, k=5)]
    for paths in (from_col, from_shards):
        assert len(paths) == 5 and str(query) not in paths
        assert paths[0] == str(photos / "copy3.jpg")  # its copy is another image: found first
    assert [h.rank for h in idx.search_image(query, k=5)] == [1, 2, 3, 4, 5]
    assert len(idx.search_image(query, k=100)) == idx.count - 1  # everything but the query itself


def test_cli_search_prints_the_same_header_and_leaves_out_the_query(run, both, photos):
    col_dir, shards_dir = both
    query = photos / "img003.jpg"
    headers = {}
    for kind, d in (("folder", col_dir), ("shards", shards_dir)):
        code, out, err = run("search", "--image", query, "--index", d, "-k", 3, "--format", "table")
        assert code == 0, err
        header, *rows = out.splitlines()
        headers[kind] = HEADER.match(header)
        assert headers[kind] and headers[kind]["model"] == "tiny-test" and headers[kind]["index"] == str(d)
        assert len(rows) == 3 and str(query) not in out and str(photos / "copy3.jpg") in rows[0]
        code, out, _ = run("search", "--image", query, "--index", d, "-k", 3, "--json")
        assert code == 0 and str(query) not in [r["path"] for r in json.loads(out)["results"]]
    code, _, err = run("search", "x", "--index", shards_dir, "--under", "sub")  # no folder tree to filter
    assert code == 2 and "not a folder tree" in err
    assert headers["folder"]["source"] == str(photos)
    assert headers["shards"]["source"] == str((shards_dir.parent / "emb").resolve())


def test_status_reports_a_shards_index(run, both):
    _, shards_dir = both
    code, out, _ = run("index", "--status", "--index", shards_dir, "--json")
    st = json.loads(out)
    assert code == 0 and (st["kind"], st["indexed"], st["failed"], st["model"]) == ("shards", 31, 0, "tiny-test")
    assert st["index_dir"] == str(shards_dir) and st["dim"] == 48 and st["search"] == "exact (flat)"
    code, out, _ = run("index", "--status", "--index", shards_dir)
    assert code == 0 and "not indexed" not in out and "embeddings" in out and "31" in out
    code, _, err = run("index", "--index", shards_dir)  # nothing to update: a sentence, not a traceback
    assert code == 2 and "built from embeddings" in err and "Traceback" not in err
