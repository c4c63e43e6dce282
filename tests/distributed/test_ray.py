"""The same job on a local Ray (Ray Data map_batches over an actor pool): every image exactly once
even when actors die mid-shard, the same vectors as engine local, and resume after a lost shard.
One Ray session for the module (starting Ray costs seconds)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import ray  # the `ray` extra: `make test` installs every extra, so a missing Ray fails here, never skips

import tests.helpers
from cliplab.distributed import ShardEmbedder, embed_to_shards
from tests.distributed.conftest import cosines, read_all
from tests.helpers import ToyEncoder


@pytest.fixture(scope="module")
def local_ray():
    # test-only classes travel by value: the workers need not import the tests package
    ray.cloudpickle.register_pickle_by_value(tests.helpers)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=80 << 20, logging_level="ERROR"
    )
    yield
    ray.shutdown()


def crash_once(marker_dir: str, shards: set[int]):
    """An embedder whose process dies (os._exit, no cleanup) the first time it meets one of `shards`,
    after writing that shard's vectors but before its metadata — the worst moment."""

    class CrashOnce(ShardEmbedder):
        def run(self, spec):
            mark = Path(marker_dir) / f"crashed-{spec.id}"
            if spec.id in shards and not mark.exists():
                mark.write_text(str(os.getpid()))
                vectors, meta, _ = __import__("cliplab.distributed.worker", fromlist=["x"]).embed_shard(
                    self.encoder, spec
                )
                from cliplab.data.shards import shard_paths

                p = shard_paths(self.out, spec.id)["img"]
                p.parent.mkdir(parents=True, exist_ok=True)
                np.save(p, vectors.astype("float16"))
                os._exit(1)
            return super().run(spec)

    return CrashOnce


def test_killed_actors_are_retried_and_every_image_lands_exactly_once(local_ray, job, tmp_path):
    enc = ToyEncoder()
    marks = tmp_path / "marks"
    marks.mkdir()
    s = embed_to_shards(
        job["inputs"],
        tmp_path / "ray",
        model=enc,
        engine="ray",
        workers=2,
        shard_size=4,
        embedder=crash_once(str(marks), {0, 3}),
    )
    assert sorted(p.name for p in marks.iterdir()) == ["crashed-0", "crashed-3"]  # they really died
    assert (s.engine, s.shards, s.images, s.ok, s.failed) == ("ray", 4, 14, 13, 1)
    meta, vecs = read_all(tmp_path / "ray")
    assert meta["image_path"].is_unique and len(meta) == job["images"]
    embed_to_shards(job["inputs"], tmp_path / "local", model=enc, shard_size=4)
    meta_l, vecs_l = read_all(tmp_path / "local")
    assert meta["image_path"].tolist() == meta_l["image_path"].tolist()
    ok = (meta["status"] == "ok").values
    assert cosines(vecs[ok], vecs_l[ok]).min() >= 0.9999


def test_ray_rerun_runs_only_the_missing_shard(local_ray, job, tmp_path):
    enc = ToyEncoder()
    embed_to_shards(job["inputs"], tmp_path / "out", model=enc, engine="ray", workers=1, shard_size=4)
    before = read_all(tmp_path / "out")
    (tmp_path / "out" / "metadata" / "metadata_2.parquet").unlink()
    again = embed_to_shards(job["inputs"], tmp_path / "out", model=enc, engine="ray", workers=1, shard_size=4)
    assert again.skipped == 3 and again.images == 14
    after = read_all(tmp_path / "out")
    assert after[0].equals(before[0]) and np.array_equal(after[1], before[1])
