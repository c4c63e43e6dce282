"""The per-file time limit (CLIPLAB_DECODE_TIMEOUT): a decoder that hangs costs bounded time, its
file is recorded as failed, and the run goes on at full strength. The hanging decoder here blocks
until the test releases it, as one stuck in C code would."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from cliplab.data.pool import DecodePool, DecodeTimeout
from tests.helpers import ToyEncoder, make_image


@pytest.fixture
def gate():
    """An event the hanging decoder waits for; set at the end so no thread outlives the test."""
    ev = threading.Event()
    yield ev
    ev.set()


def test_a_hung_job_times_out_and_its_thread_is_replaced(gate):
    with DecodePool(workers=1, timeout=0.2) as pool:
        hung = pool.submit(gate.wait)
        after = [pool.submit(lambda i=i: i * 2) for i in range(3)]  # queued behind the hung job
        with pytest.raises(DecodeTimeout, match=r"over 0.2 s"):
            pool.result(hung)
        assert [pool.result(j) for j in after] == [0, 2, 4]  # a new thread took the stuck one's place
        assert pool.timed_out == 1
        boom = pool.submit(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            pool.result(boom)
    stuck = [t for t in threading.enumerate() if t.name == "cliplab-decode" and t.is_alive()]
    assert stuck and all(t.daemon for t in stuck)  # never keeps the process from exiting


@pytest.fixture
def hanging_decoder(monkeypatch, gate):
    """load_image hangs on any file named hang*."""
    import cliplab.pipeline as pipeline

    real = pipeline.load_image

    def load(path, *a, **k):
        if Path(str(path)).name.startswith("hang"):
            gate.wait()
        return real(path, *a, **k)

    monkeypatch.setattr(pipeline, "load_image", load)
    monkeypatch.setenv("CLIPLAB_DECODE_TIMEOUT", "0.5")


def test_embed_records_a_hanging_file_as_failed(tmp_path, hanging_decoder):
    from cliplab.pipeline import embed_images

    paths = [make_image(tmp_path / f"{name}.png", color=(20 * i, 100, 50)) for i, name in enumerate("abcdefg")]
    paths.insert(2, make_image(tmp_path / "hang.png"))
    paths.insert(5, make_image(tmp_path / "hang2.png"))
    t = time.monotonic()
    res = embed_images(ToyEncoder(), paths, batch_size=3, workers=2)
    assert time.monotonic() - t < 60  # it returns (the hung decoders are still blocked)
    assert res.status == ["ok", "ok", "failed", "ok", "ok", "failed", "ok", "ok", "ok"]
    assert res.errors[2] == "decode took too long (over 0.5 s; CLIPLAB_DECODE_TIMEOUT)"
    assert res.n_ok == 7


def test_index_records_a_hanging_file_as_failed(tmp_path, monkeypatch, hanging_decoder):
    from cliplab.index import Collection

    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "home"))
    d = tmp_path / "lib"
    for i in range(4):
        make_image(d / f"p{i}.png", color=(60 * i, 10, 10))
    make_image(d / "hang.png")
    col = Collection(d, encoder=ToyEncoder())
    s = col.update()
    assert (s.scanned, s.embedded, s.failed) == (5, 4, 1)
    assert col.status()["failure_reasons"] == {"decode took too long": 1}
    col.close()


def test_bad_setting_is_refused(monkeypatch):
    from cliplab.errors import SettingsError
    from cliplab.settings import settings

    monkeypatch.setenv("CLIPLAB_DECODE_TIMEOUT", "soon")
    with pytest.raises(SettingsError, match="CLIPLAB_DECODE_TIMEOUT"):
        settings()
    monkeypatch.setenv("CLIPLAB_DECODE_TIMEOUT", "2.5")
    assert settings().decode_timeout == 2.5
    monkeypatch.delenv("CLIPLAB_DECODE_TIMEOUT")
    assert settings().decode_timeout == 30


HANG_FOREVER = """
import threading
from pathlib import Path
import cliplab.pipeline as pl
from tests.helpers import ToyEncoder, make_image
real = pl.load_image
pl.load_image = lambda p, *a, **k: threading.Event().wait() if Path(p).name.startswith("hang") else real(p, *a, **k)
d = Path({folder!r})
r = pl.embed_images(ToyEncoder(), [make_image(d / "a.png"), make_image(d / "hang.png"), make_image(d / "b.png")])
print(r.status)
"""


def test_a_process_with_a_decoder_hung_forever_still_exits(tmp_path):
    """The stuck thread is a daemon: the run ends and so does the process (a CLI run returns)."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "CLIPLAB_DECODE_TIMEOUT": "0.5", "PYTHONPATH": str(root)}
    r = subprocess.run(
        [sys.executable, "-c", HANG_FOREVER.format(folder=str(tmp_path))],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['ok', 'failed', 'ok']"
