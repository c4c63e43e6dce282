"""The ONNX cache: keyed by what makes the vectors, written atomically, safe under concurrent
exports, and a corrupt or unfinished entry is rebuilt, never used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cliplab.data.atomic import atomic_write_bytes as atomic_write
from cliplab.runtime import keys, load, select
from cliplab.runtime.cache import Entry, cache_root


def test_cache_root_honours_env(monkeypatch, tmp_path):
    monkeypatch.delenv("CLIPLAB_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_root() == tmp_path / "x" / "cliplab"
    monkeypatch.setenv("CLIPLAB_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    f = tmp_path / "a.bin"
    atomic_write(f, b"old")

    def boom(*a):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        atomic_write(f, b"new")
    assert f.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]  # no temp file left behind


def test_key_is_torch_free_and_follows_the_weights(tiny_clip, tmp_path):
    import shutil

    copy = Path(shutil.copytree(tiny_clip, tmp_path / "clip"))
    k1 = keys.cache_key(str(copy), 17)
    assert k1 == keys.cache_key(str(copy), 17) and k1 != keys.cache_key(str(copy), 18)
    cfg = json.loads((copy / "config.json").read_text())
    cfg["logit_scale_init_value"] = 1.0
    (copy / "config.json").write_text(json.dumps(cfg))
    assert keys.cache_key(str(copy), 17) != k1
    assert keys.cache_key("preclip", 17) is None and keys.cache_key("lite", 17) is not None
    code = "import sys; from cliplab.runtime import keys; keys.cache_key('lite', 17); print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False).stdout.strip()
        == "False"
    )


def test_second_load_uses_the_entry(tiny_clip, fresh_cache, monkeypatch):
    msgs = []
    enc = load(str(tiny_clip), runtime="onnx", notify=msgs.append)
    assert msgs == ["preparing the fast path (ONNX export, once) …"]
    assert (enc.entry.dir / "manifest.json").is_file() and enc.entry.dir.parent == fresh_cache / "onnx"
    monkeypatch.setattr(select, "build_entry", lambda *a, **k: pytest.fail("re-exported a cached model"))
    msgs.clear()
    again = load(str(tiny_clip), runtime="onnx", notify=msgs.append)
    assert msgs == [] and again.entry.dir == enc.entry.dir
    assert np.allclose(again.encode_texts(["a dog"]), enc.encode_texts(["a dog"]), atol=1e-6)


def test_new_weights_supersede_the_old_entry(tiny_clip, fresh_cache, tmp_path):
    import shutil

    copy = Path(shutil.copytree(tiny_clip, tmp_path / "clip"))
    old = load(str(copy), runtime="onnx", notify=None).entry.dir
    cfg = json.loads((copy / "config.json").read_text())
    cfg["logit_scale_init_value"] = 1.0  # another model file → another key
    (copy / "config.json").write_text(json.dumps(cfg))
    new = load(str(copy), runtime="onnx", notify=None).entry.dir
    assert new != old and new.is_dir() and not old.exists()


def test_corrupt_graph_is_rebuilt_not_used(tiny_clip, fresh_cache):
    enc = load(str(tiny_clip), runtime="onnx", notify=None)
    want = enc.encode_texts(["a red car"])
    graph = enc.entry.path("text.onnx")
    data = bytearray(graph.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # same size: only the hash can tell
    graph.write_bytes(bytes(data))
    fresh = load(str(tiny_clip), runtime="onnx", notify=None)  # the manifest still looks complete
    got = fresh.encode_texts(["a red car"])  # → sha256 mismatch → rebuilt → correct vectors
    assert np.abs(got - want).max() < 1e-6
    assert Entry(enc.entry.key).load()["towers"]["text"]["graphs"]["fp32"]["sha256"] == fresh.text.graph["sha256"]


def test_unfinished_entry_is_not_trusted(tiny_clip, onnx_cache):
    enc = load(str(tiny_clip), runtime="onnx", notify=None)
    key = enc.entry.key
    manifest = enc.entry.path("manifest.json")
    good = manifest.read_text()
    try:
        manifest.write_text(good[:100])  # truncated: not valid JSON
        assert Entry(key).load() is None
        manifest.write_text(good.replace('"size": ', '"size": 1', 1))  # a graph of another size
        assert Entry(key).load() is None
    finally:
        manifest.write_text(good)
    assert Entry(key).load() is not None


def test_two_processes_export_once(tiny_clip, tmp_path):
    """Both processes get a working encoder; the lock makes the second wait and reuse the entry."""
    code = (
        "import sys; from cliplab.runtime import load; "
        f"e = load({str(tiny_clip)!r}, runtime='onnx'); print(e.encode_texts(['a dog']).sum())"
    )
    env = {**os.environ, "CLIPLAB_CACHE": str(tmp_path / "c"), "HF_HUB_OFFLINE": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert sum(e.count("preparing the fast path") for _, e in outs) == 1
    assert float(outs[0][0]) == pytest.approx(float(outs[1][0]), abs=1e-5)
    entries = [p for p in (tmp_path / "c" / "onnx").iterdir() if p.is_dir()]
    assert len(entries) == 1 and not [p for p in entries[0].iterdir() if p.name.startswith(".")]


def test_superseded_entries_are_pruned_with_their_lock_files(tmp_path):
    """A retrain or upgrade makes a new key for the same spec: the old entries go (lock files too),
    other specs' entries and an entry another process holds stay."""
    import fcntl

    from cliplab.runtime.cache import MANIFEST, prune_superseded

    def entry(key: str, spec: str) -> Entry:
        e = Entry(key, root=tmp_path)
        e.dir.mkdir(parents=True)
        (e.dir / MANIFEST).write_text(json.dumps({"spec": spec}))
        (tmp_path / f"{key}.lock").touch()
        return e

    current, old, busy, other = entry("new", "lite"), entry("old", "lite"), entry("busy", "lite"), entry("x", "conse")
    fd = os.open(tmp_path / "busy.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held as if another process were preparing it
        removed = prune_superseded(current, "lite")
    finally:
        os.close(fd)
    assert removed == [old.dir]
    assert not old.dir.exists() and not (tmp_path / "old.lock").exists()
    assert busy.dir.is_dir() and other.dir.is_dir() and current.dir.is_dir()
    assert (tmp_path / "new.lock").exists() and (tmp_path / "x.lock").exists()
