"""Errors a user can cause with an index (defined with the others in cliplab.errors)."""

from cliplab.errors import IndexBusyError, IndexMismatchError, IndexNotFoundError

__all__ = ["IndexBusyError", "IndexMismatchError", "IndexNotFoundError"]
