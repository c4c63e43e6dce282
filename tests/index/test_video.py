"""Videos in a collection: one file row (its poster) plus one vector per sampled frame; searches
group frames by video with the best moment; changes and deletions drop the frames (the FAISS
cache follows); filters, the CLI, the server and an index made before video support all work."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cliplab.index import Collection
from cliplab.index.filters import make_filters
from cliplab.index.migrate import FRAME_ID_BASE
from cliplab.index.vectors import VectorIndex
from tests.data.test_video import BEACH, DOG, PIZZA, make_video, photo
from tests.index.helpers import TinyEncoder

SCHEMA2 = Path(__file__).parent / "fixtures" / "schema2" / "catalog.db"


@pytest.fixture
def lib(shared, tmp_path) -> Path:
    """clip.mp4 (3 s dog, then 3 s beach), a pizza photo, a zero-byte and a truncated video."""
    d = tmp_path / "lib"
    d.mkdir()
    make_video(d / "clip.mp4", [photo(shared, DOG), photo(shared, BEACH)], created="2021-07-04T10:00:00Z")
    photo(shared, PIZZA).save(d / "pizza.jpg")
    (d / "empty.mp4").write_bytes(b"")
    (d / "cut.mov").write_bytes((d / "clip.mp4").read_bytes()[:2000])
    return d


def vec(col, shared, wnid):
    return col.encoder().encode_images([photo(shared, wnid)])[0]


def frame_rows(col) -> list[tuple]:
    return col.catalog.con.execute("SELECT id, file_id, t FROM frames ORDER BY id").fetchall()


def test_index_a_video_and_find_each_moment(lib, shared):
    with Collection(lib, encoder=TinyEncoder()) as col:
        s = col.update()
        assert (s.scanned, s.embedded, s.failed) == (4, 2, 2) and s.frames >= 3
        reasons = dict(s.failures)
        assert reasons["empty.mp4"] == "empty file (0 bytes)" and reasons["cut.mov"].startswith("video: ")
        st = col.status()
        assert (st["indexed"], st["failed"], st["videos"], st["frames"]) == (2, 2, 1, s.frames)
        rows = frame_rows(col)
        assert rows[0][0] == FRAME_ID_BASE and all(fid == rows[0][1] for _, fid, _ in rows)
        dog = col.search_vector(vec(col, shared, DOG), k=5)
        beach = col.search_vector(vec(col, shared, BEACH), k=5)
        for hits, lo, hi in ((dog, 0.0, 3.0), (beach, 3.0, 6.0)):
            assert [h.relpath for h in hits] == ["clip.mp4", "pizza.jpg"]  # one hit per video, frames grouped
            v = hits[0]
            assert v.media == "video" and lo <= v.timestamp < hi and v.score > 0.99
            assert v.moments[0] == {"timestamp": v.timestamp, "score": v.score} and len(v.moments) == 3
            assert v.as_dict()["media"] == "video" and "timestamp" not in hits[1].as_dict()
        meta = col.catalog.con.execute("SELECT taken_at, taken_from, width, format FROM photos").fetchall()
        assert ("2021-07-04T10:00:00+00:00", "creation_time", 160, "MP4") in meta
        assert all(len(g.paths) >= 2 for g in col.duplicates(threshold=0.0))  # frames never join a group
        assert {Path(p).name for g in col.duplicates(threshold=0.0) for p in g.paths} <= {"clip.mp4", "pizza.jpg"}


def test_change_and_delete_drop_frames_and_the_cache_follows(lib, shared):
    with Collection(lib, encoder=TinyEncoder()) as col:
        col.update()
        col.search_vector(vec(col, shared, DOG), k=1)  # the FAISS cache exists before the changes
        old = {r[0] for r in frame_rows(col)}
        make_video(lib / "clip.mp4", [photo(shared, PIZZA)], seconds=2)  # changed: pizza only
        s = col.update()
        assert s.changed == 1 and s.embedded == 1
        new = {r[0] for r in frame_rows(col)}
        assert new and not new & old and min(new) > max(old)  # never reused
        assert consistent(col)
        hit = col.search_vector(vec(col, shared, DOG), k=1)[0]
        assert hit.relpath == "clip.mp4" and hit.timestamp < 2.0  # only pizza moments remain
        (lib / "clip.mp4").unlink()
        col.update()
        assert frame_rows(col) == [] and col.catalog.count_vectors() == 1
        assert consistent(col)
        assert [h.relpath for h in col.search_vector(vec(col, shared, DOG), k=5)] == ["pizza.jpg"]


def consistent(col) -> bool:
    """The incrementally updated FAISS cache answers like one rebuilt from the catalog."""
    ann = col.ann.get()
    _, ids, vecs = col.catalog.snapshot_vectors()
    fresh = VectorIndex.build(ids, vecs, dim=col.catalog.dim)
    q = vecs[:3]
    a, b = ann.search(q, len(ids)), fresh.search(q, len(ids))
    return ann.ntotal == fresh.ntotal == len(ids) and np.array_equal(np.sort(a[1]), np.sort(b[1]))


def test_filters_select_a_video_with_its_frames(lib, shared, monkeypatch):
    import cliplab.index.collection as collection_mod

    with Collection(lib, encoder=TinyEncoder()) as col:
        col.update()
        beach = vec(col, shared, BEACH)
        for exact in (True, False):  # the exact path over few ids, and FAISS with an id selector
            monkeypatch.setattr(collection_mod, "SEARCH_EXACT_MAX", 10_000 if exact else 0)
            hits = col.search_vector(beach, k=5, filters=make_filters(types="mp4"))
            assert [h.relpath for h in hits] == ["clip.mp4"] and hits[0].timestamp >= 3.0
            assert [h.relpath for h in col.search_vector(beach, k=5, filters=make_filters(types="jpg"))] == [
                "pizza.jpg"
            ]
            dated = col.search_vector(beach, k=5, filters=make_filters(after="2021-07", before="2021-07"))
            assert [h.relpath for h in dated] == ["clip.mp4"]
            assert [h.relpath for h in col.search_vector(beach, k=5, glob="*.jpg")] == ["pizza.jpg"]
        assert col.count_under(None, None, make_filters(types="mp4")) == 1  # files, not frames


def test_image_query_and_like_and_modes(lib, shared, tmp_path):
    from cliplab.search import run
    from cliplab.search.expression import Term, parse

    photo(shared, BEACH).save(lib / "beach.jpg")
    with Collection(lib, encoder=TinyEncoder()) as col:
        col.update()
        beach_id = col.catalog.id_of("beach.jpg")
        hits = run(col, parse(f"like:{beach_id}"), k=3, mode="semantic")
        assert hits[0].relpath == "clip.mp4" and hits[0].timestamp >= 3.0
        photo(shared, DOG).save(tmp_path / "q.jpg")
        hits = col.search_image(tmp_path / "q.jpg", k=1)
        assert hits[0].relpath == "clip.mp4" and hits[0].timestamp < 3.0
        for mode in ("hybrid", "keyword"):  # a file name typed: the video, with a moment
            got = run(col, [Term("text", "clip")], k=3, mode=mode)
            assert got[0].relpath == "clip.mp4" and got[0].media == "video" and got[0].timestamp is not None
        by_date = run(col, parse(f"like:{beach_id}"), k=3, mode="semantic", sort="date")
        assert any(h.media == "video" for h in by_date)


def test_cli_prints_the_moment_and_json_carries_it(lib, shared, monkeypatch):
    import cliplab.cli.index as cli_index
    from cliplab.cli.app import app

    monkeypatch.setattr(cli_index, "load_model", lambda spec, *a, **k: TinyEncoder())
    photo(shared, BEACH).save(lib / "beach.jpg")
    runner = CliRunner()
    r = runner.invoke(app, ["search", "--image", str(lib / "beach.jpg"), "--dir", str(lib), "-k", "3", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)["results"]
    video = next(x for x in res if x["path"].endswith("clip.mp4"))
    assert (
        video["media"] == "video"
        and video["timestamp"] >= 3.0
        and video["moments"][0]["timestamp"] == video["timestamp"]
    )
    assert "media" not in next(x for x in res if x["path"].endswith("pizza.jpg"))
    r = runner.invoke(app, ["search", "--image", str(lib / "beach.jpg"), "--dir", str(lib), "-k", "3"])
    assert r.exit_code == 0 and "clip.mp4 @ 00:00:0" in r.stdout
    r = runner.invoke(app, ["index", str(lib), "--status"])
    assert r.exit_code == 0 and "videos" in r.stdout and "frames searched" in r.stdout


def test_server_poster_video_file_range_and_hit_fields(lib, shared):
    from fastapi.testclient import TestClient

    from cliplab.serve import Settings, create_app, open_state

    photo(shared, BEACH).save(lib / "beach.jpg")
    state = open_state(
        [lib], model="tiny", loader=lambda spec: TinyEncoder(), settings=Settings(allowed_hosts=["testserver"])
    )
    try:
        with TestClient(create_app(state)) as client:
            name, src = next(iter(state.sources.items()))
            col = src.collection
            vid, beach = col.catalog.id_of("clip.mp4"), col.catalog.id_of("beach.jpg")
            body = client.get("/api/search", params={"q": f"like:{beach}", "collection": name, "n": 3}).json()
            hit = next(x for x in body["results"] if x["id"] == vid)
            assert hit["media"] == "video" and hit["timestamp"] >= 3.0 and hit["moments"]
            thumb = client.get(f"/thumb/{name}/{vid}")
            assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.content)).format == "JPEG"
            whole = client.get(f"/image/{name}/{vid}")
            assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
            assert whole.content == (lib / "clip.mp4").read_bytes()
            part = client.get(f"/image/{name}/{vid}", headers={"Range": "bytes=0-99"})
            assert part.status_code == 206 and part.content == whole.content[:100]
            assert part.headers["content-range"].startswith("bytes 0-99/")
    finally:
        state.close()


def test_an_index_made_before_video_support_takes_videos(shared, tmp_path):
    """A schema 2 index (before the frames table): upgraded in place, then a video is added."""
    from tests.index.fixture_images import write_images

    folder, idx = tmp_path / "photos", tmp_path / "idx"
    write_images(folder)
    idx.mkdir()
    shutil.copy(SCHEMA2, idx / "catalog.db")
    with Collection(folder, index_dir=idx, loader=lambda spec: TinyEncoder()) as col:
        assert col.update().embedded == 0
        make_video(folder / "clip.mp4", [photo(shared, DOG), photo(shared, BEACH)], seconds=2)
        s = col.update()
        assert s.embedded == 1 and s.frames >= 2
        assert frame_rows(col)[0][0] == FRAME_ID_BASE
        assert col.search_vector(vec(col, shared, BEACH), k=1)[0].relpath == "clip.mp4"
    con = sqlite3.connect(idx / "catalog.db")
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("3",)
    con.close()


def test_lite_text_query_lands_in_the_right_segment(lib, lite_encoder):
    """The real `lite` model: "a dog" finds the dog half of the clip, "a beach" the beach half."""
    with Collection(lib, encoder=lite_encoder) as col:
        col.update()
        dog = col.search("a photo of a dog", k=2)
        beach = col.search("a photo of a sandy beach by the sea", k=2)
        dog_hit = next(h for h in dog if h.relpath == "clip.mp4")
        beach_hit = next(h for h in beach if h.relpath == "clip.mp4")
        assert dog_hit.timestamp < 3.0 <= beach_hit.timestamp
