"""SIGKILL the indexer part-way, re-run: every valid image is indexed exactly once, nothing is lost."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cliplab.index import Collection, IndexBusyError
from tests.index.helpers import TinyEncoder, copy_images

REPO = Path(__file__).resolve().parents[2]
N_GOOD = 24


@pytest.fixture
def folder(shared, tmp_path):
    f = tmp_path / "pics"
    copy_images(shared, f, N_GOOD)
    (f / "empty.jpg").write_bytes(b"")
    (f / "notes.png").write_text("not an image")
    return f


def child(folder, index_dir, kill_after=0, delay=0.0):
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "CLIPLAB_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.index.crash_child", str(folder), str(index_dir), str(kill_after), str(delay)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def assert_consistent(col) -> set[str]:
    """Catalog invariants that hold at every committed moment: ok ⇔ has a vector, FAISS = catalog."""
    con = col.catalog.con
    ok = {p for (p,) in con.execute("SELECT path FROM files WHERE status='ok'")}
    rows = con.execute("SELECT path, status, error FROM files").fetchall()
    assert all((col.folder / p).is_file() for p, _, _ in rows)  # only real files, never a half-written path
    assert all(bool(e) == (s == "failed") for _, s, e in rows)  # failed rows say why; ok rows carry no error
    assert con.execute("SELECT COUNT(*) FROM vectors").fetchone()[0] == len(ok)
    assert con.execute("SELECT COUNT(*) FROM files f JOIN vectors v ON v.id=f.id WHERE f.status='ok'").fetchone()[
        0
    ] == len(ok)
    if ok:
        hits = [h.relpath for h in col.search("anything", k=len(ok) + 10)]
        assert sorted(hits) == sorted(ok)  # search works on exactly what is committed, once each
    return ok


def rerun_and_check(folder, index_dir, committed_before: int, **how):
    col = Collection(folder, index_dir=index_dir, **(how or {"encoder": TinyEncoder()}))
    s = col.update()
    assert s.embedded == N_GOOD - committed_before
    ok = assert_consistent(col)
    assert ok == {f"img{i:03d}.jpg" for i in range(N_GOOD)}
    assert dict(col.catalog.failures()).keys() == {"empty.jpg", "notes.png"}
    assert col.ann.get().ntotal == N_GOOD
    assert col.update().embedded == 0


@pytest.mark.parametrize("kill_after", [1, 2, 6])  # 1: right after the deletions/reuse commit
def test_sigkill_after_n_commits(folder, tmp_path, kill_after):
    idx = tmp_path / "idx"
    p = child(folder, idx, kill_after=kill_after)
    lines = p.stdout.read().splitlines()
    assert p.wait(timeout=120) == -signal.SIGKILL and "finished" not in lines
    col = Collection(folder, index_dir=idx, encoder=TinyEncoder())
    committed = assert_consistent(col)
    # Batches of 2 files in name order: exactly the committed batches' valid images survive (the
    # first batch is empty.jpg + img000.jpg), and their broken files are recorded as failed.
    first = sorted(f.name for f in folder.iterdir())[: 2 * (kill_after - 1)]
    assert committed == {n for n in first if n.startswith("img")}
    assert set(dict(col.catalog.failures())) == {n for n in first if not n.startswith("img")}
    rerun_and_check(folder, idx, len(committed))


def test_sigkill_mid_batch_while_searching(folder, tmp_path):
    """Killed from outside at an arbitrary point inside a batch; a concurrent reader sees committed rows."""
    idx = tmp_path / "idx"
    p = child(folder, idx, delay=0.15)
    seen = 0
    for line in p.stdout:
        if line.startswith("progress"):
            seen += 1
        if seen == 3:
            reader = Collection(folder, index_dir=idx, encoder=TinyEncoder())
            with pytest.raises(IndexBusyError):
                reader.update()  # one writer at a time
            assert assert_consistent(reader)  # searching during indexing works
            break
    p.kill()  # SIGKILL, most likely in the middle of decoding/encoding a batch
    assert p.wait(timeout=60) == -signal.SIGKILL
    committed = assert_consistent(Collection(folder, index_dir=idx, encoder=TinyEncoder()))
    assert len(committed) < N_GOOD
    rerun_and_check(folder, idx, len(committed))


def committed_files(index_dir) -> int:
    try:
        con = sqlite3.connect(f"file:{index_dir / 'catalog.db'}?mode=ro", uri=True)
        try:
            return con.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:  # not created yet
        return 0


@pytest.mark.parametrize("command", ["index", "search"])  # explicit, and implicit (search of a new folder)
def test_ctrl_c_says_what_was_kept_and_a_rerun_finishes(folder, tmp_path, command):
    idx = tmp_path / "idx"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "CLIPLAB_THREADS": "1"}
    p = subprocess.Popen(
        [sys.executable, "-m", "tests.index.interrupt_child", command, str(folder), str(idx), "0.5"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while committed_files(idx) < 4:  # a few batches in
        assert p.poll() is None and time.monotonic() < deadline, p.communicate()
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)  # what Ctrl-C sends
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    said = re.search(r"interrupted: (\d+) of 26 new or changed images indexed and kept; run again to finish", err)
    assert said and "Traceback" not in err, err
    kept = int(said.group(1))
    tiny = {"loader": lambda spec: TinyEncoder()}  # the CLI's index records lite; tiny stands in for it
    col = Collection(folder, index_dir=idx, **tiny)
    assert 4 <= kept < 26 and sum(col.catalog.counts().values()) == kept  # exactly what it said
    committed = assert_consistent(col)
    rerun_and_check(folder, idx, len(committed), **tiny)
