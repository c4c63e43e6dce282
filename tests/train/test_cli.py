"""`cliplab train` end to end through the CLI; the result works with other commands' --model."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from cliplab.cli import app

runner = CliRunner()
pytestmark = pytest.mark.slow


def run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_train_resume_then_classify(flickr_pairs, feature_cache, tmp_path):
    out = tmp_path / "my-model"
    common = [
        "--pairs",
        flickr_pairs,
        "--cache-dir",
        feature_cache,
        "--val-split",
        "0.25",
        "--dim",
        "32",
        "--head",
        "mlp",
        "--batch-size",
        "64",
        "--patience",
        "0",
        "--batch-by-source",
        "--hard-negatives",  # caption batches by subject, half of them (negatives.py)
        "subject",
        "--hard-share",
        "0.5",
    ]
    r = run("train", *common, "--epochs", "3", "--stop-after", "1", "--out", out, "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["epoch"] == 1 and not s["finished"] and s["data"]["train"]["images"] == 45

    r = run("train", "--resume", out, "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["epoch"] == 3 and s["finished"] and (out / "metrics.png").is_file()

    img = pd.read_csv(flickr_pairs)["path"][0]
    r = run("classify", img, "--labels", "a dog,a child,a car", "--model", out, "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["model"] == str(out) and len(res["results"]) == 1


def test_train_errors_are_one_line(flickr_pairs, tmp_path):
    r = run("train", "--pairs", flickr_pairs, "--epochs", "1")
    assert r.exit_code == 2 and "--out" in r.output
    r = run("train", "--pairs", tmp_path / "nope.csv", "--out", tmp_path / "x")
    assert r.exit_code == 2 and "no such file" in r.output and "Traceback" not in r.output
    r = run("train", "--pairs", flickr_pairs, "--out", tmp_path / "y", "--head", "transformer")
    assert r.exit_code == 2 and "mlp" in r.output
    r = run("train", "--pairs", flickr_pairs, "--out", tmp_path / "z", "--hard-negatives", "colour")
    assert r.exit_code == 2 and "--hard-negatives 'colour'" in r.output
    r = run(
        "train", "--pairs", flickr_pairs, "--out", tmp_path / "z", "--hard-negatives", "subject", "--hard-share", "0"
    )
    assert r.exit_code == 2 and "--hard-share" in r.output
    r = run("train", "--resume", tmp_path / "missing-run")
    assert r.exit_code == 2 and "cannot resume" in r.output
