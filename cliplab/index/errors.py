"""Errors a user can cause with an index (all CliplabError, so the CLI prints one line)."""
from cliplab.errors import CliplabError


class IndexMismatchError(CliplabError):
    """The index was built with another model (or an unknown schema) than the one asked for."""


class IndexBusyError(CliplabError):
    """Another process is updating this index right now."""


class IndexNotFoundError(CliplabError):
    """No index where one was expected (e.g. --index DIR without a catalog and no folder)."""
