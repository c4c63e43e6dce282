"""cliplab.api: the Python face of embed / classify (toy encoder, no weights)."""

from __future__ import annotations

from cliplab.api import classify
from tests.helpers import ToyEncoder, make_image


def test_classify_top_has_the_same_keys_for_every_entry(tmp_path):
    red = make_image(tmp_path / "red.png", color=(230, 20, 20))
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    rows = classify([str(red), str(bad)], "red,green", ToyEncoder()).top(2)
    assert [set(r) for r in rows] == [{"path", "status", "error", "predictions"}] * 2
    good, failed = rows
    assert good["status"] == "ok" and good["error"] is None and len(good["predictions"]) == 2
    assert abs(sum(p["prob"] for p in good["predictions"]) - 1) < 1e-5
    assert failed["status"] != "ok" and failed["error"] and failed["predictions"] == []
