"""The installed-models table (`cliplab models`) and `cliplab models bench`, on a tiny random CLIP
placed in a temporary Hugging Face cache laid out as huggingface_hub writes it (blobs, snapshot links,
refs/main)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from cliplab.cli import app
from cliplab.zoo.installed import bench, cached_bench, models_table

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tiny_clip_dir, tmp_path, monkeypatch):
    """acme/tiny-clip installed in a HF cache under tmp_path (read at call time by huggingface_hub and
    transformers through `constants.HF_HUB_CACHE`)."""
    from huggingface_hub import constants

    root = tmp_path / "hub"
    repo = root / "models--acme--tiny-clip"
    (repo / "blobs").mkdir(parents=True)
    (repo / "snapshots" / COMMIT).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    for i, f in enumerate(sorted(tiny_clip_dir.iterdir())):
        blob = repo / "blobs" / f"{i:040x}"
        blob.write_bytes(f.read_bytes())
        os.symlink(os.path.relpath(blob, repo / "snapshots" / COMMIT), repo / "snapshots" / COMMIT / f.name)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))
    return repo


def _params(folder) -> int:
    from safetensors.numpy import load_file

    return sum(int(np.prod(t.shape)) for t in load_file(folder / "model.safetensors").values())


def test_table_shows_installed_models_with_size_and_parameters(hub_cache, tiny_clip_dir):
    rows = {r["spec"]: r for r in models_table()}
    tiny = rows["acme/tiny-clip"]
    assert tiny["installed"] and tiny["dim"] == 32
    assert tiny["size_bytes"] == sum(f.stat().st_size for f in tiny_clip_dir.iterdir())
    assert tiny["params"] == _params(tiny_clip_dir)  # from the safetensors header, no model loaded
    lite = rows["lite"]
    assert lite["installed"] and lite["size_bytes"] > 1_000_000
    missing = rows["openai/clip-vit-base-patch32"]
    assert not missing["installed"] and missing["size_bytes"] is None and missing["params"] is None
    assert "cliplab models pull openai/clip-vit-base-patch32" in missing["note"]


def test_bench_is_cached_and_the_table_shows_it(hub_cache, tiny_clip_dir, shared):
    photos = sorted((shared / "data" / "flickr8k-1k" / "images").glob("*.jpg"))[:4]
    rec = bench("acme/tiny-clip", photos)
    assert rec["fp32_img_s"] > 0 and rec["images"] == 4
    kept = "image kept fp32" in rec["int8_runtime"]  # int8 that loses accuracy is not used (quantize.py)
    assert (rec["int8_img_s"] is None) == kept and (kept or rec["int8_img_s"] > 0), rec
    assert rec["params"] == _params(tiny_clip_dir) and rec["dim"] == 32
    assert cached_bench("acme/tiny-clip") == json.loads(json.dumps(rec))
    row = next(r for r in models_table() if r["spec"] == "acme/tiny-clip")
    assert row["fp32_img_s"] == rec["fp32_img_s"] and row["int8_img_s"] == rec["int8_img_s"]

    r = CliRunner().invoke(app, ["models"], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    line = next(x for x in r.stdout.splitlines() if "acme/tiny-clip" in x)
    assert f"{rec['fp32_img_s']:.4f}" in line and "MB" in line and " M " in line


def test_bench_and_pull_reject_bad_specs_in_one_line():
    runner = CliRunner()
    r = runner.invoke(app, ["models", "bench", "litee"])
    assert r.exit_code == 2 and "unknown model 'litee'" in r.output
    r = runner.invoke(app, ["models", "pull", "lite"])
    assert r.exit_code == 2 and "ships with cliplab: nothing to pull" in r.output
