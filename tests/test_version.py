"""One version: cliplab.__version__, what pyproject.toml builds, `cliplab --version` and the top
released section of CHANGELOG.md all agree."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import cliplab

REPO = Path(__file__).resolve().parents[1]


def test_pyproject_cli_and_changelog_agree():
    from setuptools.config.pyprojecttoml import read_configuration

    version = cliplab.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    # what a build would stamp on the package (pyproject reads cliplab.__version__, no second copy)
    assert read_configuration(REPO / "pyproject.toml")["project"]["version"] == version
    r = subprocess.run(
        [sys.executable, "-c", "from cliplab.cli import main; main()", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and r.stdout == f"cliplab {version}\n", r.stderr
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", (REPO / "CHANGELOG.md").read_text(), re.M)
    assert released and released[0] == version, released[:2]
    assert released == sorted(released, key=lambda v: tuple(map(int, v.split("."))), reverse=True)
