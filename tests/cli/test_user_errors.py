"""Common mistakes with the core commands: exit 2 and one `error:` line naming the culprit, no
traceback, checked before the work, nothing already written lost. A toy encoder keeps these fast."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import cliplab.cli  # noqa: F401  (registers every command)
import cliplab.cli.analyze as cli_analyze
import cliplab.cli.core as cli_core
import cliplab.cli.evaluate as cli_eval
from cliplab.cli.app import app
from tests.helpers import ToyEncoder, make_image

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def toy(monkeypatch):
    """Every --model loads the toy encoder, and counts the loads (a check must come before them)."""
    loads = []

    def load(spec, *args, **kwargs):  # runtime options (if any) are not the point here
        loads.append(spec)
        return ToyEncoder()

    for mod in (cli_core, cli_eval, cli_analyze):
        monkeypatch.setattr(mod, "load_model", load)
    return loads


@pytest.fixture
def pics(tmp_path):
    for i, c in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        make_image(tmp_path / "pics" / f"p{i}.jpg", color=c)
    return tmp_path / "pics"


def run(*args, env=None):
    r = runner.invoke(app, [str(a) for a in args], env=env)
    return r.exit_code, r.stdout, r.stderr


def user_error(res, *words):
    code, _, err = res
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err
    for w in words:
        assert str(w) in lines[0], (w, lines[0])
    return lines[0]


def test_out_that_is_a_file_fails_before_embedding(toy, pics, tmp_path):
    taken = tmp_path / "results.txt"
    taken.write_text("keep me")
    user_error(run("embed", pics, "--out", taken), "results.txt", "is a file")
    user_error(run("embed", pics, "--out", taken / "sub"), "is a file, not a folder")
    assert toy == [] and taken.read_text() == "keep me"  # no model loaded, nothing overwritten
    user_error(run("similarity", pics, "--texts", taken, "--out", pics), "is a folder")
    user_error(run("features", pics, "--out", taken), "results.txt", "is a file")
    user_error(run("analyze", pics, "--out", taken), "results.txt", "is a file")
    assert toy == [] and taken.read_text() == "keep me"


@pytest.mark.parametrize(
    "args, culprit",
    [
        (("embed", "PICS", "--out", "OUT", "--batch-size", "0"), "--batch-size"),
        (("embed", "PICS", "--out", "OUT", "--batch-size", "-3"), "--batch-size"),
        (("embed", "PICS", "--out", "OUT", "--workers", "0"), "--workers"),
        (("classify", "PICS", "--labels", "a,b", "-k", "0"), "-k"),
        (("features", "PICS", "--out", "OUT", "--pca", "0"), "--pca"),
        (("analyze", "PICS", "--clusters", "1"), "--clusters"),
        (("eval", "probe", "PICS", "--draws", "0"), "--draws"),
    ],
)
def test_numeric_options_checked_at_parse_time(toy, pics, tmp_path, args, culprit):
    args = [str(pics) if a == "PICS" else str(tmp_path / "out") if a == "OUT" else a for a in args]
    code, _, err = run(*args)
    assert code == 2 and culprit in err and "Traceback" not in err
    assert toy == [] and not (tmp_path / "out").exists()


def test_classify_needs_two_labels(toy, pics, tmp_path):
    user_error(run("classify", pics, "--labels", "cat"), "at least two labels", "'cat'")
    (tmp_path / "one.txt").write_text("cat\n\ncat\n")
    user_error(run("classify", pics, "--labels", tmp_path / "one.txt"), "at least two labels")
    assert toy == []


def test_classify_labels_csv_uses_the_label_column(toy, pics, tmp_path):
    (tmp_path / "labels.csv").write_text("path,label\nx.jpg,red thing\ny.jpg,green thing\nz.jpg,red thing\n")
    code, out, _ = run("classify", pics, "--labels", tmp_path / "labels.csv", "--json")
    assert code == 0 and json.loads(out)["labels"] == ["red thing", "green thing"]
    (tmp_path / "names.csv").write_text("name;id\ncar;1\nboat;2\n")  # no label column: the first
    code, out, _ = run("classify", pics, "--labels", tmp_path / "names.csv", "--json")
    assert code == 0 and json.loads(out)["labels"] == ["car", "boat"]


def test_eval_zeroshot_on_one_class_is_an_error(toy, pics, tmp_path):
    pd.DataFrame({"path": [str(p) for p in sorted(pics.iterdir())], "label": "red"}).to_csv(
        tmp_path / "one.csv", index=False
    )
    user_error(run("eval", "zeroshot", tmp_path / "one.csv"), "at least two classes", "'red'")
    assert toy == []


def test_eval_out_file_and_bad_pooling_fail_before_models(toy, pics, tmp_path):
    csv = tmp_path / "labels.csv"
    pd.DataFrame({"path": [str(p) for p in sorted(pics.iterdir())], "label": ["r", "g", "b"]}).to_csv(csv, index=False)
    (tmp_path / "taken").write_text("x")
    user_error(run("eval", "zeroshot", csv, "--out", tmp_path / "taken"), "taken")
    user_error(run("eval", "instance", csv, "--pooling", "foo"), "--pooling 'foo'", "gem")
    assert toy == []


def test_csv_with_semicolons_and_bad_encoding(toy, pics, tmp_path):
    rows = "".join(f"{p};{lab}\n" for p, lab in zip(sorted(pics.iterdir()), "rgb"))
    (tmp_path / "semi.csv").write_text("path;label\n" + rows)
    code, out, err = run("eval", "zeroshot", tmp_path / "semi.csv", "--json")
    assert code == 0, err
    assert json.loads(out)["results"]["lite"]["n"] == 3
    (tmp_path / "latin.csv").write_bytes("path,label\nx.jpg,caf\xe9\n".encode("latin-1"))
    user_error(run("eval", "zeroshot", tmp_path / "latin.csv"), "latin.csv", "UTF-8")


@pytest.mark.parametrize(
    "spec, words",
    [
        ("preclip:abc", ["preclip:abc", "positive whole number"]),
        ("preclip:0", ["preclip:0"]),
        ("conse:big", ["conse:big"]),
    ],
)
def test_bad_model_specs_are_one_line(pics, spec, words):
    user_error(run("classify", pics, "--labels", "a,b", "--model", spec), *words)


@pytest.mark.parametrize(
    "var, value",
    [
        ("CLIPLAB_THREADS", "many"),
        ("CLIPLAB_THREADS", "-2"),
        ("CLIPLAB_MAX_PIXELS", "1e9x"),
        ("CLIPLAB_MAX_PIXELS", "0"),
    ],
)
def test_bad_environment_is_one_line_before_work(toy, pics, tmp_path, var, value):
    user_error(run("embed", pics, "--out", tmp_path / "o", env={var: value}), var, repr(value))
    assert toy == [] and not (tmp_path / "o").exists()


def test_version_is_fast_and_completion_is_offered():
    code = (
        "import sys; sys.argv = ['cliplab', '--version']\n"
        "from cliplab.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, 'numpy' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    from cliplab import __version__

    assert r.stdout.splitlines() == [f"cliplab {__version__}", "False False"], r.stderr
    code, out, _ = run("--help")
    assert code == 0 and "--install-completion" in out and "--version" in out


def test_models_lists_without_loading_weights():
    code = (
        "import json, sys; sys.argv = ['cliplab', 'models', '--json']\n"
        "from cliplab.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(json.dumps('torch' in sys.modules))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )
    *body, torch_loaded = r.stdout.strip().splitlines()
    rows = {m["spec"]: m for m in json.loads("\n".join(body))["models"]}
    assert torch_loaded == "false"
    assert {"lite", "conse", "preclip", "auto", "openai/clip-vit-base-patch32"} <= set(rows)
    assert rows["lite"]["installed"] and rows["lite"]["dim"] == 768 and rows["preclip"]["dim"] == 64
    assert rows["auto"]["source"].startswith("resolves to")


@pytest.mark.parametrize(
    "args, words",
    [
        (["search", "q", "-k", "0"], ["--top-k", "0 is not in the range x>=1"]),
        (["serch", "q"], ["No such command 'serch'", "search"]),
        (["index", "--bogus"], ["--bogus", "cliplab index --help"]),
    ],
)
def test_usage_errors_are_one_line_from_the_real_entry_point(args, words, tmp_path):
    r = subprocess.run(
        [sys.executable, "-c", "from cliplab.cli import main; main()", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"},
    )
    user_error((r.returncode, r.stdout, r.stderr), *words)
    assert r.stdout == ""


def test_texts_file_that_is_not_utf8(toy, tmp_path):
    (tmp_path / "caps.txt").write_bytes("un caf\xe9\n".encode("latin-1"))
    user_error(run("embed", "--texts", tmp_path / "caps.txt", "--out", tmp_path / "o"), "caps.txt", "not UTF-8")
    assert toy == []  # found before the model loads
