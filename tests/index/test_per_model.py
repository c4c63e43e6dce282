"""One index per folder and model: several models side by side without re-embedding each other,
the default-index rule, indexes made by the current release used in place, `indexes rm`."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import cliplab.cli.index as cli_index
from cliplab.cli.app import app
from cliplab.index import Collection, IndexBusyError
from cliplab.index.listing import find_one, remove_index
from cliplab.index.locate import default_index_dir
from tests.index.conftest import no_model
from tests.index.helpers import TinyEncoder


class Counting(TinyEncoder):
    """A tiny encoder that counts the images it embeds (a model of its own: its name is its identity)."""

    def __init__(self, name: str):
        super().__init__()
        self.name, self.images = name, 0

    def encode_image_batch(self, batch):
        self.images += len(batch)
        return super().encode_image_batch(batch)


@pytest.fixture
def encoders():
    return {"lite": Counting("tiny-lite"), "conse": Counting("tiny-conse")}


@pytest.fixture
def run(monkeypatch, encoders):
    """The CLI with `lite` and `conse` standing for two tiny models (no weights)."""
    monkeypatch.setattr(cli_index, "load_model", lambda spec, *a, **k: encoders[spec])
    runner = CliRunner()

    def invoke(*args):
        res = runner.invoke(app, [str(a) for a in args])
        return res.exit_code, res.stdout, res.stderr

    return invoke


def embedded(encoders) -> dict[str, int]:
    return {spec: e.images for spec, e in encoders.items()}


def test_two_models_on_one_folder(run, encoders, photos, index_home):
    code, out, _ = run("index", photos, "--model", "lite", "--model", "conse")
    assert code == 0 and out.count("30 images indexed") == 2
    assert embedded(encoders) == {"lite": 30, "conse": 30}
    # the first index where every release put it, the next one beside it
    base = default_index_dir(photos).name
    assert sorted(p.name for p in index_home.iterdir()) == [base, f"{base}--conse"]

    code, out, _ = run("search", "x", "--dir", photos, "--model", "conse", "-k", 4, "--json")
    res = json.loads(out)
    assert code == 0 and res["model"] == "conse" and res["index_dir"].endswith("--conse") and len(res["results"]) == 4
    code, out, _ = run("search", "x", "--dir", photos, "-k", 4, "--json")  # several indexes: lite by default
    assert code == 0 and json.loads(out)["model"] == "lite"
    code, out, _ = run("index", photos, "--model", "conse", "--model", "lite")  # both up to date already
    assert code == 0 and out.count("this run: 0 embedded") == 2
    assert embedded(encoders) == {"lite": 30, "conse": 30}  # nobody re-embedded anything

    st = json.loads(run("index", photos, "--status", "--json")[1])
    assert st["model"] == "lite" and [(i["model"], i["indexed"]) for i in st["indexes"]] == [
        ("lite", 30),
        ("conse", 30),
    ]
    code, out, _ = run("index", photos, "--status")
    assert code == 0 and "index status: lite" in out and "index status: conse" in out
    rows = json.loads(run("indexes", "--json")[1])["indexes"]
    assert sorted((r["folder"], r["model"], r["images"]) for r in rows) == [
        (str(photos), "conse", 30),
        (str(photos), "lite", 30),
    ]


def test_reindex_rebuilds_only_the_named_models_index(run, encoders, photos):
    assert run("index", photos, "--model", "lite", "--model", "conse")[0] == 0
    code, out, _ = run("index", photos, "--model", "conse", "--reindex")
    assert code == 0 and "30 embedded" in out
    assert embedded(encoders) == {"lite": 30, "conse": 60}
    st = json.loads(run("index", photos, "--status", "--model", "lite", "--json")[1])
    assert (st["model"], st["indexed"]) == ("lite", 30)


def test_status_of_a_model_not_indexed_creates_nothing(run, photos, index_home):
    assert run("index", photos, "--model", "lite")[0] == 0
    code, out, _ = run("index", photos, "--status", "--model", "conse")
    assert code == 0 and "not indexed with conse" in out and "--model conse" in out
    assert len(list(index_home.iterdir())) == 1


class A(TinyEncoder):
    name = "model-a"


class B(TinyEncoder):
    name = "model-b"


def test_default_index_only_else_lite_else_first_made(photos, index_home):
    Collection(photos, encoder=A()).update()
    assert Collection(photos).model == "model-a"  # the only one
    Collection(photos, encoder=B()).update()
    assert Collection(photos).model == "model-a"  # several, none lite: the first made
    Collection(photos, model="lite", loader=lambda spec: TinyEncoder()).update()
    assert Collection(photos).model == "lite"
    assert len(list(index_home.iterdir())) == 3  # looking up the default made nothing new


def test_sub_folders_use_the_ancestors_index_of_their_model(photos):
    (photos / "sub").mkdir()
    for i in range(3):
        (photos / f"img00{i}.jpg").rename(photos / "sub" / f"img00{i}.jpg")
    Collection(photos, encoder=A()).update()
    b = Collection(photos, encoder=B())
    b.update()
    col = Collection.find(photos / "sub", encoder=B(), loader=no_model)
    assert (col.index_dir, col.folder, col.scope, col.count_under()) == (b.index_dir, photos, "sub", 3)
    assert len(col.search("x", k=10)) == 3
    new = Collection.find(photos / "sub", model="lite")  # no lite index above: one of the sub-folder itself
    assert (new.folder, new.scope, new.status()["indexed"]) == (photos / "sub", None, 0)


def legacy_index(photos, home) -> tuple:
    """An index as the current release writes it: <home>/<folder name>-<12 hex of sha1(path)>/ holding
    catalog.db, ann-<epoch>-<gen>.faiss and lock, its model in the catalog's meta."""
    d = home / f"photos-{hashlib.sha1(str(photos.resolve()).encode()).hexdigest()[:12]}"
    col = Collection(photos, index_dir=d, encoder=TinyEncoder())
    col.update()
    meta = col.catalog.all_meta()
    col.close()
    names = {p.name for p in d.iterdir()}
    assert names == {"catalog.db", "lock", f"ann-{meta['epoch']}-{meta['gen']}.faiss"}, names
    assert {"folder", "model", "dim", "model_info", "epoch", "gen", "schema_version"} <= set(meta)
    return d, meta


