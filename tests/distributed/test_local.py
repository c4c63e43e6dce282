"""The sharded job without Ray (engine local): plan, clip-retrieval output, resume, equality with
the single-process path, and no Ray import on that path."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from cliplab import api
from cliplab.distributed import embed_to_shards, plan_shards
from cliplab.errors import CliplabError, OutputError
from tests.distributed.conftest import cosines, read_all
from tests.helpers import ToyEncoder


def test_plan_is_deterministic_and_a_tar_is_one_shard(job):
    a = plan_shards(job["inputs"], shard_size=4)
    assert [(s.id, s.count, bool(s.tar)) for s in a] == [(0, 4, False), (1, 4, False), (2, 3, False), (3, 3, True)]
    assert [s.to_json() for s in a] == [s.to_json() for s in plan_shards(job["inputs"], shard_size=4)]
    with pytest.raises(CliplabError, match="no such file"):
        plan_shards([str(job["folder"] / "nope")])


def test_shards_hold_every_image_once_with_the_single_process_vectors(job, tmp_path):
    enc = ToyEncoder()
    s = embed_to_shards(job["inputs"], tmp_path / "out", model=enc, shard_size=4, captions=True)
    assert (s.shards, s.images, s.ok, s.failed, s.skipped) == (4, 14, 13, 1, 0)
    meta, vecs = read_all(tmp_path / "out")
    single = api.embed(job["inputs"], enc)
    assert meta["image_path"].tolist() == list(single.paths)  # same items, same order, once each
    assert meta["status"].tolist() == single.status
    ok = meta["status"] == "ok"
    assert cosines(vecs[ok.values], single.vectors).min() >= 0.9999  # float16 on disk
    assert not vecs[~ok.values].any() and "not an image" in meta.loc[~ok, "error"].iloc[0]
    assert meta["caption"].tolist()[-3:] == ["sample 0", "sample 1", "sample 2"]
    text = np.load(tmp_path / "out" / "text_emb" / "text_emb_3.npy")
    assert text.shape == (3, 4) and np.abs(text).sum() > 0
    man = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert man["complete"] and man["counts"] == {"images": 14, "ok": 13, "failed": 1}
    assert man["model_info"] == {"model": "toy", "dim": 4} and man["dtype"] == "float16"


def test_rerun_skips_finished_shards_and_redoes_a_missing_one(job, tmp_path):
    enc = ToyEncoder()
    embed_to_shards(job["inputs"], tmp_path / "out", model=enc, shard_size=4)
    before = read_all(tmp_path / "out")
    again = embed_to_shards(job["inputs"], tmp_path / "out", model=enc, shard_size=4)
    assert again.skipped == 4 and again.images == 14
    (tmp_path / "out" / "metadata" / "metadata_1.parquet").unlink()  # as if killed while writing shard 1
    third = embed_to_shards(job["inputs"], tmp_path / "out", model=enc, shard_size=4)
    assert third.skipped == 3 and third.images == 14
    after = read_all(tmp_path / "out")
    assert after[0].equals(before[0]) and np.array_equal(after[1], before[1])
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_other_inputs_into_the_same_folder_refuse(job, tmp_path):
    embed_to_shards(job["inputs"], tmp_path / "out", model=ToyEncoder(), shard_size=4)
    with pytest.raises(OutputError, match="another job"):
        embed_to_shards(job["inputs"][:1], tmp_path / "out", model=ToyEncoder(), shard_size=4)


def test_lite_through_the_cli_then_index_and_search(shared, tmp_path, lite_encoder, monkeypatch):
    """The real model end to end: embed (clip-retrieval) → index --from-embeddings → search --index,
    with vectors equal to `cliplab embed`'s own. (The model loads once per session.)"""
    from typer.testing import CliRunner

    import cliplab.runtime
    from cliplab.cli import app

    loads = []
    monkeypatch.setattr(cliplab.runtime, "load", lambda spec="lite", **kw: loads.append(spec) or lite_encoder)

    photos = sorted((shared / "data" / "flickr8k-1k" / "images").glob("*.jpg"))[:5]
    lst = tmp_path / "list.txt"
    lst.write_text("\n".join(map(str, photos)))
    run = CliRunner().invoke
    r = run(app, ["embed", str(lst), "--layout", "clip-retrieval", "--out", str(tmp_path / "emb"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["ok"] == 5
    r = run(app, ["embed", str(lst), "--out", str(tmp_path / "plain")])
    assert r.exit_code == 0, r.output
    _, vecs = read_all(tmp_path / "emb")
    plain = np.load(tmp_path / "plain" / "image_embeddings.npy")
    assert cosines(vecs, plain).min() >= 0.9999
    r = run(app, ["index", "--from-embeddings", str(tmp_path / "emb"), "--index", str(tmp_path / "idx"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["kind"] == "flat"
    r = run(app, ["search", "a dog", "--index", str(tmp_path / "idx"), "-k", "3", "--json"])
    assert r.exit_code == 0, r.output
    hits = json.loads(r.stdout)["results"]
    assert [h["rank"] for h in hits] == [1, 2, 3] and {h["path"] for h in hits} <= set(map(str, photos))
    r = run(app, ["index", "--from-embeddings", str(tmp_path / "nope"), "--index", str(tmp_path / "i2")])
    assert r.exit_code == 2 and "error:" in r.output
    assert set(loads) == {"lite"}  # the index remembered its model for the query


def test_single_process_path_never_imports_ray():
    code = (
        "import sys, cliplab.cli, cliplab.api, cliplab.distributed, cliplab.index.large, "
        "cliplab.index.shards, cliplab.data.shards; print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
