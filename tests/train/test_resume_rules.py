"""Resume is explicit and checked; a run saves only trained weights; mistakes are one line before work."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from cliplab.cli import app
from cliplab.train import TrainError, train
from cliplab.train.state import STATE_FILE

runner = CliRunner()
pytestmark = pytest.mark.slow


def run(*args):
    r = runner.invoke(app, [str(a) for a in args])
    return r.exit_code, r.stdout, r.stderr


def one_line_error(code, err, *words):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_relative_pairs_stored_absolute_and_resume_from_elsewhere(small_config, flickr_pairs, tmp_path, monkeypatch):
    monkeypatch.chdir(flickr_pairs.parent)
    train(small_config(pairs=[flickr_pairs.name], epochs=2), tmp_path / "run", stop_after=1, progress=False)
    cfg = json.loads((tmp_path / "run" / "cliplab.json").read_text())["training"]["config"]
    assert cfg["pairs"] == [str(flickr_pairs)]
    monkeypatch.chdir(tmp_path)  # resume from another folder: the run still finds its data
    res = train(None, tmp_path / "run", resume=True, progress=False)
    assert res.epoch == 2 and res.finished


def test_checkpoint_is_never_the_untrained_model(small_config, tmp_path):
    # a learning rate of ~0 cannot beat the untrained baseline on validation, yet what is saved
    # must be a trained epoch, never "best epoch 0"
    res = train(small_config(epochs=2, lr=1e-12, patience=0), tmp_path / "run", progress=False)
    assert res.best_epoch >= 1
    saved = json.loads((tmp_path / "run" / "cliplab.json").read_text())["training"]
    assert saved["best_epoch"] >= 1


def test_resume_rules(small_config, flickr_pairs, tmp_path):
    out = tmp_path / "run"
    train(small_config(epochs=3), out, stop_after=2, progress=False)
    with pytest.raises(TrainError, match="already run 2 epochs"):
        train(None, out, resume=True, epochs=1, progress=False)
    state_before = (out / STATE_FILE).stat().st_mtime_ns
    one_line_error(*run("train", "--resume", out, "--pairs", flickr_pairs)[::2], "--pairs", "drop")
    one_line_error(*run("train", "--resume", out, "--lr", "0.1", "--dim", "8")[::2], "--lr", "--dim")
    one_line_error(*run("train", "--resume", out, "--epochs", "1")[::2], "already run 2 epochs")
    assert (out / STATE_FILE).stat().st_mtime_ns == state_before  # nothing touched


@pytest.mark.parametrize(
    "args, culprit",
    [
        (("--epochs", "0"), "--epochs"),
        (("--batch-size", "0"), "--batch-size"),
        (("--batch-size", "-4"), "--batch-size"),
        (("--accum", "0"), "--accum"),
        (("--warmup", "2"), "--warmup"),
    ],
)
def test_numeric_options_checked_at_parse_time(flickr_pairs, tmp_path, args, culprit):
    code, _, err = run("train", "--pairs", flickr_pairs, "--out", tmp_path / "x", *args)
    assert code == 2 and culprit in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_out_that_is_a_file_fails_before_training(flickr_pairs, tmp_path):
    (tmp_path / "taken").write_text("mine")
    one_line_error(*run("train", "--pairs", flickr_pairs, "--out", tmp_path / "taken")[::2], "taken", "is a file")
    assert (tmp_path / "taken").read_text() == "mine"
    os.chmod(tmp_path / "taken", 0o644)
