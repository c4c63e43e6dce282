"""CLI commands for train (registered on the shared app)."""
from cliplab.cli.app import app  # noqa: F401
