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


def _user_cache_files() -> set[str]:
    return {str(p) for p in USER_CACHE.rglob("*")} if USER_CACHE.is_dir() else set()


_USER_CACHE_BEFORE = _user_cache_files()


def pytest_sessionfinish(session, exitstatus):
    """Fail the run when a test wrote into the user's cache (a fixture that dropped CLIPLAB_CACHE)."""
    new = sorted(_user_cache_files() - _USER_CACHE_BEFORE)
    if new:
        print(f"\nerror: the tests wrote into the user's cache {USER_CACHE}: {new[:3]}")
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