def test_an_index_of_the_current_release_keeps_working_in_place(photos, index_home, monkeypatch):
    old, meta = legacy_index(photos, index_home)
    spy = Counting("tiny-test")  # the same model as the old index (same name, same vectors)
    monkeypatch.setattr(cli_index, "load_model", lambda spec, *a, **k: spy)
    runner = CliRunner()
    res = runner.invoke(app, ["search", "x", "--dir", str(photos), "-k", "3", "--json"])
    out = json.loads(res.stdout)
    assert res.exit_code == 0 and out["index_dir"] == str(old) and out["model"] == "tiny-test"
    assert len(out["results"]) == 3 and spy.images == 0  # searched in place, nothing re-embedded
    col = Collection(photos, encoder=spy)
    assert col.index_dir == old and col.update().embedded == 0 and spy.images == 0
    # another model goes beside it; the old one is untouched and still found for its model
    other = Collection(photos, encoder=B())
    other.update()
    assert other.index_dir == old.parent / f"{old.name}--model-b"
    again = Collection(photos, encoder=spy)
    assert again.index_dir == old and again.catalog.all_meta()["epoch"] == meta["epoch"]
    assert again.status()["indexed"] == 30 and again.update().embedded == 0


def hold_lock(index_dir):
    """Another process holding the index's writer lock (as a running `cliplab index` does)."""
    code = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code, str(index_dir / "lock")], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_indexes_rm_by_folder_and_model_by_id_and_never_under_a_writer(run, photos, index_home):
    assert run("index", photos, "--model", "lite", "--model", "conse")[0] == 0
    ids = {r["model"]: r["id"] for r in json.loads(run("indexes", "--json")[1])["indexes"]}
    code, _, err = run("indexes", "rm", photos)
    assert code == 2 and "has 2 indexes (conse, lite)" in err and "--model" in err
    code, _, err = run("indexes", "rm", "photos-")
    assert code == 2 and "matches 2 indexes" in err
    code, _, err = run("indexes", "rm", "nope")
    assert code == 2 and "no index 'nope'" in err

    holder = hold_lock(index_home / ids["conse"])
    try:
        code, _, err = run("indexes", "rm", photos, "--model", "conse")
        assert code == 2 and err.startswith("error:") and "being updated by another process" in err
        assert "Traceback" not in err and (index_home / ids["conse"] / "catalog.db").is_file()
    finally:
        holder.kill()
        holder.wait()
    code, out, _ = run("indexes", "rm", photos, "--model", "conse", "--dry-run")
    assert code == 0 and "would remove index" in out and (index_home / ids["conse"]).is_dir()
    code, out, _ = run("indexes", "rm", photos, "--model", "conse")
    assert code == 0 and f"removed index {ids['conse']}" in out and not (index_home / ids["conse"]).exists()

    keep = index_home / ids["lite"] / "notes.txt"  # not an index file: left alone
    keep.write_text("mine")
    code, out, _ = run("indexes", "rm", ids["lite"][:-3])  # a unique prefix of the id
    assert code == 0 and f"removed index {ids['lite']}" in out
    assert [p.name for p in (index_home / ids["lite"]).iterdir()] == ["notes.txt"]
    assert json.loads(run("indexes", "--json")[1])["indexes"] == []


def test_remove_index_refuses_while_the_lock_is_held(photos, index_home):
    col = Collection(photos, encoder=TinyEncoder())
    col.update()
    info = find_one(str(photos))
    with col._locked(wait=False):  # a writer of this process counts too: flock is per open file
        with pytest.raises(IndexBusyError):
            remove_index(info)
    remove_index(info)
    assert not col.index_dir.exists()


def test_serve_opens_the_index_of_its_model(photos):
    from cliplab.serve.state import open_state

    encoders = {"lite": TinyEncoder(), "conse": B()}
    load = encoders.__getitem__
    Collection(photos, model="lite", loader=load).update()
    Collection(photos, model="conse", loader=load).update()
    for model, suffix in (("conse", "--conse"), (None, "")):
        state = open_state([photos], model=model, loader=load, update=False)
        try:
            (src,) = state.sources.values()
            assert str(src.collection.index_dir).endswith(default_index_dir(photos).name + suffix)
            assert src.info()["images"] == 30 and src.model == (model or "lite")
        finally:
            state.close()
