"""Shared fixtures. Real-data tests read ../shared (or $CLIPLAB_SHARED) and skip only if it is absent."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Caches (ONNX exports, class embeddings, training features) go to one temp dir per test session,
# never the user's ~/.cache; the session shares it, so `lite` is exported to ONNX once.
os.environ["CLIPLAB_CACHE"] = tempfile.mkdtemp(prefix="cliplab-test-cache-")
atexit.register(shutil.rmtree, os.environ["CLIPLAB_CACHE"], True)

from cliplab.data.shared import shared_dir  # noqa: E402


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
