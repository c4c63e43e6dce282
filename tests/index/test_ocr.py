"""`index/ocr.py`: text read from images into the catalog and the keyword index (`index --ocr`)."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

import cliplab.cli.index as cli_index
from cliplab.cli.app import app
from cliplab.data.ocr import engine_name
from cliplab.index import Collection
from cliplab.index import ocr as text_in_images
from cliplab.index.photos import fill as fill_photos
from cliplab.search import parse, run
from tests.data.test_ocr import page, receipt, sign
from tests.index.helpers import TinyEncoder, copy_images


def names(hits):
    return [h.relpath for h in hits]


def ocr_rows(col) -> dict[str, tuple[str, str]]:
    q = "SELECT f.path, o.text, o.engine FROM ocr o JOIN files f ON f.id = o.id"
    return {p: (t, e) for p, t, e in col.catalog.con.execute(q)}


def words(col, rel) -> str:
    q = "SELECT k.text FROM keywords k JOIN files f ON f.id = k.rowid WHERE f.path = ?"
    row = col.catalog.con.execute(q, (rel,)).fetchone()
    return row[0] if row else None


@pytest.fixture
def folder(shared, tmp_path):
    """Three real photos, a receipt, a street sign and a corrupt file."""
    f = tmp_path / "photos"
    copy_images(shared, f, 3)
    receipt().save(f / "receipt.jpg", quality=92)
    sign().save(f / "sign.png")
    (f / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return f


def test_index_reads_text_and_keyword_search_finds_it(folder):
    with Collection(folder, encoder=TinyEncoder()) as col:
        stats = col.update(ocr=True)
        rows = ocr_rows(col)
        assert rows["receipt.jpg"][0].splitlines()[-1] == "TOTAL 42.50"
        assert "HARBOUR STREET" in rows["sign.png"][0]
        assert rows["img000.jpg"] == ("", engine_name())
        assert all(rows[f"img00{i}.jpg"][0] == "" for i in range(3))  # photos without text: '' stored
        assert "broken.jpg" not in rows and stats.failed == 1  # a corrupt file is failed; the pass goes on
        assert col.status()["ocr"] == {"enabled": True, "images": 5, "read": 5, "with_text": 2, "failed": 0}
        assert names(run(col, parse("total"), k=3, mode="keyword"))[0] == "receipt.jpg"
        assert names(run(col, parse("harbour"), k=3, mode="hybrid"))[0] == "sign.png"
        assert "TOTAL 42.50" in words(col, "receipt.jpg")


def test_a_changed_file_is_read_again_and_the_old_words_go(folder):
    with Collection(folder, encoder=TinyEncoder()) as col:
        col.update(ocr=True)
        page().save(folder / "receipt.jpg", quality=92)  # same name, new content
        col.update()  # remembered: reads the changed file again
        assert "lighthouse" in ocr_rows(col)["receipt.jpg"][0]
        assert run(col, parse("grocery"), k=3, mode="keyword") == []
        assert names(run(col, parse("lighthouse committee"), k=3, mode="keyword")) == ["receipt.jpg"]
        os.remove(folder / "sign.png")
        col.update()
        assert "sign.png" not in ocr_rows(col) and run(col, parse("harbour"), k=3, mode="keyword") == []


def fake_reader(monkeypatch, calls):
    def read_file(path):
        calls.append(path.name)
        return (f"words on {path.stem}", "fake 1")

    monkeypatch.setattr(text_in_images, "read_file", read_file)


def test_either_pass_may_run_first(tmp_path, shared, monkeypatch):
    """photos.fill rebuilds a keyword row with the text already read; ocr.fill adds to one that exists."""
    calls: list = []
    fake_reader(monkeypatch, calls)
    f = tmp_path / "p"
    copy_images(shared, f, 2)
    with Collection(f, encoder=TinyEncoder()) as col:
        col.update(ocr=True)  # photos first, then text
        assert words(col, "img000.jpg") == "words on img000"
        with col.catalog.write(bump=False) as w:  # words lost (e.g. an index upgraded in place): rebuilt
            w.con.execute("DELETE FROM photos")
            w.con.execute("DELETE FROM keywords")
        fill_photos(col.catalog, col.folder)
        assert words(col, "img000.jpg") == "words on img000" and len(calls) == 2  # not read again
        with col.catalog.write(bump=False) as w:  # text first, then photos
            w.con.execute("DELETE FROM photos")
            w.con.execute("DELETE FROM keywords")
            w.con.execute("DELETE FROM ocr")
        assert text_in_images.fill(col.catalog, col.folder) == 2
        assert words(col, "img000.jpg") is None  # no keyword row yet: nothing to add to
        fill_photos(col.catalog, col.folder)
        assert words(col, "img001.jpg") == "words on img001"
        assert names(run(col, parse("img001"), k=1, mode="keyword")) == ["img001.jpg"]


def test_remembered_touch_keeps_text_and_no_ocr_stops(tmp_path, shared, monkeypatch):
    calls: list = []
    fake_reader(monkeypatch, calls)
    f = tmp_path / "p"
    copy_images(shared, f, 3)
    with Collection(f, encoder=TinyEncoder()) as col:
        col.update()
        assert calls == [] and col.status()["ocr"]["enabled"] is False  # off unless asked for
        col.update(ocr=True)
        assert len(calls) == 3
    with Collection(f, encoder=TinyEncoder()) as col:  # a later run remembers it
        copy_images(shared, f / "new", 1)
        st = os.stat(f / "img000.jpg")
        os.utime(f / "img000.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: same content
        col.update()
        assert calls[3:] == ["img000.jpg"]  # only the new file
        assert words(col, "img000.jpg") == "words on img000"  # words rebuilt with the text kept
        col.update(ocr=False)
        copy_images(shared, f / "newer", 1)
        col.update()
        assert len(calls) == 4 and col.catalog.meta("ocr") == "off"


def test_a_file_unreadable_at_ocr_time_is_recorded_failed_and_videos_are_skipped(tmp_path, shared):
    f = tmp_path / "p"
    copy_images(shared, f, 2)
    with Collection(f, encoder=TinyEncoder()) as col:
        col.update()
        data = (f / "img001.jpg").read_bytes()
        (f / "img001.jpg").write_bytes(data[: len(data) // 2])  # truncated since it was indexed
        with col.catalog.write() as w:  # a video as the video pass would list it
            v = TinyEncoder().encode_texts(["x"])
            w.put_video(("clip.mp4", 10, 1, None), v[0], [0.0], v)
        assert [rel for _, rel in text_in_images.missing(col.catalog)] == ["img000.jpg", "img001.jpg"]
        assert text_in_images.fill(col.catalog, col.folder) == 2
        text, engine = ocr_rows(col)["img001.jpg"]
        assert text == "" and engine.startswith("failed: corrupt or truncated image")
        cov = text_in_images.coverage(col.catalog)
        assert (cov["images"], cov["read"], cov["failed"]) == (2, 1, 1)
        assert text_in_images.fill(col.catalog, col.folder) == 0  # not retried until the file changes


def test_a_killed_pass_keeps_what_it_committed(tmp_path, shared, monkeypatch):
    f = tmp_path / "p"
    copy_images(shared, f, 5)
    seen = []

    def read_file(path):
        if len(seen) == 3:
            raise KeyboardInterrupt
        seen.append(path)
        return ("text", "fake 1")

    monkeypatch.setattr(text_in_images, "BATCH", 2)
    monkeypatch.setattr(text_in_images, "read_file", read_file)
    with Collection(f, encoder=TinyEncoder()) as col:
        col.update()
        text_in_images.remember(col.catalog, True)
        with pytest.raises(KeyboardInterrupt):
            text_in_images.fill(col.catalog, col.folder)
        assert len(ocr_rows(col)) == 2  # the first batch; the third reading was not committed


def test_cli_index_ocr_status_and_search_json(folder, monkeypatch):
    monkeypatch.setattr(cli_index, "load_model", lambda spec, *a, **k: TinyEncoder())
    runner = CliRunner()

    def invoke(*args):
        res = runner.invoke(app, [str(a) for a in args])
        return res.exit_code, res.stdout, res.stderr

    code, out, _ = invoke("index", folder, "--ocr")
    assert code == 0 and "text in images: on: 5 of 5 images read, 2 with text" in out
    code, out, _ = invoke("index", folder, "--status", "--json")
    assert json.loads(out)["ocr"]["with_text"] == 2
    code, out, _ = invoke("index", folder, "--status")
    assert "text in images" in out
    code, out, _ = invoke("search", "total", "--dir", folder, "--mode", "keyword", "--json", "-k", 2)
    top = json.loads(out)["results"][0]
    assert top["path"].endswith("receipt.jpg") and "TOTAL 42.50" in top["ocr"]
    code, out, _ = invoke("index", folder, "--no-ocr", "--json")
    assert code == 0 and json.loads(out)["ocr"]["enabled"] is False


def test_cli_ocr_without_the_engine_is_one_clear_error(tmp_path, monkeypatch):
    import cliplab.data.ocr as engine

    monkeypatch.setattr(engine.importlib.util, "find_spec", lambda name: None)
    (tmp_path / "p").mkdir()
    res = CliRunner().invoke(app, ["index", str(tmp_path / "p"), "--ocr"])
    assert res.exit_code == 2 and "install cliplab[ocr] (rapidocr-onnxruntime)" in res.stderr
    assert not (tmp_path / "index-home").exists() or not any((tmp_path / "index-home").iterdir())


def test_api_search_hits_carry_their_text(tmp_path, shared, monkeypatch):
    from fastapi.testclient import TestClient

    from cliplab.cli.serve import _remember_ocr
    from cliplab.serve import Settings, create_app, open_state

    calls: list = []
    fake_reader(monkeypatch, calls)
    f = tmp_path / "p"
    copy_images(shared, f, 3)
    _remember_ocr([str(f)], "toy", True)  # `serve --ocr`: before the folders are opened and updated
    state = open_state(
        [f], model="toy", loader=lambda spec: TinyEncoder(), settings=Settings(allowed_hosts=["testserver"])
    )
    try:
        client = TestClient(create_app(state))
        body = client.get("/api/search", params={"q": "words img002", "mode": "keyword", "n": 2}).json()
        top = body["results"][0]
        assert top["path"] == "img002.jpg" and top["ocr"] == "words on img002"
        plain = client.get("/api/search", params={"q": "anything", "n": 3}).json()["results"]
        assert all(r["ocr"].startswith("words on") for r in plain)
    finally:
        state.close()
