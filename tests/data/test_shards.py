"""webdataset .tar shards (read by offset, captions, bad samples) and the clip-retrieval layout writer."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pandas as pd
import pytest

from cliplab import api
from cliplab.data.images import list_images, load_image
from cliplab.data.shards import (
    TarMember,
    finished_shards,
    list_shards,
    list_tar,
    read_manifest,
    shard_paths,
)
from cliplab.data.writers import write_shard
from cliplab.data.writers import write_shards_manifest as write_manifest
from cliplab.errors import DataError, ImageError
from tests.helpers import ToyEncoder, make_image


def make_tar(path, members: dict[str, bytes]):
    with tarfile.open(path, "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def shard(tmp_path):
    """Four samples: two with captions, one image without, one caption without an image, one bad image."""
    imgs = {
        c: make_image(tmp_path / "src" / f"{c}.png", color=col).read_bytes()
        for c, col in [("a", (255, 0, 0)), ("b", (0, 255, 0)), ("c", (0, 0, 255))]
    }
    return make_tar(
        tmp_path / "00000.tar",
        {
            "a.png": imgs["a"],
            "a.txt": b"a red square\n",
            "sub/b.png": imgs["b"],
            "sub/b.txt": b"a green one",
            "c.png": imgs["c"],
            "nocap.txt": b"caption without an image",
            "bad.jpg": b"not a jpeg at all",
        },
    )


def test_list_tar_groups_members_by_key_with_captions(shard):
    items = list_tar(shard)
    assert [m.key for m in items] == ["a", "sub/b", "c", "nocap", "bad"]
    assert [m.caption for m in items] == ["a red square", "a green one", None, "caption without an image", None]
    assert str(items[0]) == f"{shard}#a"  # the label every table shows


def test_members_load_like_files_and_bad_ones_give_reasons(shard):
    a, b, c, nocap, bad = list_tar(shard)
    assert load_image(a).getpixel((0, 0)) == (255, 0, 0)
    assert load_image(b).getpixel((0, 0)) == (0, 255, 0)
    with pytest.raises(ImageError, match="no image in this sample"):
        load_image(nocap)
    with pytest.raises(ImageError, match="not an image"):
        load_image(bad)


def test_tar_member_survives_str_and_pickle(shard):
    import pickle

    m = list_tar(shard)[0]
    assert str(m) is m and isinstance(pickle.loads(pickle.dumps(m)), TarMember)
    assert pickle.loads(pickle.dumps(m)).read_bytes() == m.read_bytes()


def test_single_process_embed_reads_tar_shards_like_the_files(shard, tmp_path):
    """`cliplab embed x.tar` (api.embed): one result row per sample, same vectors as the loose files."""
    enc = ToyEncoder()
    res = api.embed([str(shard)], enc)
    assert res.paths == [f"{shard}#{k}" for k in ("a", "sub/b", "c", "nocap", "bad")]
    assert res.status == ["ok", "ok", "ok", "failed", "failed"]
    files = api.embed([str(tmp_path / "src" / f"{c}.png") for c in "abc"], enc)
    np.testing.assert_allclose(res.vectors, files.vectors, atol=1e-6)
    assert list_images([str(shard)]) == res.paths


def test_unreadable_tar_is_one_clear_error(tmp_path):
    bad = tmp_path / "broken.tar"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(DataError, match="not a readable"):
        list_tar(bad)


def _meta(n):
    return pd.DataFrame({"image_path": [f"{i}.jpg" for i in range(n)], "status": ["ok"] * n, "error": [""] * n})


def test_shard_writer_layout_and_commit_order(tmp_path):
    v = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    write_shard(tmp_path, 7, v, _meta(3), text_vectors=v)
    p = shard_paths(tmp_path, 7)
    assert (
        p["img"] == tmp_path / "img_emb" / "img_emb_7.npy" and p["meta"] == tmp_path / "metadata" / "metadata_7.parquet"
    )
    assert np.load(p["img"]).dtype == np.float16 and np.load(p["text"]).shape == (3, 4)
    assert finished_shards(tmp_path) == {7}
    assert not [f for f in tmp_path.rglob("*") if f.name.endswith(".tmp")]
    # vectors without their metadata (a writer killed between the two renames) are not finished
    p["meta"].unlink()
    assert finished_shards(tmp_path) == set()
    with pytest.raises(ValueError):
        write_shard(tmp_path, 8, v, _meta(2))


def test_list_shards_and_manifest(tmp_path):
    for i in (2, 0, 10):
        write_shard(tmp_path, i, np.ones((2, 4), np.float32), _meta(2))
    assert [s.id for s in list_shards(tmp_path)] == [0, 2, 10]  # numeric order, not lexicographic
    write_manifest(tmp_path, {"model": "toy"})
    assert read_manifest(tmp_path)["model"] == "toy"
    with pytest.raises(DataError, match="no embedding shards"):
        list_shards(tmp_path / "img_emb")
