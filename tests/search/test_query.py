"""Running an expression on a folder's index and on an index built from embeddings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cliplab.cli import app
from cliplab.errors import QueryError
from cliplab.index import Collection
from cliplab.search import parse, query_vector, run
from cliplab.search.expression import combine
from tests.index.helpers import TinyEncoder, copy_images


@pytest.fixture
def col(shared, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "home"))
    folder = tmp_path / "photos"
    copy_images(shared, folder, 12)
    c = Collection(folder, encoder=TinyEncoder())
    c.update()
    yield c
    c.close()


def test_the_query_vector_is_the_weighted_sum(col):
    enc = col.encoder()
    ids, vecs = col.catalog.vectors()
    terms = parse(f'2:"red" - "blue" + like:{ids[3]}')
    q, exclude, _ = query_vector(col, terms)
    want = combine(np.stack([*enc.encode_texts(["red", "blue"]), vecs[3]]), [2, -1, 1])
    np.testing.assert_allclose(q, want, atol=1e-6)
    assert exclude == [int(ids[3])]


def test_the_images_a_query_names_are_left_out(col):
    ids, _ = col.catalog.vectors()
    paths = col.catalog.paths([int(i) for i in ids])
    photo = col.folder / paths[int(ids[0])]
    is_file = lambda v: v == str(photo)  # noqa: E731
    hits = run(col, parse(f"{photo} + like:{ids[1]}", image_ref=is_file), k=20)
    got = {h.id for h in hits}
    assert int(ids[0]) not in got and int(ids[1]) not in got and len(hits) == len(ids) - 2
    # one image alone ranks like image→image search does
    alone = run(col, parse(str(photo), image_ref=is_file), k=5)
    assert [h.path for h in alone] == [h.path for h in col.search_image(photo, k=5)]


def test_an_unknown_id_is_a_query_error(col):
    with pytest.raises(QueryError, match="like:999999: no indexed image"):
        run(col, parse("like:999999"))


def test_cli_expressions_and_several_images(shared, tmp_path, monkeypatch):
    """`search QUERY --image A --image B` combines them; bad expressions are one `error:` line, exit 2."""
    import cliplab.cli.index as cli_index

    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(cli_index, "load_model", lambda spec, *a, **k: TinyEncoder())
    folder = tmp_path / "photos"
    copy_images(shared, folder, 12)
    photos = sorted(folder.iterdir())
    runner = CliRunner()
    base = ["search", "--dir", str(folder), "--model", "lite", "--json", "-k", "3"]
    r = runner.invoke(app, [*base, '"sunset" - "people"', "--image", str(photos[0]), "--image", str(photos[1])])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [t["kind"] for t in out["terms"]] == ["text", "text", "image", "image"]
    assert out["terms"][1]["weight"] == -1.0 and len(out["results"]) == 3
    assert not {str(photos[0]), str(photos[1])} & {h["path"] for h in out["results"]}
    for bad, needle in [('"unclosed', "unbalanced quotes"), ("a - - b", "two signs")]:
        r = runner.invoke(app, [*base, bad])
        assert r.exit_code == 2 and r.stderr.startswith("error:") and needle in r.stderr, r.output
    r = runner.invoke(app, [*base, "--image", str(tmp_path / "missing.jpg")])
    assert r.exit_code == 2 and "missing.jpg" in r.stderr
