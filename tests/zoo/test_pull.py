"""`cliplab models pull` against a loopback hub (tests/models/loopback_hub.py): real HTTP on 127.0.0.1,
the hub's file API, a random-weight tiny CLIP; the HF cache and HF_HOME live in tmp_path.

The CLI runs in a child process: huggingface_hub and transformers read HF_HOME / HF_ENDPOINT once, at
import, so only a fresh process sees the test's values (the child also proves `pull` lifts the
HF_HUB_OFFLINE=1 it inherits, for its own call only).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cliplab.errors import ModelSpecError
from cliplab.models.specs import cached_clips, is_clip_cached
from cliplab.zoo.pull import choose_files, hub_repo
from tests.zoo.loopback_hub import COMMIT, LoopbackHub, closed_port

REPO = Path(__file__).resolve().parents[2]
# huggingface_hub writes in 10 MiB chunks and resumes from the last whole one; the tiny checkpoint
# is 7 MB, so the child writes in 256 KiB chunks to make the resume visible.
SMALL_CHUNKS = "import huggingface_hub.constants as c; c.DOWNLOAD_CHUNK_SIZE = 1 << 18\n"


@pytest.fixture(scope="module")
def tiny_repo(tiny_clip_dir, tmp_path_factory) -> Path:
    """The tiny CLIP as a hub repo: plus a pickle twin of the weights and a README, which pull skips."""
    d = tmp_path_factory.mktemp("repo")
    for f in tiny_clip_dir.iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    (d / "pytorch_model.bin").write_bytes(os.urandom(1000))
    (d / "README.md").write_text("# tiny clip\n")
    return d


def cli(args: list[str], hf_home: Path, endpoint: str, pre: str = "") -> subprocess.CompletedProcess:
    code = pre + "from cliplab.cli import main; main()"
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    env.pop("HF_HUB_CACHE", None)
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def model_dir(hf_home: Path) -> Path:
    return hf_home / "hub" / "models--acme--tiny-clip"


def test_pull_resumes_checks_every_file_then_works_offline(tiny_repo, tmp_path, shared):
    hf_home = tmp_path / "hf"
    with LoopbackHub({"acme/tiny-clip": tiny_repo}) as hub:
        hub.cut.add("model.safetensors")  # the connection drops half-way, once
        r = cli(["models", "pull", "acme/tiny-clip", "--json"], hf_home, hub.url, pre=SMALL_CHUNKS)
        assert r.returncode == 0, r.stderr
        res = json.loads(r.stdout)
        ranges = hub.requests("GET", "model.safetensors")
        assert ranges[0] is None and ranges[1].startswith("bytes=") and int(ranges[1][6:-1]) > 0, ranges
        assert len(ranges) == 2  # resumed, not restarted
        checks = {f["file"]: f["check"] for f in res["files"]}
        assert checks["model.safetensors"] == "sha256" and checks["config.json"] == "sha1"
        assert {"tokenizer.json", "vocab.json", "merges.txt", "preprocessor_config.json"} <= set(checks)
        assert "pytorch_model.bin" not in checks and "README.md" not in checks  # safetensors preferred
        assert not hub.requests("GET", "pytorch_model.bin") and not hub.requests("GET", "README.md")
        assert res["commit"] == COMMIT and res["export"] == "ready (ONNX)"
        assert (model_dir(hf_home) / "refs" / "main").read_text() == COMMIT
        assert Path(res["folder"]) == model_dir(hf_home) / "snapshots" / COMMIT

        # A second pull checks what is there and downloads nothing.
        hub.log.clear()
        r = cli(["models", "pull", "acme/tiny-clip", "--no-export"], hf_home, hub.url)
        assert r.returncode == 0, r.stderr
        assert "8 files checked, 0 downloaded" in r.stdout
        assert not [p for m, p, _ in hub.log if m == "GET" and "/resolve/" in p]

    # The hub is gone (a port nobody listens on): the model is used from the cache alone.
    photo = sorted((shared / "data" / "flickr8k-1k" / "images").glob("*.jpg"))[0]
    dead = f"http://127.0.0.1:{closed_port()}"
    r = cli(["classify", str(photo), "-l", "dog,cat,car", "-m", "acme/tiny-clip", "--json"], hf_home, dead)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["model"] == "acme/tiny-clip" and out["runtime"] == "onnx" and len(out["results"]) == 1, out


def test_a_corrupt_file_is_refused_and_nothing_is_installed(tiny_repo, tmp_path, monkeypatch):
    hf_home = tmp_path / "hf"
    with LoopbackHub({"acme/tiny-clip": tiny_repo}) as hub:
        hub.corrupt.add("model.safetensors")  # right size, wrong bytes: only a hash can tell
        r = cli(["models", "pull", "acme/tiny-clip"], hf_home, hub.url)
        assert r.returncode == 2, r.stdout + r.stderr
        last = r.stderr.strip().splitlines()[-1]
        assert last.startswith("error: acme/tiny-clip: model.safetensors failed its checksum twice"), r.stderr
        assert "Traceback" not in r.stderr
        assert len(hub.requests("GET", "model.safetensors")) == 2  # deleted and fetched once more
        snap = model_dir(hf_home) / "snapshots" / COMMIT
        assert (snap / "config.json").is_file() and not (snap / "model.safetensors").exists()
        assert not [b for b in (model_dir(hf_home) / "blobs").iterdir() if len(b.name) == 64]  # no sha256 blob
        assert not (model_dir(hf_home) / "refs" / "main").exists()  # not installed

        from huggingface_hub import constants

        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
        assert not is_clip_cached("acme/tiny-clip") and "acme/tiny-clip" not in dict(cached_clips())

        r = cli(["models", "pull", "acme/no-such-model", "--no-export"], hf_home, hub.url)
        assert r.returncode == 2 and "error: no model acme/no-such-model on http://127.0.0.1:" in r.stderr


def test_no_network_names_the_command_and_the_cache_folder(tmp_path):
    r = cli(["models", "pull", "acme/tiny-clip"], tmp_path / "hf", f"http://127.0.0.1:{closed_port()}")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "cannot reach the Hugging Face hub" in lines[0]
    assert "run `cliplab models pull acme/tiny-clip`" in lines[0]
    assert f"~/.cache/huggingface/hub/models--acme--tiny-clip folder to {tmp_path / 'hf' / 'hub'}" in lines[0]


@pytest.mark.parametrize(
    "spec, words",
    [
        ("lite", "ships with cliplab"),
        ("conse:lite1", "ships with cliplab"),
        ("auto", "cliplab models pull openai/clip-vit-base-patch32"),
        ("a/b/c", "not a Hugging Face hub id"),
        ("litee", "unknown model"),
        ("open_clip:ViT-B-32/no-such-tag", "open-clip-torch|open_clip has no hub copy"),
    ],
)
def test_what_is_not_a_hub_id_is_one_clear_error(spec, words):
    with pytest.raises(ModelSpecError, match=words):
        hub_repo(spec)


def test_a_folder_is_not_pulled(tiny_clip_dir):
    with pytest.raises(ModelSpecError, match="is a local folder"):
        hub_repo(str(tiny_clip_dir))
    assert hub_repo("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K") == "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"


def test_choose_files_prefers_safetensors_and_brings_shards():
    names = [
        "README.md",
        "config.json",
        "pytorch_model.bin",
        "model.safetensors",
        "tokenizer.json",
        "flax_model.msgpack",
    ]
    assert choose_files(names) == ["config.json", "tokenizer.json", "model.safetensors"]
    sharded = [
        "config.json",
        "model.safetensors.index.json",
        "model-00002-of-00002.safetensors",
        "model-00001-of-00002.safetensors",
        "pytorch_model.bin",
        "open_clip_config.json",
        "open_clip_pytorch_model.bin",
        "spiece.model",
    ]
    assert choose_files(sharded) == [
        "config.json",
        "open_clip_config.json",
        "spiece.model",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "open_clip_pytorch_model.bin",
    ]


def test_pull_brings_the_text_towers_base_config_and_tokenizer(tmp_path, shared):
    """A multilingual open_clip checkpoint names its text tower's base model by hub id
    (`hf_model_name: xlm-roberta-base`): pull fetches that repo's config and tokenizer too (never its
    weights), so the model loads offline afterwards."""
    from cliplab.models.backends.openclip_build import build_random_open_clip, make_xlmr_base

    base = make_xlmr_base(tmp_path / "base", ["a dog on the grass", "ein Hund", "un perro", "一只狗"])
    (base / "model.safetensors").write_bytes(os.urandom(1000))  # the base's own weights: not wanted
    local = {"hf_model_name": str(base), "hf_tokenizer_name": str(base), "hf_pooler_type": "mean_pooler"}
    clip = build_random_open_clip(tmp_path / "clip", "xlm-roberta-base-ViT-B-32", image_size=32, text_cfg=local)
    repo = tmp_path / "repo"
    repo.mkdir()
    cfg = json.loads((clip / "open_clip_config.json").read_text())
    cfg["model_cfg"]["text_cfg"].update(hf_model_name="acme/xlmr-tiny", hf_tokenizer_name="acme/xlmr-tiny")
    (repo / "open_clip_config.json").write_text(json.dumps(cfg))
    (repo / "open_clip_model.safetensors").write_bytes((clip / "open_clip_model.safetensors").read_bytes())
    hf_home = tmp_path / "hf"
    with LoopbackHub({"acme/xlmr-clip": repo, "acme/xlmr-tiny": base}) as hub:
        r = cli(["models", "pull", "hf-hub:acme/xlmr-clip", "--no-export", "--json"], hf_home, hub.url)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["depends"] == ["acme/xlmr-tiny"]
        assert hub.requests("GET", "config.json") and hub.requests("GET", "tokenizer.json")
        assert not hub.requests("GET", "model.safetensors")  # the base's weights stay on the hub
    for name in ("xlmr-tiny", "xlmr-clip"):
        assert (hf_home / "hub" / f"models--acme--{name}" / "refs" / "main").read_text() == COMMIT

    photo = sorted((shared / "data" / "flickr8k-1k" / "images").glob("*.jpg"))[0]
    dead = f"http://127.0.0.1:{closed_port()}"
    args = ["classify", str(photo), "-l", "ein Hund,eine Katze", "-m", "hf-hub:acme/xlmr-clip", "--runtime", "torch"]
    r = cli([*args, "--json"], hf_home, dead)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["model"] == "hf-hub:acme/xlmr-clip" and len(out["results"]) == 1, out
    # what the base repo brought is what made it load: without it the model cannot be built offline
    import shutil

    shutil.rmtree(hf_home / "hub" / "models--acme--xlmr-tiny")
    r = cli(args, hf_home, dead)
    assert r.returncode == 2 and "error:" in r.stderr, r.stdout + r.stderr
