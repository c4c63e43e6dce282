"""What a running server holds: its collections (sources), the shared encoders and its settings.

Built once, before the app starts (`open_state`), and handed to `create_app(state)`; handlers get
it through `Depends`. Nothing here is a module-level global, so tests build as many as they like.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cliplab.errors import CliplabError
from cliplab.models.core.base import Encoder
from cliplab.serve.budget import PixelBudget
from cliplab.serve.classes import ClassCache
from cliplab.serve.encoders import EncoderPool, SharedEncoder
from cliplab.serve.errors import ApiError, NotFound
from cliplab.serve.sources import FolderSource, ShardsSource, Source

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Settings:
    token: str | None = None  # Bearer token for every API route (None: open)
    max_upload_mb: float = 20.0  # uploads and base64 images above → 413
    max_pixels: int | None = None  # None: the CLI's guard (CLIPLAB_MAX_PIXELS, 64 MP)
    allow_urls: bool = False  # fetch `image_url`s (off: the server never touches the network)
    fetch_timeout_s: float = 20.0  # an `image_url`'s whole transfer, redirects included
    cors_origins: list[str] = field(default_factory=list)  # [] → same-origin only (no CORS headers)
    bind_host: str | None = None  # the address listened on: a Host header naming it is accepted
    allowed_hosts: list[str] = field(default_factory=list)  # more accepted Host names (--allowed-host)
    decode_budget_pixels: int | None = None  # pixels decoded at once, all requests (None: 2 × max_pixels)
    decode_wait_s: float = 10.0  # a decode over budget waits this long, then 503 + Retry-After
    thumb_size: int = 256
    dedup_threshold: float = 0.98  # cosine at or above which two results count as the same image
    reports: list[Path] = field(default_factory=list)  # --reports: report folders, or folders of them

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


@dataclass
class ServerState:
    sources: dict[str, Source]
    encoders: EncoderPool
    settings: Settings = field(default_factory=Settings)
    classes: ClassCache = field(default_factory=ClassCache, repr=False)  # /api/classify's, bounded
    pixels: PixelBudget = field(init=False, repr=False)
    _checked: set = field(default_factory=set, repr=False)
    _siblings: dict = field(default_factory=dict, repr=False)  # (collection, model) → Source, opened on demand
    _siblings_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self):
        budget = self.settings.decode_budget_pixels or 2 * self.max_pixels
        self.pixels = PixelBudget(budget, self.settings.decode_wait_s)

    @property
    def max_pixels(self) -> int:
        from cliplab.settings import settings

        return self.settings.max_pixels or settings().max_pixels

    def source(self, name: str | None) -> Source:
        if name is not None and not isinstance(name, str):
            raise ApiError("a collection name (collection / indice_name) must be a string")
        if not name:
            if not self.sources:
                raise NotFound("this server has no collections")
            return next(iter(self.sources.values()))
        src = self.sources.get(name)
        if src is None:
            raise NotFound(f"unknown collection {name!r} (known: {', '.join(self.sources) or 'none'})")
        return src

    def models(self, src: Source) -> list[str]:
        """The models whose index of this collection's folder exists: its own first, then the others
        (`cliplab index DIR --model a --model b` keeps one per model). An embeddings index has one."""
        if src.kind != "folder":
            return [src.model]
        from cliplab.index.locate import folder_indexes

        others = [r.model for r in folder_indexes(src.collection.folder) if r.model and r.model != src.model]
        return [src.model, *dict.fromkeys(others)]

    def model_source(self, src: Source, model: str | None) -> Source:
        """The same collection seen through another model's index (opened read-only on first use and
        kept; `serve` brings only its own model's index up to date). NotFound when that model has
        no index of the folder: the server never starts embedding a folder on a request."""
        if not model or model == src.model:
            return src
        if not isinstance(model, str):
            raise ApiError("a model name must be a string")
        from cliplab.index.locate import folder_indexes, normalize_spec

        key = (src.name, model)
        with self._siblings_lock:
            if key in self._siblings:
                return self._siblings[key]
            if src.kind == "folder":
                wanted = {model, normalize_spec(model)}
                ref = next((r for r in folder_indexes(src.collection.folder) if r.model in wanted), None)
            else:
                ref = None
            if ref is None:
                known = ", ".join(self.models(src))
                raise NotFound(f"collection {src.name!r} has no {model!r} index (its models: {known})")
            from cliplab.index import Collection

            col = src.collection
            other = Collection(col.folder, index_dir=ref.dir, scope=col.scope, loader=self.encoders.load)
            self._siblings[key] = self._siblings[(src.name, ref.model)] = FolderSource(other, src.name)
            return self._siblings[key]

    def encoder_for(self, src: Source) -> SharedEncoder:
        """The collection's model, loaded once and shared, and checked on first use against what
        the index was built with (dimension, fingerprint)."""
        shared = self.encoders.get(src.model)
        if (src.name, src.model) not in self._checked:
            src.check_encoder()  # IndexMismatchError when the model's vectors don't fit the index
            self._checked.add((src.name, src.model))
        return shared

    def warm(self) -> None:
        """Load every model now (and run it once), so the first request doesn't pay for it."""
        for src in self.sources.values():
            self.encoder_for(src).encode_text("warm-up")

    def close(self) -> None:
        self.encoders.close()
        for src in [*self.sources.values(), *dict.fromkeys(self._siblings.values())]:
            close = getattr(src, "close", None)
            if close:
                close()


def unique_names(folders: Sequence[Path], names: Sequence[str] = ()) -> list[str]:
    """Folder names, made unique with -2, -3 …; `names` (the --name options) override in order."""
    out: list[str] = []
    for i, folder in enumerate(folders):
        base = names[i] if i < len(names) else (re.sub(r"[^\w.-]+", "_", Path(folder).name) or "root")
        name, n = base, 2
        while name in out:
            name, n = f"{base}-{n}", n + 1
        out.append(name)
    return out


def open_state(
    folders: Sequence[str | Path] = (),
    index_dirs: Sequence[str | Path] = (),
    names: Sequence[str] = (),
    model: str | None = None,
    loader: Callable[[str], Encoder] | None = None,
    update: bool = True,
    progress: bool | Callable = False,
    settings: Settings | None = None,
    on_update: Callable[[str, object], None] | None = None,
) -> ServerState:
    """Open (and with `update`, first bring up to date) each folder's collection and each existing
    index; `loader` builds encoders (default: `cliplab.runtime.load_encoder`)."""
    from cliplab.index import Collection
    from cliplab.index.shards import ShardsIndex, is_shards_index

    if not folders and not index_dirs:
        raise CliplabError("nothing to serve: give one or more image folders, or --index DIR")
    pool = EncoderPool(loader)
    cols = []
    for folder in folders:
        col = Collection(folder, model=model, loader=pool.load)
        if update:
            stats = col.update(progress=progress)
            if on_update:
                on_update(str(col.folder), stats)
        cols.append(col)
    for d in index_dirs:
        if is_shards_index(d):  # built from embedding shards (clip-retrieval's layout)
            cols.append(ShardsIndex(d, loader=pool.load))
        else:
            cols.append(Collection(None, index_dir=d, model=model, loader=pool.load))
    if len(names) > len(cols):
        raise CliplabError(f"{len(names)} --name options for {len(cols)} collections")
    labels = unique_names([getattr(c, "folder", None) or c.index_dir for c in cols], list(names))
    sources = {
        n: (FolderSource(c, n) if isinstance(c, Collection) else ShardsSource(c, n)) for n, c in zip(labels, cols)
    }
    return ServerState(sources, pool, settings or Settings())
