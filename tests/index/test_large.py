"""ANN index from embedding shards: flat/IVF/IVF-PQ, filled shard by shard, nprobe tuned for
recall@10 against exact search, ids leading back to metadata, the model identity kept."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cliplab.data.writers import write_shard
from cliplab.data.writers import write_shards_manifest as write_manifest
from cliplab.errors import DataError, IndexMismatchError
from cliplab.index.large import build_from_embeddings, choose_kind
from cliplab.index.shards import ShardsIndex, is_shards_index
from cliplab.index.vectors import recall_at_k
from tests.helpers import ToyEncoder

DIM = 32


def synth_shards(out, n=6000, shard=2500, dim=DIM, seed=0, model="synthetic", fail_every=50):
    """Clustered unit vectors in shards; every `fail_every`-th row is a failed image (zero vector)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((60, dim)).astype(np.float32)
    allv = []
    for i, s in enumerate(range(0, n, shard)):
        m = min(shard, n - s)
        v = centers[rng.integers(0, 60, m)] + 0.5 * rng.standard_normal((m, dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        status = np.array(["ok"] * m, object)
        status[::fail_every] = "failed"
        v[status == "failed"] = 0
        write_shard(
            out,
            i,
            v,
            pd.DataFrame(
                {
                    "image_path": [f"img/{s + j}.jpg" for j in range(m)],
                    "key": [str(s + j) for j in range(m)],
                    "caption": [f"caption {s + j}" for j in range(m)],
                    "status": status,
                    "error": ["" if x == "ok" else "bad" for x in status],
                }
            ),
        )
        allv.append(v)
    write_manifest(out, {"model": model, "model_info": {"model": model, "dim": dim}})
    return np.concatenate(allv)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("emb")
    return root, synth_shards(root / "emb")


@pytest.mark.parametrize("kind", ["ivf", "ivfpq"])
def test_ann_reaches_recall_target_on_fresh_queries(data, kind):
    root, allv = data
    info = build_from_embeddings([root / "emb"], root / kind, kind=kind, target_recall=0.95)
    assert info["kind"] == kind and info["count"] == int((np.abs(allv).sum(1) > 0).sum())
    assert info["tuned_recall_at_10"] >= 0.95 and 1 <= info["nprobe"] <= info["nlist"]
    stored = json.loads((root / kind / "index.json").read_text())
    assert stored["nprobe"] == info["nprobe"] and stored["model"] == "synthetic"
    idx = ShardsIndex(root / kind)
    # fresh queries of the kinds it was tuned on, but not those: near-copies of members and midpoints
    rng = np.random.default_rng(42)
    ok = np.flatnonzero(np.abs(allv).sum(1) > 0)
    q = np.concatenate(
        [
            allv[rng.choice(ok, 100)] + 0.02 * rng.standard_normal((100, DIM)).astype(np.float32),
            allv[rng.choice(ok, 100)] + allv[rng.choice(ok, 100)],
        ]
    )
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    truth = ok[np.argsort(-(q @ allv[ok].T), axis=1)[:, :10]]
    found = idx.raw_search(q, 10)[1]
    assert recall_at_k(found, truth) >= 0.93
    if kind == "ivfpq":  # PQ codes are smaller than the fp16 vectors would be
        assert info["index_bytes"] < info["count"] * DIM * 2


def test_flat_below_threshold_hits_lead_to_metadata(data):
    root, allv = data
    info = build_from_embeddings([root / "emb"], root / "flat")
    assert info["kind"] == "flat" and is_shards_index(root / "flat")
    idx = ShardsIndex(root / "flat")
    hits = idx.search_vector(allv[2501], k=3)  # shard 1, row 1
    assert hits[0].id == 2501 and hits[0].path == "img/2501.jpg" and hits[0].caption == "caption 2501"
    assert hits[0].score == pytest.approx(1.0, abs=1e-3) and [h.rank for h in hits] == [1, 2, 3]
    assert idx.lookup(2500) == {**idx.lookup(2500), "status": "failed", "shard": 1, "row": 0}
    failed = {h.id for h in idx.search_vector(np.ones(DIM), k=idx.count)}
    assert not failed & set(range(0, 6000, 50)) and len(failed) == idx.count  # zero rows never indexed


def test_kind_by_size_and_memory():
    assert choose_kind(10_000, 384) == "flat"
    assert choose_kind(1_000_000, 384, memory_bytes=10 << 30) == "ivf"
    assert choose_kind(1_000_000, 384, memory_bytes=100 << 20) == "ivfpq"


def test_folders_of_different_models_refuse(tmp_path):
    synth_shards(tmp_path / "a", n=100, shard=100)
    synth_shards(tmp_path / "b", n=100, shard=100, model="other")
    with pytest.raises(DataError, match="one index needs one model"):
        build_from_embeddings([tmp_path / "a", tmp_path / "b"], tmp_path / "idx")


def test_text_search_uses_the_stored_model_and_checks_it(tmp_path):
    synth_shards(tmp_path / "e", n=50, shard=50, dim=4, model="toy")
    (tmp_path / "e" / "manifest.json").write_text(
        json.dumps({"model": "toy", "model_info": {"dim": 4, "model": "toy"}})
    )
    build_from_embeddings([tmp_path / "e"], tmp_path / "idx")
    asked = []
    idx = ShardsIndex(tmp_path / "idx", loader=lambda spec: asked.append(spec) or ToyEncoder())
    assert len(idx.search("a red square", k=5)) == 5 and asked == ["toy"]

    class Other(ToyEncoder):
        name = "other"

    with pytest.raises(IndexMismatchError, match="not the one"):
        ShardsIndex(tmp_path / "idx", encoder=Other()).search("x")
