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
    ],
)
def test_user_errors(args, words):
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    assert "error:" in r.output and words in r.output and "Traceback" not in r.output
