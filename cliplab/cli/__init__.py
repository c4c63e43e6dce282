"""Command-line face of cliplab. Each module registers its commands on the shared typer app
(imported in the order `cliplab --help` lists them)."""

from cliplab.cli import core  # noqa: F401,I001  (registers commands)
from cliplab.cli import index, duplicates, train, evaluate, analyze, info  # noqa: F401,E401
from cliplab.cli import serve  # noqa: F401,E402  (cliplab serve)
from cliplab.cli import cache  # noqa: F401,E402  (cliplab cache)
from cliplab.cli import explore  # noqa: F401,E402  (cliplab explore)
from cliplab.cli.app import app  # noqa: F401  (re-exported: `from cliplab.cli import app`)


def main() -> None:
    from cliplab.cli.app import run_cli

    run_cli()
