"""The fast search path: an index built with torch is searchable with ONNX (same model identity),
and a whole-process `cliplab search` with the ONNX cache present imports no torch/transformers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

HEAVY = ("torch", "transformers", "sentence_transformers")


@pytest.fixture(scope="module")
def torch_index(lite_pair, tmp_path_factory):
    """A folder indexed with the torch runtime."""
    from cliplab.index import Collection

    root = tmp_path_factory.mktemp("search")
    folder, index = root / "photos", root / "index"
    folder.mkdir()
    colors = {
        "red": (220, 20, 20),
        "green": (20, 200, 40),
        "blue": (20, 40, 220),
        "yellow": (240, 230, 20),
        "black": (5, 5, 5),
        "white": (250, 250, 250),
    }
    rng = np.random.default_rng(0)
    for name, c in colors.items():
        arr = np.clip(np.array(c) + rng.normal(0, 10, (96, 128, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"{name}.jpg")
    with Collection(folder, index_dir=index, loader=lambda spec: lite_pair[0]) as col:
        col.update()
    return folder, index


def test_torch_index_searchable_with_onnx(lite_pair, torch_index):
    from cliplab.index import Collection

    folder, index = torch_index
    torch_enc, fp32, int8 = lite_pair
    queries = ["a red photo", "something green", "darkness"]
    with Collection(folder, index_dir=index, loader=lambda spec: torch_enc) as col:
        want = [col.search(q, k=6) for q in queries]
    for enc in (fp32, int8):
        with Collection(folder, index_dir=index, loader=lambda spec, e=enc: e) as col:
            got = [col.search(q, k=6) for q in queries]  # no IndexMismatchError: same identity
            assert col.describe()["runtime"] == "onnx"
        for g, w in zip(got, want):
            assert [h.path for h in g] == [h.path for h in w]
            assert np.allclose([h.score for h in g], [h.score for h in w], atol=1e-4)


def test_whole_process_search_imports_no_torch(lite_pair, torch_index, session_cache):
    folder, index = torch_index
    env = {**os.environ, "CLIPLAB_CACHE": str(session_cache), "PYTHONPROFILEIMPORTTIME": "1", "HF_HUB_OFFLINE": "1"}
    code = "import sys; sys.argv[0] = 'cliplab'; from cliplab.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "search", "a red photo", "--dir", str(folder), "--index", str(index), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout)
    assert res["runtime"] == "onnx" and res["precision"] == {"image": "fp32", "text": "fp32"}
    assert len(res["results"]) == 6
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "onnxruntime" in imported and "tokenizers" in imported  # the check can see imports
    assert not imported & set(HEAVY), imported & set(HEAVY)
