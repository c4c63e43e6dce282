"""Index tests never write to the real user data dir, and share a tiny encoder and real-image folders."""

from __future__ import annotations

import pytest

from tests.index.helpers import TinyEncoder, copy_images


@pytest.fixture(autouse=True)
def index_home(tmp_path, monkeypatch):
    home = tmp_path / "index-home"
    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(home))
    return home


@pytest.fixture
def tiny():
    return TinyEncoder()


@pytest.fixture
def photos(shared, tmp_path):
    """A folder of 30 real JPEGs (copies, so tests may modify them)."""
    folder = tmp_path / "photos"
    copy_images(shared, folder, 30)
    return folder


def no_model():
    raise AssertionError("the model was loaded although nothing needed it")
