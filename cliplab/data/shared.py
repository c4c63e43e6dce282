"""Where the shared real data lives (../shared beside the checkout; $CLIPLAB_SHARED overrides)."""

from __future__ import annotations

from pathlib import Path


def shared_dir() -> Path | None:
    from cliplab.settings import settings

    env = settings().shared
    if env is not None:
        return env if env.is_dir() else None
    for base in (Path(__file__).resolve().parents[2], Path.cwd()):
        cand = base.parent / "shared"
        if (cand / "data").is_dir():
            return cand
    return None


def shared_path(*parts: str) -> Path | None:
    root = shared_dir()
    if root is None:
        return None
    p = root.joinpath(*parts)
    return p if p.exists() else None
