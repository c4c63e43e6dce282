"""Shared fixtures. Real-data tests read ../shared (or $CLIPLAB_SHARED) and skip only if it is absent."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Caches (ONNX exports, class embeddings, training features) go to one temp dir per test session,
# never the user's ~/.cache; the session shares it, so `lite` is exported to ONNX once.
os.environ["CLIPLAB_CACHE"] = tempfile.mkdtemp(prefix="cliplab-test-cache-")
atexit.register(shutil.rmtree, os.environ["CLIPLAB_CACHE"], True)

from cliplab.data.shared import shared_dir  # noqa: E402

USER_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cliplab"
USER_INDEXES = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "cliplab" / "indexes"


def _files(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")} if root.is_dir() else set()


_BEFORE = {root: _files(root) for root in (USER_CACHE, USER_INDEXES)}


def pytest_sessionfinish(session, exitstatus):
    """Fail the run when a test wrote into the user's cache or index home (a fixture that dropped
    CLIPLAB_CACHE or CLIPLAB_INDEX_HOME)."""
    for root, before in _BEFORE.items():
        new = sorted(_files(root) - before)
        if new:
            print(f"\nerror: the tests wrote into the user's {root}: {new[:3]}")
            session.exitstatus = 1


@pytest.fixture(scope="session")
def shared():
    """Path to the shared data folder; skips the test when it is truly absent."""
    root = shared_dir()
    if root is None:
        pytest.skip("shared data folder absent (../shared or $CLIPLAB_SHARED)")
    return root


@pytest.fixture(scope="session")
def conse_encoder():
    """The ConSE encoder with real EfficientNet-Lite0 + MiniLM weights, loaded once per session."""
    from cliplab.models import load_encoder

    return load_encoder("conse")


@pytest.fixture(scope="session")
def lite_encoder():
    """`--model lite` as users get it (trained heads when shipped, else ConSE)."""
    from cliplab.models import load_encoder

    return load_encoder("lite")


@pytest.fixture
def dated_collection(tmp_path, monkeypatch):
    """36 generated photos with EXIF dates, cameras, GPS and orientations, indexed with the tiny
    encoder (its index, and any the test makes, in a temp index home)."""
    from cliplab.index import Collection
    from tests.index.helpers import TinyEncoder, make_dated_folder

    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "index-home"))
    c = Collection(make_dated_folder(tmp_path / "photos"), encoder=TinyEncoder())
    c.update()
    yield c
    c.close()
