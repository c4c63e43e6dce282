"""Every environment variable cliplab reads, parsed and validated in one place.

`settings()` parses them all (cheap, so it is not cached: tests and long-lived processes see
changes), and a bad value fails the same way wherever it is used: a `SettingsError` naming the
variable. The CLI calls it once at start-up, so the `error:` line comes before any work.

| variable              | meaning                                                   | default                             |
|-----------------------|-----------------------------------------------------------|-------------------------------------|
| CLIPLAB_THREADS       | threads for the model's math (0 or unset: every core)     | 0                                   |
| CLIPLAB_MAX_PIXELS    | larger images are skipped as "too large" (the one limit)  | 64 000 000                          |
| CLIPLAB_SHARED        | the shared sample-data folder                             | ../shared beside the checkout       |
| CLIPLAB_INDEX_HOME    | where collection indexes live                             | $XDG_DATA_HOME/cliplab/indexes      |
| CLIPLAB_CACHE         | training feature cache root (features/ below it)          | $XDG_CACHE_HOME/cliplab             |
| CLIPLAB_TOKEN         | bearer token the server requires (unset: none)            | —                                   |
| CLIPLAB_NO_JIT        | "1" disables TorchScript freezing of the towers           | off                                 |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cliplab.errors import SettingsError

DEFAULT_MAX_PIXELS = 64_000_000  # 8k × 8k; larger files are almost always mistakes or bombs


@dataclass(frozen=True)
class Settings:
    threads: int  # 0: let the runtime use every core
    max_pixels: int
    shared: Path | None  # as given; whether it exists is the reader's business
    index_home: Path
    cache_home: Path
    token: str | None
    no_jit: bool

    @property
    def feature_cache(self) -> Path:
        return self.cache_home / "features"


def _int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: not a whole number") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r}: must be at least {minimum}")
    return value


def _path(name: str) -> Path | None:
    raw = os.environ.get(name, "").strip()
    return Path(raw).expanduser() if raw else None


def _flag(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name}={os.environ[name]!r}: use 1 or 0")


def _load() -> Settings:
    home = Path.home()
    data_home = _path("XDG_DATA_HOME") or home / ".local" / "share"
    cache_root = _path("XDG_CACHE_HOME") or home / ".cache"
    token = os.environ.get("CLIPLAB_TOKEN")
    return Settings(
        threads=_int("CLIPLAB_THREADS", 0, 0),
        max_pixels=_int("CLIPLAB_MAX_PIXELS", DEFAULT_MAX_PIXELS, 1),
        shared=_path("CLIPLAB_SHARED"),
        index_home=_path("CLIPLAB_INDEX_HOME") or data_home / "cliplab" / "indexes",
        cache_home=_path("CLIPLAB_CACHE") or cache_root / "cliplab",
        token=token.strip() if token and token.strip() else None,
        no_jit=_flag("CLIPLAB_NO_JIT"),
    )


def settings() -> Settings:
    """The validated settings (raises SettingsError naming the first bad variable)."""
    return _load()
