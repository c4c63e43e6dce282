"""An index made by the previous release (schema 1) upgrades in place on first use: the schema
migrates in one transaction (SIGKILL-safe), photo metadata is read from the files' headers, and no
image is embedded again. A newer schema than this cliplab knows is a clear error."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from cliplab.errors import IndexMismatchError
from cliplab.index import Collection
from cliplab.index.migrate import SCHEMA_VERSION
from tests.index.fixture_images import NAMES, write_images
from tests.index.helpers import TinyEncoder

FIXTURE = (
    Path(__file__).parent / "fixtures" / "schema1" / "catalog.db"
)  # made by the code before schema 2 (as every earlier release wrote it)


def no_model(_spec):
    raise AssertionError("the model was loaded: the upgrade re-embedded something")


@pytest.fixture
def old(tmp_path):
    folder, idx = tmp_path / "photos", tmp_path / "idx"
    write_images(folder)
    idx.mkdir()
    shutil.copy(FIXTURE, idx / "catalog.db")
    return folder, idx


def rows(db: Path, sql: str) -> list:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_schema_1_upgrades_in_place_without_embedding(old):
    folder, idx = old
    vectors = rows(idx / "catalog.db", "SELECT id, vec FROM vectors ORDER BY id")
    assert rows(idx / "catalog.db", "SELECT value FROM meta WHERE key='schema_version'") == [("1",)]
    with Collection(folder, index_dir=idx, loader=no_model) as col:
        st = col.update()
        assert (st.embedded, st.metadata, st.model_loaded) == (0, 3, False)
        status = col.status()
        assert status["schema_version"] == SCHEMA_VERSION and status["indexed"] == 3
        assert status["metadata"]["with_metadata"] == 3 and status["metadata"]["date_from_mtime"] == 3
        assert status["written_by"].startswith("cliplab ")
        hits = col.search_vector(col.catalog.vectors()[1][0], k=3)
        assert sorted(h.relpath for h in hits) == sorted(NAMES)
    assert rows(idx / "catalog.db", "SELECT id, vec FROM vectors ORDER BY id") == vectors  # not one vector changed
    meta = rows(idx / "catalog.db", "SELECT width, height, orientation, format FROM photos")
    assert meta == [(64, 48, "landscape", "PNG")] * 3


def test_metadata_follows_the_files(old):
    folder, idx = old
    with Collection(folder, index_dir=idx, loader=lambda spec: TinyEncoder()) as col:
        col.update()
        Image.new("RGB", (30, 60), "blue").save(folder / NAMES[0])  # changed: portrait now
        (folder / NAMES[1]).unlink()
        st = col.update()
        assert st.metadata == 1
    got = dict(rows(idx / "catalog.db", "SELECT f.path, p.orientation FROM photos p JOIN files f ON f.id = p.id"))
    assert got == {NAMES[0]: "portrait", NAMES[2]: "landscape"}


def test_a_newer_schema_is_a_clear_error(old):
    folder, idx = old
    con = sqlite3.connect(idx / "catalog.db")
    con.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    con.commit()
    con.close()
    with pytest.raises(IndexMismatchError, match="schema version 99; this cliplab reads up to"):
        Collection(folder, index_dir=idx, loader=no_model)


CHILD = textwrap.dedent(
    """
    import sys, time
    import cliplab.index.migrate as m
    real = m.step
    def slow(con, version):
        real(con, version)
        print("migrating", flush=True)
        time.sleep(60)  # killed here, inside the transaction
    m.step = slow
    from cliplab.index.catalog import Catalog
    Catalog(sys.argv[1])
    """
)


def test_a_migration_killed_with_sigkill_loses_nothing(old):
    folder, idx = old
    before = rows(idx / "catalog.db", "SELECT id, path, hash FROM files ORDER BY id")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(idx)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "migrating"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
    # the transaction died with the process: schema 1, every row as it was, no half table
    assert rows(idx / "catalog.db", "SELECT value FROM meta WHERE key='schema_version'") == [("1",)]
    assert rows(idx / "catalog.db", "SELECT name FROM sqlite_master WHERE name='photos'") == []
    assert rows(idx / "catalog.db", "SELECT id, path, hash FROM files ORDER BY id") == before
    with Collection(folder, index_dir=idx, loader=no_model) as col:  # and the next open upgrades it
        assert col.update().metadata == 3 and col.status()["schema_version"] == SCHEMA_VERSION


FIXTURE_2 = Path(__file__).parent / "fixtures" / "schema2" / "catalog.db"  # made by 0.3.0 (schema 2)


def test_schema_2_upgrades_in_place_keeping_vectors_and_metadata(tmp_path):
    folder, idx = tmp_path / "photos", tmp_path / "idx"
    write_images(folder)
    idx.mkdir()
    shutil.copy(FIXTURE_2, idx / "catalog.db")
    vectors = rows(idx / "catalog.db", "SELECT id, vec FROM vectors ORDER BY id")
    assert rows(idx / "catalog.db", "SELECT value FROM meta WHERE key='schema_version'") == [("2",)]
    with Collection(folder, index_dir=idx, loader=no_model) as col:
        st = col.update()
        # the files were written again (new mtimes): same content, so no vector, only the metadata is read
        assert (st.embedded, st.metadata, st.model_loaded) == (0, 3, False)
        assert col.status()["schema_version"] == SCHEMA_VERSION == 3
    assert rows(idx / "catalog.db", "SELECT id, vec FROM vectors ORDER BY id") == vectors
    assert rows(idx / "catalog.db", "SELECT width, height, orientation FROM photos") == [(64, 48, "landscape")] * 3
    assert rows(idx / "catalog.db", "SELECT count(*) FROM ocr") == [(0,)]
    assert rows(idx / "catalog.db", "SELECT count(*) FROM frames") == [(0,)]
