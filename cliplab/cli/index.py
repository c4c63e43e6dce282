"""CLI commands for index (registered on the shared app)."""
from cliplab.cli.app import app  # noqa: F401
