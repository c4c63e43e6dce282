"""`cliplab serve` user errors: one `error:` line, exit 2, before anything is started."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cliplab.cli import app


@pytest.mark.parametrize(
    "args,words",
    [
        (["serve"], "give one or more image folders"),
        (["serve", "/no/such/folder", "--port", "0"], "no such folder"),
        (["serve", ".", "--port", "70000"], "--port 70000"),
        (["serve", ".", "--max-upload-mb", "0"], "--max-upload-mb"),
        (["serve", "--index", "/no/such/index", "--port", "0"], "no index"),
        (["serve", ".", "--host", "0.0.0.0", "--port", "0"], "--no-token"),
        (["serve", ".", "--host", "192.168.1.5", "--port", "0"], "--token-file"),
        (["serve", ".", "--token-file", "/no/such/token", "--port", "0"], "--token-file /no/such/token"),
        (["serve", ".", "--token", "a", "--token-file", "/etc/hostname", "--port", "0"], "not both"),
    ],
)
def test_user_errors(args, words):
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    assert "error:" in r.output and words in r.output and "Traceback" not in r.output


def test_help_says_to_prefer_the_token_file():
    r = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    assert "--token-file" in r.output and "prefer" in r.output and "--no-token" in r.output
