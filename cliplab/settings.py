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
| CLIPLAB_CACHE         | cache root: onnx/, features/, classes/ (`cliplab cache`)  | $XDG_CACHE_HOME/cliplab             |
| CLIPLAB_TOKEN         | bearer token the server requires (unset: none)            | —                                   |
| CLIPLAB_NO_JIT        | "1" disables TorchScript freezing of the towers           | off                                 |
| CLIPLAB_DECODE_TIMEOUT | seconds one file may decode before it is failed (>0)     | 30                                  |
| CLIPLAB_VIDEO_EVERY   | seconds between the frames sampled from a video           | 2                                   |
| CLIPLAB_VIDEO_FRAMES  | at most this many frames per video (long ones: spread)    | 200                                 |
| CLIPLAB_TEXT_CACHE    | text-query vectors the server keeps (LRU; 0: none)        | 4096                                |

Other libraries' variables that cliplab reads or sets, here too: HF_HUB_OFFLINE (cliplab sets it to
1 unless the user set it: nothing reaches for the network unasked; `hub_offline`), the proxy
variables (`proxy`), TOKENIZERS_PARALLELISM (set to false: cliplab runs its own threads), and
CLIPLAB_THREADS for child processes and Ray actors (`set_threads`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cliplab.errors import SettingsError

DEFAULT_MAX_PIXELS = 64_000_000  # 8k × 8k; larger files are almost always mistakes or bombs
DEFAULT_DECODE_TIMEOUT = 30.0  # a 64 MP RAW demosaic takes a few seconds; 30 s is a hang, not a photo


@dataclass(frozen=True)
class Settings:
    threads: int  # 0: let the runtime use every core
    max_pixels: int
    shared: Path | None  # as given; whether it exists is the reader's business
    index_home: Path
    cache_home: Path
    token: str | None
    no_jit: bool
    hub_offline: bool  # HF_HUB_OFFLINE
    proxy: str | None  # HTTPS_PROXY / ALL_PROXY (either case)
    decode_timeout: float = DEFAULT_DECODE_TIMEOUT  # per file, in the decode threads (cliplab.pipeline)
    video_every: float = 2.0  # seconds between sampled video frames (data/video.py)
    video_frames: int = 200  # frames per video at most
    text_cache: int = 4096  # text-query vectors a server keeps (serve/encoders.py; 0: none)

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


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: not a number of seconds") from None
    if not (value > 0 and value < 1e6):
        raise SettingsError(f"{name}={raw!r}: must be more than 0")
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
        hub_offline=os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE"),
        proxy=next((os.environ[k] for k in _PROXIES if os.environ.get(k)), None),
        decode_timeout=_seconds("CLIPLAB_DECODE_TIMEOUT", DEFAULT_DECODE_TIMEOUT),
        video_every=_seconds("CLIPLAB_VIDEO_EVERY", 2.0),
        video_frames=_int("CLIPLAB_VIDEO_FRAMES", 200, 1),
        text_cache=_int("CLIPLAB_TEXT_CACHE", 4096, 0),
    )


_PROXIES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def prefer_offline() -> None:
    """Library defaults for a cliplab process: the hub offline unless the user says otherwise, and
    no tokenizer thread pool of its own (cliplab runs its own threads)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def set_threads(n: int) -> None:
    """Model threads for this process and the processes it starts (Ray actors, server workers)."""
    os.environ["CLIPLAB_THREADS"] = str(int(n))


def settings() -> Settings:
    """The validated settings (raises SettingsError naming the first bad variable)."""
    return _load()
