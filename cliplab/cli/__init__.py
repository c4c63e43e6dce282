"""Command-line face of cliplab. Each module registers its commands on the shared typer app."""
from cliplab.cli import analyze, core, evaluate, index, train  # noqa: F401  (registers commands)
from cliplab.cli.app import app


def main() -> None:
    app()
