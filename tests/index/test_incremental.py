"""Add / modify / delete / rename → the index reflects exactly that; an unchanged re-run does no model work."""

from __future__ import annotations

import os
import shutil

from PIL import Image

from cliplab.index import Collection
from tests.index.conftest import no_model


def indexed(col) -> set[str]:
    return set(col.catalog.file_states()) - {p for p, _ in col.catalog.failures()}


def all_hits(col) -> list[str]:
    n = col.catalog.count_vectors()
    return [h.relpath for h in col.search("anything", k=n + 5)]


def test_first_run_then_unchanged_rerun_loads_no_model(photos, tiny):
    col = Collection(photos, encoder=tiny)
    s = col.update()
    assert (s.new, s.embedded, s.failed) == (30, 30, 0) and s.model_loaded
    again = Collection(photos, loader=lambda spec: no_model())  # a fresh process: model from the index
    assert again.model == "tiny-test"
    s2 = again.update()
    assert (s2.unchanged, s2.embedded, s2.new, s2.changed, s2.deleted) == (30, 0, 0, 0, 0)
    assert not s2.model_loaded


def test_add_modify_delete(photos, tiny):
    col = Collection(photos, encoder=tiny)
    col.update()
    before = col.catalog.file_states()
    # add two, modify one (new pixels, new size), delete one
    (photos / "sub").mkdir()
    shutil.copy(photos / "img000.jpg", photos / "sub" / "new_a.jpg")
    Image.new("RGB", (40, 30), (250, 10, 10)).save(photos / "sub" / "new_b.png")
    Image.new("RGB", (32, 32), (10, 250, 10)).save(photos / "img001.jpg")
    os.remove(photos / "img002.jpg")
    s = col.update()
    assert (s.new, s.changed, s.deleted) == (2, 1, 1)
    assert s.reused == 1 and s.embedded == 2  # new_a is a copy of img000: its vector is reused
    expected = {f"img{i:03d}.jpg" for i in range(30)} - {"img002.jpg"} | {"sub/new_a.jpg", "sub/new_b.png"}
    assert indexed(col) == expected
    assert sorted(all_hits(col)) == sorted(expected)  # search sees exactly the catalog, once each
    after = col.catalog.file_states()
    assert after["img001.jpg"].id == before["img001.jpg"].id and after["img001.jpg"].hash != before["img001.jpg"].hash
    # the modified image now matches a pure-green query image best
    Image.new("RGB", (32, 32), (10, 250, 10)).save(photos.parent / "green.png")
    assert col.search_image(photos.parent / "green.png", k=1)[0].relpath == "img001.jpg"
    assert col.update().embedded == 0


def test_rename_and_touch_skip_the_model(photos, tiny):
    col = Collection(photos, encoder=tiny)
    col.update()
    os.rename(photos / "img003.jpg", photos / "renamed.jpg")
    st = os.stat(photos / "img004.jpg")
    os.utime(photos / "img004.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    again = Collection(photos, loader=lambda spec: no_model())
    s = again.update()
    assert (s.new, s.changed, s.deleted, s.reused, s.embedded) == (1, 1, 1, 2, 0)
    assert "renamed.jpg" in indexed(again) and "img003.jpg" not in indexed(again)
    assert again.update().unchanged == 30


def test_scoped_search_and_glob(photos, tiny):
    (photos / "a" / "b").mkdir(parents=True)
    for i in range(5):
        shutil.copy(photos / f"img{i:03d}.jpg", photos / "a" / "b" / f"x{i}.png")
    col = Collection(photos, encoder=tiny)
    col.update()
    hits = col.search("q", k=50, under="a")
    assert len(hits) == 5 and all(h.relpath.startswith("a/b/") for h in hits)
    assert {h.relpath for h in col.search("q", k=50, glob="*.png")} == {f"a/b/x{i}.png" for i in range(5)}
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert all(h.score >= 0.2 for h in col.search("q", k=50, threshold=0.2))
    # inside an indexed tree, find() uses the tree's index, restricted to the sub-folder
    sub = Collection.find(photos / "a", loader=lambda spec: no_model())
    assert sub.index_dir == col.index_dir and sub.scope == "a"
    assert {h.relpath for h in sub.search_image(photos / "img000.jpg", k=50)} == {f"a/b/x{i}.png" for i in range(5)}
    assert sub.update().scanned == 5


def test_image_query_excludes_itself_and_uses_stored_vector(photos, tiny):
    shutil.copy(photos / "img005.jpg", photos / "dup.jpg")
    col = Collection(photos, encoder=tiny)
    col.update()
    fresh = Collection(photos, loader=lambda spec: no_model())  # stored vector: no model needed
    hits = fresh.search_image(photos / "img005.jpg", k=3)
    assert hits[0].relpath == "dup.jpg" and hits[0].score > 0.999
    assert "img005.jpg" not in [h.relpath for h in hits]


def test_duplicates_groups_copies(photos, tiny):
    shutil.copy(photos / "img007.jpg", photos / "copy7.jpg")
    Image.open(photos / "img007.jpg").resize((64, 64)).save(photos / "big7.png")
    col = Collection(photos, encoder=tiny)
    col.update()
    groups = col.duplicates(threshold=0.99)
    names = [sorted(os.path.basename(p) for p in g.paths) for g in groups]
    assert ["big7.png", "copy7.jpg", "img007.jpg"] in names
    assert all(g.min_score >= 0.99 for g in groups)


def test_status_and_index_location(photos, tiny, index_home):
    col = Collection(photos, encoder=tiny)
    col.update()
    st = col.status(check=True)
    assert st["indexed"] == 30 and st["failed"] == 0 and st["model"] == "tiny-test" and st["dim"] == 48
    assert st["pending"] == {"new": 0, "changed": 0, "deleted": 0}
    assert st["size_bytes"] > 30 * 48 * 2 and str(index_home) in st["index_dir"]
    assert not (photos / ".cliplab").exists()  # nothing written into the image folder
    os.remove(photos / "img010.jpg")
    assert col.status(check=True)["pending"]["deleted"] == 1


def test_explicit_index_dir_moves_with_folder(photos, tiny, tmp_path):
    idx = tmp_path / "my-index"
    Collection(photos, index_dir=idx, encoder=tiny).update()
    moved = tmp_path / "moved"
    os.rename(photos, moved)
    col = Collection(moved, index_dir=idx, loader=lambda spec: no_model())
    assert col.update().unchanged == 30  # relative paths: nothing to redo
    assert Collection(index_dir=idx, encoder=tiny).folder == moved


def test_faiss_cache_is_validated_and_rebuilt(photos, tiny, monkeypatch):
    from cliplab.index import vectors

    monkeypatch.setattr(vectors, "ANN_THRESHOLD", 10)  # exercise the IVF path on a small folder
    col = Collection(photos, encoder=tiny)
    col.update()
    caches = list(col.index_dir.glob("ann-*.faiss"))
    assert len(caches) == 1
    assert Collection(photos, encoder=tiny).ann.get().kind == "ivf"
    caches[0].write_bytes(b"garbage")  # a damaged cache is ignored and rebuilt from the catalog
    assert len(Collection(photos, encoder=tiny).search("x", k=100)) == 30
    os.remove(photos / "img000.jpg")
    col2 = Collection(photos, encoder=tiny)
    ann = col2.ann.get()
    col2.update()  # a loaded, older index catches up through the catalog's delta
    assert col2.ann.get() is ann and ann.ntotal == 29
    assert "img000.jpg" not in {h.relpath for h in col2.search("x", k=100)}
