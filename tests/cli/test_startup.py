"""What a whole-process `cliplab search` loads at start-up (issue 21: ≤ 1 s): a text query opens
lite's text graph only — never the image graph, never torch or transformers — and opens it from the
copy with separate weights, which gives the same vectors as the exported graph."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.helpers import make_image

REPO = Path(__file__).resolve().parents[2]

SPY = """
import json, sys
import cliplab.runtime.session as s
opened, real = [], s._make_session
def spy(graph, *a, **k):
    opened.append(graph.rsplit("/", 1)[-1])
    return real(graph, *a, **k)
s._make_session = spy
sys.argv = {argv!r}
from cliplab.cli import main
try:
    main()
except SystemExit as e:
    code = e.code
print(json.dumps({{"exit": code, "opened": opened, "loaded": sorted(m for m in ("torch", "transformers") if m in sys.modules)}}))
"""


def _cliplab(argv: list[str], env: dict) -> dict:
    r = subprocess.run(
        [sys.executable, "-c", SPY.format(argv=["cliplab", *argv])],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0 and r.stdout.strip(), r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_text_search_opens_only_the_text_graph_and_no_torch(tmp_path):
    folder = tmp_path / "photos"
    for i, color in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        make_image(folder / f"p{i}.jpg", size=(64, 48), color=color)
    env = {**os.environ, "CLIPLAB_INDEX_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    assert _cliplab(["index", str(folder)], env)["exit"] == 0
    search = ["search", "a red square", "--dir", str(folder), "--no-update", "--after", "2000"]
    first = _cliplab(search, env)
    again = _cliplab(search, env)  # the copy made by the first search is reused as it is
    for got in (first, again):
        assert got["exit"] == 0 and got["loaded"] == []
        assert got["opened"] == ["text.onnx.mapped"]  # not image.onnx, not the plain graph


def test_mapped_graph_gives_the_same_vectors_and_follows_the_graph(monkeypatch):
    from cliplab.runtime import load
    from cliplab.runtime import session as s

    enc = load("lite", runtime="onnx", notify=None)
    graph = enc.text.entry.verified_path(enc.text.graph)
    copy = s.mapped_graph(enc.text.entry, graph)
    assert copy == graph.with_name("text.onnx.mapped") and copy.with_name("text.onnx.weights").is_file()
    assert copy.stat().st_size < graph.stat().st_size // 50  # the weights are outside the protobuf
    feeds = enc.text.tokenize(["a dog on the beach", "two children playing football"])
    want = s._make_session(str(graph), "cpu", 1).run(None, feeds)[0]
    got = s._make_session(str(copy), "cpu", 1).run(None, feeds)[0]
    assert np.array_equal(want, got)

    stamp = graph.with_name("text.onnx.mapped.ok")
    before = stamp.read_text()
    os.utime(graph, ns=(graph.stat().st_atime_ns, graph.stat().st_mtime_ns + 1))  # the graph changed: made again
    assert s.mapped_graph(enc.text.entry, graph) == copy and stamp.read_text() != before

    import onnx

    def fail(*a, **k):
        raise OSError("read-only file system")

    monkeypatch.setattr(onnx, "save_model", fail)
    os.utime(graph, ns=(graph.stat().st_atime_ns, graph.stat().st_mtime_ns + 1))
    assert s.mapped_graph(enc.text.entry, graph) is None  # cannot be made: the plain graph is used
    assert not stamp.exists() and not copy.exists()
    assert not [p for p in graph.parent.iterdir() if p.name.startswith(".")]  # no temp folder left
