"""Bad files are recorded with a reason, the rest is indexed, and they are retried only once they change."""

from __future__ import annotations

from PIL import Image

from cliplab.index import Collection
from tests.index.conftest import no_model


def test_bad_files_recorded_and_retried_only_when_changed(photos, tiny):
    good = (photos / "img000.jpg").read_bytes()
    (photos / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (photos / "zero.jpg").write_bytes(b"")
    (photos / "text.png").write_text("this is not a PNG\n")
    col = Collection(photos, encoder=tiny)
    s = col.update()
    assert (s.embedded, s.failed) == (30, 3)
    reasons = dict(col.catalog.failures())
    assert reasons["zero.jpg"].startswith("empty file")
    assert reasons["text.png"].startswith("not an image")
    assert reasons["truncated.jpg"].startswith("corrupt or truncated")
    st = col.status()
    assert st["indexed"] == 30 and st["failed"] == 3 and len(st["failure_reasons"]) == 3
    assert {f["path"] for f in st["failures"]} == set(reasons)
    assert not {"zero.jpg", "text.png", "truncated.jpg"} & {h.relpath for h in col.search("x", k=100)}

    # unchanged bad files are not retried: no model needed
    again = Collection(photos, loader=lambda spec: no_model())
    s2 = again.update()
    assert (s2.unchanged, s2.embedded, s2.failed, s2.model_loaded) == (33, 0, 0, False)

    # once fixed, a bad file is picked up
    Image.new("RGB", (20, 20), (0, 0, 255)).save(photos / "text.png", format="PNG")
    s3 = Collection(photos, encoder=tiny).update()
    assert (s3.changed, s3.embedded, s3.failed) == (1, 1, 0)
    assert "text.png" not in dict(col.catalog.failures())
    assert col.status()["indexed"] == 31
