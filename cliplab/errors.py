"""Typed errors. The library raises these; the CLI prints them as one line and exits non-zero."""


class CliplabError(Exception):
    """Base class for every error a user can cause (bad path, bad option, bad file)."""


class ModelNotFoundError(CliplabError):
    """A model spec that cannot be resolved or loaded (unknown name, uncached hub id offline)."""


class ImageError(CliplabError):
    """One image that cannot be used; the message is the recorded reason."""


class DataError(CliplabError):
    """A dataset / captions / labels file that is missing or malformed."""
