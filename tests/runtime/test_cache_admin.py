"""`cliplab cache` and `cliplab cache clean`: list every cached entry (kind, model, size, last used),
remove old ones, never one another process holds, never a file that is not a cache entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import cliplab.cli  # noqa: F401  (registers every command)
from cliplab.cli.app import app
from cliplab.runtime.cache import USED_STAMP, Entry, lock_file
from cliplab.runtime.cache_admin import clean_cache, list_cache, parse_duration
from tests.runtime.test_class_cache import CountingEncoder

runner = CliRunner()
DAY = 86400.0
KEYS = ("aaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbb")


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def onnx_entry(root: Path, key: str, spec: str, size: int = 1000) -> Entry:
    """A complete (loadable) ONNX entry with one graph of `size` bytes and its lock file."""
    e = Entry(key, root=root / "onnx")
    e.dir.mkdir(parents=True)
    (e.dir / "image.onnx").write_bytes(b"x" * size)
    e.write_manifest({"spec": spec, "towers": {"image": {"graphs": {"fp32": {"file": "image.onnx", "size": size}}}}})
    e.lock_path().touch()
    return e


def feature_store(root: Path, model: str = "counting (image, center)") -> Path:
    from cliplab.train.features import _store

    s = _store(root / "features", f"image|{model}", 4, model)
    s.put({"a": np.ones(4), "b": np.zeros(4)})
    s.close()
    (path,) = (root / "features").glob("*.sqlite")
    return path


def class_entry(root: Path) -> Path:
    from cliplab.zeroshot import class_embeddings

    class_embeddings(CountingEncoder(), ["cat", "dog", "car"], ["a {}", "a photo of a {}."])
    (path,) = (root / "classes").glob("*.npy")
    return path


def age(paths, days: float) -> None:
    t = time.time() - days * DAY
    for p in paths:
        os.utime(p, (t, t))


def all_files(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in root.rglob("*") if p.is_file()}


def cli(*args):
    r = runner.invoke(app, ["cache", *map(str, args)])
    return r.exit_code, r.stdout, r.stderr


def test_lists_kinds_models_sizes_and_a_total(root):
    onnx_entry(root, KEYS[0], "lite", size=1234)
    feature_store(root)
    class_entry(root)
    by_kind = {e.kind: e for e in list_cache()}
    assert by_kind["onnx"].model == "lite" and by_kind["onnx"].note == "fp32"
    assert by_kind["onnx"].size_bytes == sum(f.stat().st_size for f in (root / "onnx").rglob("*") if f.is_file())
    assert by_kind["onnx"].size_bytes > 1234  # the graph + manifest
    assert by_kind["features"].model == "counting (image, center)" and by_kind["features"].size_bytes > 0
    assert by_kind["classes"].model == "toy" and by_kind["classes"].note == "3 labels × 2 templates"
    assert all(abs(e.last_used - time.time()) < 60 for e in by_kind.values())
    code, out, _ = cli("--json")
    d = json.loads(out)
    assert code == 0 and d["root"] == str(root) and [e["kind"] for e in d["entries"]] == ["onnx", "features", "classes"]
    # every file in the cache belongs to exactly one entry, so the total is the folder's size
    assert d["total_bytes"] == sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    code, out, _ = cli()
    assert code == 0 and "lite" in out and "counting" in out and "classes" in out
    assert f"total: 3 entries, {d['total_bytes'] / 1e3:.1f} kB in {root}" in " ".join(out.split())
    code, out, _ = cli("--kind", "onnx", "--json")
    assert [e["kind"] for e in json.loads(out)["entries"]] == ["onnx"]


def test_a_load_stamps_last_used_at_most_hourly(root):
    e = onnx_entry(root, KEYS[0], "lite")
    stamp = e.dir / USED_STAMP
    assert Entry(KEYS[0], root=root / "onnx").load() is not None and stamp.is_file()
    age([stamp], 2 / 24)  # two hours ago: the next load touches it
    Entry(KEYS[0], root=root / "onnx").load()
    assert time.time() - stamp.stat().st_mtime < 60
    age([stamp], 10 / 1440)  # ten minutes ago: left alone (a load costs a stat, not a write)
    before = stamp.stat().st_mtime
    Entry(KEYS[0], root=root / "onnx").load()
    assert stamp.stat().st_mtime == before
    (entry,) = list_cache(["onnx"])
    assert entry.last_used == before
    npy = class_entry(root)  # a class-embedding hit bumps its .npy the same way
    age([npy], 3)
    from cliplab.zeroshot import class_embeddings

    class_embeddings(CountingEncoder(), ["cat", "dog", "car"], ["a {}", "a photo of a {}."])
    assert time.time() - npy.stat().st_mtime < 60


def test_clean_older_than_keeps_recent_entries(root):
    old, new = onnx_entry(root, KEYS[0], "conse"), onnx_entry(root, KEYS[1], "lite")
    age([*old.dir.iterdir(), old.dir, old.lock_path()], 40)
    store = feature_store(root)
    age(store.parent.iterdir(), 40)
    npy = class_entry(root)  # recent
    code, out, _ = cli("clean", "--older-than", "30d")
    assert code == 0, out
    assert "removed onnx conse" in out and "removed 2 entries" in out.splitlines()[-1]
    assert not old.dir.exists() and not old.lock_path().exists()  # its lock file goes too
    assert not list((root / "features").iterdir())  # .sqlite, .json, .lock
    assert new.dir.is_dir() and new.lock_path().exists() and npy.is_file()
    assert [e.model for e in list_cache()] == ["lite", "toy"]


def _hold(root: Path, code: str) -> subprocess.Popen:
    """A child process that takes a cache lock, says so, and keeps it until its stdin closes."""
    env = {**os.environ, "CLIPLAB_CACHE": str(root)}
    p = subprocess.Popen(
        [sys.executable, "-c", code + "\nprint('held', flush=True)\nimport sys; sys.stdin.read()"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout.readline().strip() == "held"
    return p


def test_an_entry_another_process_holds_is_skipped(root):
    busy, idle = onnx_entry(root, KEYS[0], "lite"), onnx_entry(root, KEYS[1], "conse")
    store = feature_store(root)
    exporting = _hold(
        root, f"from cliplab.runtime.cache import Entry\nheld = Entry({KEYS[0]!r}).lock()\nheld.__enter__()"
    )
    training = _hold(  # a training run reading the store holds it (shared) while open
        root, f"from cliplab.train.features import FeatureStore\ns = FeatureStore({str(store)!r}, 4)"
    )
    try:
        code, out, err = cli("clean")
        assert code == 0
        assert busy.dir.is_dir() and (busy.dir / "image.onnx").is_file() and store.is_file()
        assert not idle.dir.exists()
        assert "skipped onnx lite" in err and "skipped features" in err and "in use by another process" in err
        assert "removed 1 entry" in out and "2 in use, skipped" in out
        res = clean_cache(dry_run=True)  # a dry run reports them the same way
        assert {e.kind for e in res.held} == {"onnx", "features"} and not res.removed
    finally:
        for p in (exporting, training):
            p.stdin.close()
            p.wait(timeout=30)
    assert {e.kind for e in clean_cache().removed} == {"onnx", "features"}  # free now
    assert not busy.dir.exists() and not list((root / "features").iterdir())


def test_dry_run_removes_nothing(root):
    onnx_entry(root, KEYS[0], "lite")
    feature_store(root)
    class_entry(root)
    before = all_files(root)
    code, out, _ = cli("clean", "--dry-run")
    assert code == 0 and "would remove 3 entries" in out and "would remove onnx lite" in out
    code, out, _ = cli("clean", "--dry-run", "--kind", "features", "--json")
    d = json.loads(out)
    assert d["dry_run"] is True and [e["kind"] for e in d["removed"]] == ["features"] and d["freed_bytes"] > 0
    assert all_files(root) == before  # not one file removed, created or touched


def test_only_cache_entries_are_removed(root):
    onnx_entry(root, KEYS[0], "lite")
    feature_store(root)
    class_entry(root)
    strays = [
        root / "onnx" / "notes.txt",
        root / "onnx" / "my-export" / "model.onnx",  # not a cache key
        root / "features" / "mine.sqlite",
        root / "classes" / "labels.npy",
        root / "keep.txt",
    ]
    for p in strays:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("mine")
    assert len(clean_cache().removed) == 3
    assert sorted(all_files(root)) == sorted(map(str, strays))


def test_lock_file_follows_a_lock_deleted_while_held(tmp_path):
    """The cleaner deletes a lock file while holding it; a process that was waiting on the old file
    must then lock the new one, or two processes would each think they hold the lock."""
    lock = tmp_path / "k.lock"
    first = lock_file(lock)
    got = []
    waiter = threading.Thread(target=lambda: got.append(lock_file(lock)))
    waiter.start()
    time.sleep(0.2)
    assert not got  # blocked behind `first`
    lock.unlink()
    os.close(first)
    waiter.join(timeout=10)
    assert got and os.path.samestat(os.fstat(got[0]), os.stat(lock))
    assert lock_file(lock, wait=False) is None  # and it really is held
    os.close(got[0])


def test_durations_and_bad_options(root):
    assert parse_duration("30d") == 30 * DAY and parse_duration("12h") == 12 * 3600 and parse_duration("90m") == 5400
    assert parse_duration("2w") == 14 * DAY and parse_duration("1.5h") == 5400
    for args, word in [(("clean", "--older-than", "30 days"), "--older-than"), (("--kind", "models"), "--kind")]:
        code, _, err = cli(*args)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and word in lines[0], err
