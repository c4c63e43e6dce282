"""Command-line face of cliplab. Each module registers its commands on the shared typer app
(imported in the order `cliplab --help` lists them)."""
from cliplab.cli import core  # noqa: F401,I001  (registers commands)
from cliplab.cli import index, train, evaluate, analyze  # noqa: F401,E401
from cliplab.cli.app import app


def main() -> None:
    app()
