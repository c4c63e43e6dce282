"""Listing folders (symlinks followed, loops ended, broken links reported) and the size limit."""

from __future__ import annotations

import pytest
from PIL import Image

from cliplab.data.files import read_labels, walk_images
from cliplab.data.images import list_images, load_image
from cliplab.errors import DataError, ImageError
from cliplab.pipeline import embed_images
from tests.helpers import ToyEncoder, make_image


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    make_image(root / "a.jpg")
    make_image(root / "sub" / "b.png")
    make_image(tmp_path / "elsewhere" / "c.jpg")
    (root / "linked").symlink_to(tmp_path / "elsewhere")  # a symlinked folder: followed
    (root / "sub" / "up").symlink_to(root)  # a loop back to the root: entered once only
    (root / "gone.jpg").symlink_to(tmp_path / "missing.jpg")
    (root / "notes.txt").write_text("not an image")
    return root


def test_walk_follows_links_once_and_reports_broken_ones(tree):
    found = {f.rel: f for f in walk_images(tree)}
    assert set(found) == {"a.jpg", "sub/b.png", "linked/c.jpg", "gone.jpg"}
    assert found["gone.jpg"].size == -1 and "broken symbolic link" in found["gone.jpg"].broken
    assert found["a.jpg"].broken is None and found["a.jpg"].size > 0


def test_embed_reports_a_broken_link_with_its_reason(tree):
    paths = list_images([tree])
    assert [p.split("/root/")[1] for p in paths] == ["a.jpg", "gone.jpg", "linked/c.jpg", "sub/b.png"]
    res = embed_images(ToyEncoder(), paths)
    assert res.n_ok == 3
    [(path, reason)] = res.failures
    assert path.endswith("gone.jpg") and "broken symbolic link" in reason and "missing.jpg" in reason


def test_one_size_limit_the_documented_one(tmp_path, monkeypatch):
    small = make_image(tmp_path / "s.png", size=(20, 20))
    monkeypatch.setenv("CLIPLAB_MAX_PIXELS", "100")
    with pytest.raises(ImageError, match=r"too large \(20x20 > 100 pixels\)"):
        load_image(small)
    # PIL's own bomb check (2 × 89 MP) would refuse this 182 MP header before ours is consulted
    big = tmp_path / "big.png"
    Image.new("1", (13000, 14000)).save(big)
    monkeypatch.setenv("CLIPLAB_MAX_PIXELS", "100000000")
    with pytest.raises(ImageError, match=r"13000x14000 > 100000000 pixels"):
        load_image(big)
    with Image.open(big) as im:  # raising the documented limit is not overruled by PIL's
        assert im.size == (13000, 14000)


def test_read_labels(tmp_path):
    assert read_labels("cat, dog,cat") == ["cat", "dog"]
    (tmp_path / "l.csv").write_text("path\tlabel\nx\tcat\ny\tdog\n")
    assert read_labels(str(tmp_path / "l.csv")) == ["cat", "dog"]
    with pytest.raises(DataError, match="at least two"):
        read_labels("cat")
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9\ndog\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_labels(str(tmp_path / "bad.txt"))
