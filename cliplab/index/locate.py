"""Where indexes live: one per folder and model.

A folder's first index is `$CLIPLAB_INDEX_HOME/<folder-name>-<12 hex of sha1(absolute folder path)>/`
(the layout of every release so far, whatever model it holds); each further model gets a sibling
`<that name>--<model slug>/`. CLIPLAB_INDEX_HOME defaults to `$XDG_DATA_HOME/cliplab/indexes`
(`~/.local/share/cliplab/indexes`). Which index holds which model is read from each catalog (its
`model` meta), never from the names, so indexes made by older releases keep working in place.

Without a model asked for, a folder's index is its only one; with several, the `lite` one; without
that, the first made. Nothing is written into image folders, so read-only and shared folders can be
indexed. An explicit `index_dir` (CLI `--index DIR`) overrides all this: it is one index of one model.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from cliplab.index.catalog import CATALOG_NAME, catalog_exists

DEFAULT_MODEL = "lite"
SEP = "--"  # <first index's name>--<model slug>: a further model's index of the same folder


@dataclass(frozen=True)
class IndexRef:
    dir: Path
    model: str | None  # None: a catalog made a moment ago, not yet given its model
    created: float


def index_home() -> Path:
    from cliplab.settings import settings

    return settings().index_home


def default_index_dir(folder: str | Path) -> Path:
    """The folder's first index (today's and every earlier release's layout)."""
    folder = Path(folder).expanduser().resolve()
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", folder.name or "root")[:40]
    return index_home() / f"{name}-{hashlib.sha1(str(folder).encode()).hexdigest()[:12]}"


def model_slug(spec: str) -> str:
    """A file-name-safe form of a model spec; specs it had to change get a hash (no two collide)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("._-")[:32] or "model"
    return slug if slug == spec else f"{slug}-{hashlib.sha1(spec.encode()).hexdigest()[:6]}"


def read_meta(index_dir: str | Path) -> dict[str, str]:
    """An index's meta table read-only, {} when unreadable (opening a Catalog would write)."""
    uri = (Path(index_dir).resolve() / CATALOG_NAME).as_uri() + "?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True, timeout=5.0)
        try:
            return dict(con.execute("SELECT key, value FROM meta"))
        finally:
            con.close()
    except sqlite3.Error:
        return {}


def folder_indexes(folder: str | Path) -> list[IndexRef]:
    """Every index of `folder` itself (not of its ancestors): the first one, then the others by name."""
    folder = Path(folder).expanduser().resolve()
    return _indexes_at(folder, _home_names())


def choose(refs: list[IndexRef], model: str | None = None) -> IndexRef | None:
    """The index of `model` among a folder's (one not yet given a model can take it), or with no
    model the default: the only one, else the lite one, else the first made."""
    if model is not None:
        return next((r for r in refs if r.model == model), None) or next((r for r in refs if r.model is None), None)
    if len(refs) <= 1:
        return refs[0] if refs else None
    return next((r for r in refs if r.model == DEFAULT_MODEL), None) or min(refs, key=lambda r: r.created)


def index_dir_for(folder: str | Path, model: str | None) -> Path:
    """The index of `folder` for `model` (a normalised spec; None: the default), or where a new one goes:
    the first index's place when free, else a sibling named after the model."""
    folder = Path(folder).expanduser().resolve()
    hit = choose(folder_indexes(folder), model)
    if hit is not None:
        return hit.dir
    base = default_index_dir(folder)
    if not catalog_exists(base):
        return base
    stem = f"{base.name}{SEP}{model_slug(model or DEFAULT_MODEL)}"
    d, n = base.parent / stem, 2
    while catalog_exists(d):  # taken by another folder whose name shares the prefix
        d, n = base.parent / f"{stem}-{n}", n + 1
    return d


def find_index(folder: str | Path, model: str | None = None) -> tuple[Path, Path, str | None] | None:
    """(index dir, indexed root, sub-folder) of `folder`'s index of `model` (None: the default one),
    or of its nearest ancestor's (like rclip: searching inside an indexed tree uses that tree's index)."""
    folder = Path(folder).expanduser().resolve()
    names = _home_names()
    for root in (folder, *folder.parents):
        hit = choose(_indexes_at(root, names), model)
        if hit is not None:
            rel = folder.relative_to(root).as_posix()
            return hit.dir, root, (None if rel == "." else rel)
    return None


def _home_names() -> list[str]:
    try:
        return sorted(os.listdir(index_home()))
    except OSError:
        return []


def _indexes_at(folder: Path, names: list[str]) -> list[IndexRef]:
    base = default_index_dir(folder)
    prefix = base.name + SEP
    out = []
    for name in [n for n in names if n == base.name] + [n for n in names if n.startswith(prefix)]:
        d = base.parent / name
        if not catalog_exists(d):
            continue
        meta = read_meta(d)
        if name != base.name and meta.get("folder") not in (None, str(folder)):
            continue  # another folder's first index, whose name happens to start like this
        model = meta.get("model") if meta else "?"  # unreadable: matches no model, never claimed
        out.append(IndexRef(d, model, float(meta.get("created_at") or 0)))
    return out


def normalize_spec(spec: str) -> str:
    """The spec an index records (`specs.normalize`: auto resolved now, folders absolute). A name
    the grammar does not know is a model handed in by code (a test's toy loader): kept as it is."""
    from cliplab.errors import ModelSpecError
    from cliplab.models.specs import normalize

    try:
        return normalize(spec)
    except ModelSpecError:
        return spec.strip()
