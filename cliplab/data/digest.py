"""The one way cliplab names content: a blake2b digest of bytes or of a file (sha256 on request).

Sizes in use: 16 bytes for file contents in a catalog and cache keys, 6 bytes (12 hex digits) for
the short names of weights and preprocessing in a model's description.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

CHUNK = 1 << 20


def bytes_digest(data: bytes | str, size: int = 16) -> str:
    return hashlib.blake2b(data.encode() if isinstance(data, str) else data, digest_size=size).hexdigest()


def short_digest(data: bytes | str) -> str:
    """12 hex digits naming some content (weights, preprocessing) in a model's description, so an
    index notices when a model of the same name now makes different vectors."""
    return bytes_digest(data, 6)


def file_digest(path: str | Path, size: int = 16, algorithm: str = "blake2b") -> str:
    """Digest of a file's content, read in chunks (raises OSError when it cannot be read)."""
    h = hashlib.sha256() if algorithm == "sha256" else hashlib.blake2b(digest_size=size)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=64)
def weights_digest(path: str) -> str:
    """short digest of a weights file (tens of ms for ~20 MB), once per process and resolved path."""
    return file_digest(path, 6)
