"""One CLI vocabulary: every command's options are walked and checked against cliplab/cli/vocabulary.py,
and every deprecated spelling still works (mapped onto its canonical option) with one note on stderr."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import typer.main
from typer.testing import CliRunner

import cliplab.cli  # noqa: F401  (registers every command)
import cliplab.cli.core as cli_core
import cliplab.cli.evaluate as cli_eval
import cliplab.cli.index as cli_index
from cliplab.cli.app import app
from cliplab.cli.vocabulary import ARG, CONCEPTS, DEPRECATED, Vocabulary, rewrite
from tests.helpers import ToyEncoder, make_image
from tests.index.helpers import TinyEncoder

runner = CliRunner()
ROOT = typer.main.get_command(app)


def commands(cmd=ROOT, path=()):
    """(path, click command) for every command and group below the root, depth first."""
    for name, sub in getattr(cmd, "commands", {}).items():
        yield (*path, name), sub
        yield from commands(sub, (*path, name))


def options(cmd):
    return [p for p in cmd.params if p.param_type_name == "option"]


def declared(cmd) -> set[str]:
    return {o for p in options(cmd) for o in (*p.opts, *p.secondary_opts)}


def test_the_walk_sees_every_command():
    paths = {" ".join(p) for p, _ in commands()}
    assert {"classify", "search", "similarity", "serve", "eval instance", "indexes prune", "cache clean"} <= paths


def test_a_short_flag_means_one_thing_everywhere():
    shorts = {short: canon for canon, short, _ in CONCEPTS.values() if short}
    meanings: dict[str, set[str]] = {}
    for path, cmd in [((), ROOT), *commands()]:
        for p in options(cmd):
            longs = [o for o in p.opts if o.startswith("--")]
            for s in (o for o in p.opts if not o.startswith("--")):
                meanings.setdefault(s, set()).add(longs[0] if longs else "?")
                assert s in shorts, f"{' '.join(path)}: {s} is in no CONCEPTS entry (add one, or drop the flag)"
                assert longs[:1] == [shorts[s]], f"{' '.join(path)}: {s} means {shorts[s]} elsewhere, here {longs}"
    assert all(len(m) == 1 for m in meanings.values()), meanings


def test_no_concept_is_spelled_two_ways():
    for path, cmd in commands():
        for concept, (canon, short, forbidden) in CONCEPTS.items():
            clash = declared(cmd) & set(forbidden)
            assert not clash, f"cliplab {' '.join(path)}: {sorted(clash)} for {concept!r}; the spelling is {canon}"
            for p in options(cmd):
                if canon in p.opts:
                    extra = {o for o in p.opts if not o.startswith("--")} - {short}
                    assert not extra, f"cliplab {' '.join(path)}: {canon} with {extra}"


def test_every_command_that_prints_results_has_json():
    for path, cmd in commands():
        leaf = not getattr(cmd, "commands", None)
        if leaf or getattr(cmd, "invoke_without_command", False):
            assert "--json" in declared(cmd), f"cliplab {' '.join(path)} has no --json"


def test_the_deprecation_table_matches_the_commands():
    found = {" ".join(p): (c, parent) for (p, c), parent in _with_parents()}
    for path, table in DEPRECATED.items():
        cmd, parent = found[path]
        assert isinstance(parent, Vocabulary), f"{path}: its group must be a Vocabulary to rewrite old spellings"
        for old, new in table.items():
            assert old not in declared(cmd), f"{path}: {old} is still declared"
            if new == ARG:
                assert any(p.param_type_name == "argument" for p in cmd.params), path
            else:
                assert new in declared(cmd), f"{path}: {new} is not an option"


def _with_parents(cmd=ROOT, path=()):
    for name, sub in getattr(cmd, "commands", {}).items():
        yield ((*path, name), sub), cmd
        yield from _with_parents(sub, (*path, name))


ENTRIES = [(path, old, new) for path, table in DEPRECATED.items() for old, new in table.items()]


@pytest.mark.parametrize("path, old, new", ENTRIES, ids=[f"{p}:{o}" for p, o, _ in ENTRIES])
def test_each_old_spelling_parses_as_the_new_one(path, old, new):
    cmd = dict((" ".join(p), c) for p, c in commands())[path]
    target = next(p for p in cmd.params if (p.param_type_name == "argument" if new == ARG else new in p.opts))
    flag = target.param_type_name == "option" and target.is_flag
    value = "0.5" if "float" in target.type.name else "3"  # valid for every target's type and range
    notes: list[str] = []
    args = rewrite(path, cmd, [old] + ([] if flag else [value]), notes.append)
    ctx = cmd.make_context(path.split()[-1], args, resilient_parsing=True)
    got = ctx.params[target.name]
    assert (got is True) if flag else (str(got[0] if isinstance(got, (list, tuple)) else got) == value), got
    assert len(notes) == 1 and notes[0].startswith(f"note: {old} is deprecated here; ")
    if new != ARG:
        assert f"use {new}" in notes[0]


def test_attached_values_and_option_values_are_left_alone():
    cmd = dict((" ".join(p), c) for p, c in commands())["search"]
    assert rewrite("search", cmd, ["q", "-n5"], lambda _: None) == ["q", "--top-k=5"]
    # "-n" as the value of --dir is a folder name, not the flag
    assert rewrite("search", cmd, ["q", "--dir", "-n"], lambda _: None) == ["q", "--dir", "-n"]
    assert rewrite("search", cmd, ["--", "-n"], lambda _: None) == ["--", "-n"]


def test_old_spellings_are_not_in_help():
    for path, table in DEPRECATED.items():
        r = runner.invoke(app, [*path.split(), "--help"], env={"COLUMNS": "200"})
        assert r.exit_code == 0
        for old in (o for o in table if o.startswith("--")):
            assert f"{old} " not in r.stdout and f"{old}\n" not in r.stdout, (path, old)


# End to end, through the real app: the old spelling runs and says what to use instead.


@pytest.fixture
def toy(monkeypatch):
    for mod in (cli_core, cli_eval):
        monkeypatch.setattr(mod, "load_model", lambda *a, **k: ToyEncoder())


@pytest.fixture
def pics(tmp_path):
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]
    return [make_image(tmp_path / "pics" / f"p{i}.jpg", color=c) for i, c in enumerate(colours)]


def run(*args):
    r = runner.invoke(app, [str(a) for a in args])
    return r.exit_code, r.stdout, r.stderr


def noted(err: str, old: str, new: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.startswith("note:")]
    assert lines == [f"note: {old} is deprecated here; {new}"], err


def test_similarity_images_and_embed_format(toy, pics, tmp_path):
    code, _, err = run("similarity", "--images", pics[0].parent, "--texts", "red,green", "-o", tmp_path / "s.csv")
    assert code == 0, err
    noted(err, "--images", "give INPUTS as an argument (cliplab similarity INPUTS …)")
    assert pd.read_csv(tmp_path / "s.csv", index_col=0).shape == (4, 2)
    code, out, err = run("embed", pics[0], "--format", "cliplab", "-o", tmp_path / "e", "--json")
    assert code == 0 and json.loads(out)["images"] == 1
    noted(err, "--format", "use --layout")


def test_eval_data_pairs_images_and_pca_dim(toy, pics, tmp_path):
    csv = tmp_path / "labels.csv"
    pd.DataFrame({"path": [str(p) for p in pics], "label": ["a", "b", "a", "b"]}).to_csv(csv, index=False)
    for old in ("--data", "-d"):
        code, out, err = run("eval", "zeroshot", old, csv, "--json")
        assert code == 0 and json.loads(out)["results"]["lite"]["n"] == 4, err
        noted(err, old, "give DATA as an argument (cliplab eval zeroshot DATA …)")
    code, out, err = run("eval", "probe", "--data", csv, "--shots", "1", "--draws", "1", "--json")
    assert code == 0 and "accuracy" in json.loads(out)["results"]["lite"], err
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame({"path": [str(p) for p in pics], "caption": ["red", "green", "blue", "yellow"]}).to_csv(pairs)
    code, out, err = run("eval", "retrieval", "-p", pairs, "--json")
    assert code == 0 and json.loads(out)["task"] == "retrieval", err
    noted(err, "-p", "give PAIRS as an argument (cliplab eval retrieval PAIRS …)")
    code, out, err = run("eval", "instance", "-i", csv, "--pca-dim", "2", "--json")
    assert code == 0 and json.loads(out)["results"]["lite"]["protocols"]["labels"]["n_queries"] == 4, err
    assert [ln.split(";")[0] for ln in err.splitlines() if ln.startswith("note:")] == [
        "note: -i is deprecated here",
        "note: --pca-dim is deprecated here",
    ]


def test_search_n_duplicates_t_and_prune_n(pics, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(cli_index, "load_model", lambda *a, **k: TinyEncoder())
    folder = pics[0].parent
    code, out, err = run("search", "red", "--dir", folder, "-n", 2, "--json")
    assert code == 0 and len(json.loads(out)["results"]) == 2, err
    noted(err, "-n", "use --top-k (-k)")
    code, out, err = run("duplicates", folder, "-t", "0.5", "--json")
    assert code == 0 and json.loads(out)["threshold"] == 0.5, err
    noted(err, "-t", "use --threshold")
    code, out, err = run("indexes", "--home", tmp_path / "home", "prune", "-n", "--json")
    assert code == 0 and json.loads(out)["dry_run"] is True, err
    noted(err, "-n", "use --dry-run")


def test_pooling_has_one_printed_name_per_method():
    from cliplab.cli.vocabulary import pooling_option
    from cliplab.errors import CliplabError

    assert [pooling_option(n) for n in ("avg", "GAP", "mean", "max", "gem", "r-mac")] == [
        "gap",
        "gap",
        "gap",
        "mac",
        "gem",
        "rmac",
    ]
    assert pooling_option("none", none_ok=True) == "none"
    with pytest.raises(CliplabError, match=r"--pooling 'none': choose one of gap, mac, gem, rmac"):
        pooling_option("none")
