"""`cliplab eval …` plumbing with the colour model: tables, JSON shape, --out files, clear errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

import cliplab.cli  # noqa: F401  (registers every command)
from cliplab.cli.app import app
from tests.eval.conftest import ColourEncoder
from tests.eval.test_runners import _pairs

runner = CliRunner()


@pytest.fixture
def colour_models(monkeypatch):
    """Every --model spec loads a colour encoder named after the spec."""

    def load(spec, *args, **kwargs):  # runtime options (if any) are not the point here
        enc = ColourEncoder()
        enc.name = spec
        return enc

    monkeypatch.setattr("cliplab.cli.evaluate.load_model", load)


def run(*args):
    return runner.invoke(app, ["eval", *map(str, args)])


def test_zeroshot_two_models_json_and_out(colour_models, colour_data, tmp_path):
    r = run("zeroshot", colour_data, "-m", "a", "-m", "b", "--json", "--out", tmp_path / "o")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["task"] == "zeroshot" and d["templates"] == "single" and list(d["results"]) == ["a", "b"]
    res = d["results"]["a"]
    assert (res["top1"], res["top5"], res["mean_per_class_recall"], res["n"]) == (1.0, 1.0, 1.0, 12)
    assert res["model"]["model"] == "a" and res["failed"] == [] and "arrays" not in res
    files = {p.name for p in (tmp_path / "o").iterdir()}
    assert {
        "results.json",
        "table.md",
        "table.csv",
        "confusion_a.png",
        "confusion_a.csv",
        "per_class_accuracy.png",
    } <= files
    assert (tmp_path / "o" / "table.md").read_text().count("\n| ") == 3  # header + 2 models
    assert json.loads((tmp_path / "o" / "results.json").read_text()) == d


def test_zeroshot_table_on_terminal(colour_models, colour_data):
    r = run("zeroshot", colour_data, "-m", "a", "-m", "b")
    assert r.exit_code == 0, r.output
    assert "top1" in r.stdout and "1.0000" in r.stdout and "\n│ b" in r.stdout


def test_retrieval_and_probe_write_their_plots(colour_models, tmp_path):
    r = run("retrieval", _pairs(tmp_path), "--split", "test", "-m", "a", "--out", tmp_path / "r")
    assert r.exit_code == 0, r.output
    assert "t2i R@1" in r.stdout and (tmp_path / "r" / "recall_at_k.png").is_file()
    assert "missing.jpg" in r.stderr  # failed image reported, not fatal
    labels = tmp_path / "labels.csv"
    from tests.eval.conftest import write_colour_images

    write_colour_images(tmp_path / "img", per_class=4).to_csv(labels, index=False)
    r = run("probe", labels, "--shots", "1,all", "--draws", "2", "-m", "a", "--json", "--out", tmp_path / "p")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["results"]["a"]["accuracy"] == {"1": 1.0, "all": 1.0}
    assert (tmp_path / "p" / "probe_accuracy.png").is_file()


def test_instance_labels_form(colour_models, colour_data):
    r = run("instance", "--gt", colour_data, "-m", "a", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["results"]["a"]["protocols"]["labels"]["mAP"] == 1.0


def _one_line_error(r, *needles):
    assert r.exit_code != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_bad_inputs_give_one_line_errors(colour_models, colour_data, tmp_path):
    _one_line_error(run("zeroshot", tmp_path / "nope.csv"), "no such file")
    _one_line_error(run("zeroshot", colour_data, "--label-column", "kind"), "no column 'kind'")
    (tmp_path / "empty.csv").write_text("path,label\n")
    _one_line_error(run("zeroshot", tmp_path / "empty.csv"), "no rows")
    _one_line_error(run("zeroshot", colour_data, "--templates", "nonsense"), "templates")
    _one_line_error(run("retrieval", _pairs(tmp_path), "--split", "val"), "split")
    _one_line_error(run("probe", colour_data, "--shots", "1,x"), "shots")
    _one_line_error(run("instance", "-m", "a"), "--gt")
    pd.DataFrame({"path": ["/nonexistent/a.jpg", "/nonexistent/b.jpg"], "label": ["red", "blue"]}).to_csv(
        tmp_path / "gone.csv", index=False
    )
    r = run("zeroshot", tmp_path / "gone.csv", "--json")
    assert r.exit_code != 0 and "none of the 2 images could be read" in r.stderr and r.stdout == ""


def test_unknown_model_is_a_clear_error(colour_data):
    r = run("zeroshot", colour_data, "-m", "no-such-model")
    assert r.exit_code != 0 and "unknown model" in r.stderr


def test_csv_in_the_current_folder_is_named(colour_models, colour_data, tmp_path, monkeypatch):
    """A dataset file given without a folder is named in the title and the JSON (was "")."""
    _pairs(tmp_path)
    monkeypatch.chdir(tmp_path)
    r = run("retrieval", "captions.csv", "--split", "test", "-m", "a")
    assert r.exit_code == 0, r.output
    assert r.stdout.lstrip().startswith("retrieval on captions.csv (a:"), r.stdout[:200]
    d = json.loads(run("retrieval", "captions.csv", "-m", "a", "--json").stdout)
    assert d["dataset"] == "captions.csv" and d["results"]["a"]["dataset"] == "captions.csv"
    r = run("zeroshot", colour_data.name, "-m", "a", "--json")
    assert json.loads(r.stdout)["dataset"] == "labels.csv"
    with_folder = run("zeroshot", colour_data, "-m", "a", "--json")  # a path: folder/file
    assert json.loads(with_folder.stdout)["dataset"] == f"{tmp_path.name}/labels.csv"


def test_instance_protocol_without_positives_names_it(colour_models, tmp_path):
    """A ground truth with only "easy" positives: the default run stops at "hard" before any model
    loads, naming it and the protocols that can be scored; --protocol easy then runs."""
    from tests.eval.test_runners import _revisited

    gt = _revisited(tmp_path)
    obj = json.loads(gt.read_text())
    for g in obj["gnd"]:
        g["hard"] = []
    gt.write_text(json.dumps(obj))
    _one_line_error(run("instance", "--gt", gt, "-m", "a"), "protocol 'hard'", "--protocol easy")
    r = run("instance", "--gt", gt, "-m", "a", "--protocol", "easy", "--json")
    assert r.exit_code == 0, r.output
    scored = json.loads(r.stdout)["results"]["a"]["protocols"]
    assert list(scored) == ["easy"] and scored["easy"]["R@1"] == 1.0 and scored["easy"]["n_queries"] == 1
