"""Every error type cliplab raises on purpose, with the exit status the CLI gives it.

The library raises these; the CLI's `guarded` wrapper prints `error: <message>` as one line on
stderr and exits with the error's `exit_code`. Exit statuses: 0 ok; 1 partial failure (a run that
produced nothing, e.g. no image could be embedded); 2 user error (everything below); 130 Ctrl-C.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USER = 2
EXIT_INTERRUPTED = 130


class CliplabError(Exception):
    """Base class for every error a user can cause (bad path, bad option, bad file)."""

    exit_code = EXIT_USER


class ModelNotFoundError(CliplabError):
    """A model spec that cannot be resolved or loaded (unknown name, uncached hub id offline)."""


class ModelSpecError(ModelNotFoundError):
    """A model spec string that names no model (a typo, a bad `preclip:N`, a folder that is no checkpoint)."""


class QueryError(CliplabError):
    """A search query that cannot be run: a malformed expression, an unknown like:ID, too many terms."""


class ImageError(CliplabError):
    """One image that cannot be used; the message is the recorded reason."""


class DataError(CliplabError):
    """A dataset / captions / labels file that is missing or malformed."""


class SettingsError(CliplabError):
    """An environment variable with a value cliplab cannot use (e.g. CLIPLAB_THREADS=abc)."""


class OutputError(CliplabError):
    """An output path that cannot be written (an existing file where a folder is needed, …)."""


class IndexMismatchError(CliplabError):
    """The index was built with another model (or an unknown schema) than the one asked for."""


class IndexBusyError(CliplabError):
    """Another process is updating this index right now."""


class IndexNotFoundError(CliplabError):
    """No index where one was expected (e.g. --index DIR without a catalog and no folder)."""


class EvalError(CliplabError, ValueError):
    """An evaluation that cannot run: arrays of the wrong shape, a data set it cannot score."""


class TrainError(CliplabError):
    """A training run that cannot start or continue (bad option, nothing to train on, bad resume)."""
