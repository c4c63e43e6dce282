"""Where indexes live.

Default: `$CLIPLAB_INDEX_HOME/<folder-name>-<12 hex of sha1(absolute folder path)>/`, where
CLIPLAB_INDEX_HOME defaults to `$XDG_DATA_HOME/cliplab/indexes` (`~/.local/share/cliplab/indexes`).
Nothing is written into image folders, so read-only and shared folders can be indexed. An explicit
`index_dir` (CLI `--index DIR`) overrides this.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from cliplab.index.catalog import catalog_exists


def index_home() -> Path:
    from cliplab.settings import settings

    return settings().index_home


def default_index_dir(folder: str | Path) -> Path:
    folder = Path(folder).expanduser().resolve()
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", folder.name or "root")[:40]
    return index_home() / f"{name}-{hashlib.sha1(str(folder).encode()).hexdigest()[:12]}"


def find_index(folder: str | Path) -> tuple[Path, Path, str | None] | None:
    """(index dir, indexed root, sub-folder) of the default index of `folder` or of its nearest
    indexed ancestor (like rclip: searching inside an indexed tree uses that tree's index)."""
    folder = Path(folder).expanduser().resolve()
    for root in (folder, *folder.parents):
        d = default_index_dir(root)
        if catalog_exists(d):
            rel = folder.relative_to(root).as_posix()
            return d, root, (None if rel == "." else rel)
    return None


def normalize_spec(spec: str) -> str:
    """The spec an index records: `auto` resolved now (it depends on the HF cache), local checkpoint
    folders by absolute path, built-in names and hub ids as written."""
    spec = spec.strip()
    if spec == "auto":
        from cliplab.models.clip_hf import is_clip_cached
        from cliplab.models.registry import DEFAULT_CLIP

        return DEFAULT_CLIP if is_clip_cached(DEFAULT_CLIP) else "lite"
    if spec in ("lite", "conse", "preclip") or spec.startswith(("conse:", "preclip:")):
        return spec
    p = Path(spec).expanduser()
    return str(p.resolve()) if p.exists() else spec
