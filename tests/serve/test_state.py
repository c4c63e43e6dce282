"""Server state: micro-batching, the shared encoder pool, the read-write lock, opening and naming collections."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from cliplab.serve.batching import MicroBatcher
from cliplab.serve.encoders import EncoderPool
from tests.helpers import ToyEncoder


def test_concurrent_items_are_batched_and_answered_in_order():
    calls = []

    def slow_double(items):
        calls.append(len(items))
        time.sleep(0.02)  # a model call: while it runs, the next requests queue up
        return np.array(items) * 2

    b = MicroBatcher(slow_double, max_batch=8, max_wait_s=0.005)
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(b, range(64)))
    b.close()
    assert got == [2 * i for i in range(64)]
    assert sum(calls) == 64 and max(calls) <= 8
    assert len(calls) < 64 / 2  # far fewer model calls than requests


def test_a_failing_batch_fails_its_waiters_and_the_worker_lives_on():
    def fn(items):
        if "bad" in items:
            raise ValueError("bad input")
        return items

    b = MicroBatcher(fn, max_wait_s=0.0)
    with pytest.raises(ValueError):
        b("bad")
    assert b("good") == "good"
    b.close()


def test_pool_loads_each_model_once_under_concurrency():
    loads = []

    def loader(spec):
        loads.append(spec)
        time.sleep(0.05)
        return ToyEncoder()

    pool = EncoderPool(loader)
    barrier = threading.Barrier(8)

    def get(_):
        barrier.wait()
        return pool.get("toy")

    with ThreadPoolExecutor(8) as ex:
        shared = set(map(id, ex.map(get, range(8))))
    assert loads == ["toy"] and len(shared) == 1
    enc = pool.get("toy")
    with ThreadPoolExecutor(16) as ex:
        vecs = list(ex.map(enc.encode_text, [f"text {i}" for i in range(48)]))
    np.testing.assert_allclose(np.stack(vecs), enc.encoder.encode_texts([f"text {i}" for i in range(48)]), atol=1e-6)
    assert enc.texts.batches < 48
    pool.close()


def test_two_collections_with_one_model_share_the_encoder(tmp_path, monkeypatch):
    from cliplab.serve import open_state
    from tests.serve.conftest import make_pics

    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "home"))
    loads = []

    def loader(spec):
        loads.append(spec)
        return ToyEncoder()

    a, b = make_pics(tmp_path / "a" / "pics"), make_pics(tmp_path / "b" / "pics")
    state = open_state([a, b], model="toy", loader=loader, names=["first"])
    try:
        assert list(state.sources) == ["first", "pics"]
        state.warm()
        assert loads == ["toy"]
        assert state.encoder_for(state.sources["first"]) is state.encoder_for(state.sources["pics"])
    finally:
        state.close()


def test_collection_names_are_unique():
    from pathlib import Path

    from cliplab.serve.state import unique_names

    folders = [Path("/a/pics"), Path("/b/pics"), Path("/c/Holiday 2024"), Path("/d/pics")]
    assert unique_names(folders) == ["pics", "pics-2", "Holiday_2024", "pics-3"]
    assert unique_names(folders[:2], ["mine"]) == ["mine", "pics"]


def test_read_write_lock_lets_readers_share_and_writers_wait():
    from cliplab.serve.sources import ReadWriteLock

    lock = ReadWriteLock()
    events = []
    inside = threading.Barrier(2, timeout=5)

    def reader(name):
        with lock.read():
            inside.wait()  # both readers are inside at once, or this times out
            events.append(f"{name} read")
            time.sleep(0.05)

    def writer():
        time.sleep(0.01)
        with lock.write():
            events.append("write")

    threads = [threading.Thread(target=reader, args=(n,)) for n in ("a", "b")] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(events[:2]) == ["a read", "b read"] and events[2] == "write"


def test_an_existing_index_is_served_by_its_folder_name(pics):
    from cliplab.index import Collection
    from cliplab.serve import open_state
    from tests.serve.conftest import toy_loader

    with Collection(pics, model="toy", loader=toy_loader) as col:
        col.update()
        index_dir = col.index_dir
    state = open_state(index_dirs=[index_dir], loader=toy_loader)
    try:
        info = state.sources["pics"].info()
        assert info["folder"] == str(pics.resolve()) and info["model"] == "toy" and info["images"] == 5
    finally:
        state.close()
