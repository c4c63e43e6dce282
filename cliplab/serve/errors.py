"""The errors a request can cause, each with the HTTP status the server answers with."""

from __future__ import annotations

from cliplab.errors import CliplabError


class ApiError(CliplabError):
    """A request the server refuses; `status` is the HTTP status it answers with."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class NotFound(ApiError):
    status = 404


class TooLarge(ApiError):
    status = 413
