"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request

from cliplab.serve.state import ServerState


def get_state(request: Request) -> ServerState:
    """The server's collections, encoders and settings (built once, kept on `app.state`)."""
    return request.app.state.cliplab


def base_url(request: Request) -> str:
    """This server's address as the client reached it, for absolute image URLs."""
    return str(request.base_url).rstrip("/")
