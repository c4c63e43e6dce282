"""`Collection`: a folder of images with an incremental, crash-safe index, searchable by text or image.

Where indexes live: see `locate.py` (a user data dir keyed by folder, one index per model;
`index_dir` overrides). Paths inside are relative, so an index can move with its folder. An index
folder holds catalog.db (+ WAL: the truth, see catalog.py), ann-<epoch>-<gen>.faiss (a cache, see
cache.py) and `lock` (one writer, see lock.py).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from cliplab.errors import CliplabError, IndexMismatchError, IndexNotFoundError
from cliplab.index.cache import AnnCache
from cliplab.index.catalog import CATALOG_NAME, Catalog, catalog_exists
from cliplab.index.duplicates import EXACT_FILTER_MAX, duplicate_groups
from cliplab.index.locate import DEFAULT_MODEL, find_index, folder_indexes, index_dir_for, normalize_spec
from cliplab.index.lock import writer_lock
from cliplab.index.migrate import FRAME_ID_BASE
from cliplab.index.photos import fill as fill_photo_meta
from cliplab.index.results import DuplicateGroup, Hit
from cliplab.index.sync import Plan, SyncStats, plan, sync
from cliplab.models.core.base import Encoder, l2_normalize
from cliplab.models.specs import identity_differences, vector_identity
from cliplab.models.specs import parse as parse_spec

# A filter keeping up to this many vectors is searched exactly from the catalog; a larger one through
# FAISS with an IDSelector (reading 12k float16 vectors from SQLite per query cost 1.2 s at 100k photos).
SEARCH_EXACT_MAX = 4096


class Collection:
    """An indexed image folder. Opening is cheap: the model loads only when images or a text query
    need it, and the FAISS index only when a search does."""

    def __init__(
        self,
        folder: str | Path | None = None,
        model: str | None = None,
        index_dir: str | Path | None = None,
        encoder: Encoder | None = None,
        loader: Callable[[str], Encoder] | None = None,
        reindex: bool = False,
        scope: str | None = None,
        batch_size: int | None = None,
    ):
        if folder is None and index_dir is None:
            folder = "."
        if folder is not None and not Path(folder).expanduser().is_dir():
            raise CliplabError(f"no such folder: {folder}")
        wanted = _wanted(model, encoder)  # before anything is created: a refused model leaves no trace
        self.index_dir = Path(index_dir).expanduser().resolve() if index_dir else index_dir_for(folder, wanted)
        if folder is None and not catalog_exists(self.index_dir):
            raise IndexNotFoundError(f"no index in {self.index_dir} (no {CATALOG_NAME}); give the image folder")
        self.catalog = Catalog(self.index_dir)
        stored = self.catalog.meta("folder")
        if folder is None and stored is None:
            self.catalog.close()
            raise IndexNotFoundError(f"the index {self.index_dir} records no folder; give the image folder")
        self.folder = Path(folder).expanduser().resolve() if folder is not None else Path(stored)
        if stored != str(self.folder):
            with self.catalog.write(bump=False) as w:  # new index, or one moved with its folder
                w.set_meta(folder=str(self.folder))
        self.scope = scope.strip("/") if scope else None
        self.batch_size = batch_size
        self._encoder = encoder
        self._loader = loader
        self.ann = AnnCache(self.catalog, self.index_dir)
        self._writing = False
        self._allowed_cache: dict = {}  # (under, glob, filters, generation) → allowed ids (see _allowed)
        self.model = self._resolve_model(wanted, reindex)

    @classmethod
    def find(cls, folder: str | Path = ".", **kw) -> Collection:
        """The collection that covers `folder` with the model asked for (none: the default one, see
        locate.py): its own index, an indexed ancestor's (scoped to `folder`), or a new index."""
        if not Path(folder).expanduser().is_dir():
            raise CliplabError(f"no such folder: {folder}")
        hit = find_index(folder, _wanted(kw.get("model"), kw.get("encoder")))
        if hit is None:
            return cls(folder, **kw)
        index_dir, root, sub = hit
        return cls(root, index_dir=index_dir, scope=sub, **kw)

    @classmethod
    def every(cls, folder: str | Path = ".", **kw) -> list[Collection]:
        """One collection per model indexed for `folder` (or its nearest indexed ancestor, scoped),
        the default one first; [] when none is."""
        hit = find_index(folder)
        if hit is None:
            return []
        first, root, sub = hit
        dirs = [first] + [r.dir for r in folder_indexes(root) if r.dir != first]
        return [cls(root, index_dir=d, scope=sub, **kw) for d in dirs]

    # --- model ----------------------------------------------------------------------------------
    def _resolve_model(self, requested: str | None, reindex: bool) -> str:
        stored = self.catalog.meta("model")
        spec = requested or stored or DEFAULT_MODEL
        if reindex:
            with self._locked(wait=False), self.catalog.write() as w:
                w.clear()
                w.del_meta("dim", "model_info")
                w.set_meta(model=spec, epoch=os.urandom(6).hex())
            self.ann.drop()
        elif stored != spec:
            if stored is not None and any(self.catalog.counts().values()):  # only an explicit index_dir
                raise IndexMismatchError(
                    f"the index {self.index_dir} was built with model {stored!r} ({self.catalog.dim}-d); "
                    f"you asked for {spec!r}. Use --model {stored} (or no --model), --reindex to rebuild "
                    f"it with {spec}, or leave out --index: a folder keeps one index per model."
                )
            with self.catalog.write(bump=False) as w:  # a new (or empty) index takes the model asked for
                w.del_meta("dim", "model_info")
                w.set_meta(model=spec)
        return spec

    def encoder(self) -> Encoder:
        """The index's model, loaded on first use; its dimension must match the stored vectors."""
        if self._encoder is None:
            if self._loader is not None:
                self._encoder = self._loader(self.model)
            else:
                from cliplab.runtime import load_encoder

                self._encoder = load_encoder(self.model)
        enc = self._encoder
        dim = self.catalog.dim
        if dim is None:
            with self.catalog.write(bump=False) as w:
                w.set_meta(dim=str(enc.dim), model_info=_fingerprint(enc))
        elif dim != enc.dim:
            raise IndexMismatchError(
                f"model {self.model!r} gives {enc.dim}-d vectors but the index holds "
                f"{dim}-d ones: rebuild it with --reindex"
            )
        else:
            stored = self.catalog.meta("model_info")
            if stored and json.loads(stored) != _fingerprint(enc):
                changed = identity_differences(json.loads(stored), _fingerprint(enc))
                raise IndexMismatchError(
                    f"model {self.model!r} has changed since this index was built ({changed}), "
                    "so its vectors no longer match: rebuild the index with --reindex"
                )
        return enc

    # --- indexing -------------------------------------------------------------------------------
    def update(
        self,
        progress: bool | Callable[[int, int], None] = False,
        under: str | None = None,
        wait: bool = False,
        before: Callable[[Plan], None] | None = None,
        ocr: bool | None = None,
    ) -> SyncStats:
        """Embed new and changed images, drop deleted ones. No change → no model load, no writes.

        `progress`: True for a progress bar, or a callable(done, total) run after each commit.
        `before(plan)`: runs when there is work, before any write (may raise to refuse it).
        Raises IndexBusyError if another process is updating (unless `wait`).
        `ocr`: read the text in images from now on (True) or no longer (False), remembered by the
        index (index/ocr.py); None: as remembered.
        """
        from cliplab.index import ocr as text_in_images

        with self._locked(wait):
            if ocr is not None:
                text_in_images.remember(self.catalog, ocr)
            stats = sync(
                self.catalog, self.folder, self.encoder, self.scope_of(under), self.batch_size, progress, before=before
            )
            stats.metadata = fill_photo_meta(self.catalog, self.folder, bar=progress is True)
            if stats.new or stats.changed or stats.deleted:
                self.ann.get(save=True)
            on = text_in_images.enabled(self.catalog)
            read = text_in_images.fill(self.catalog, self.folder, bar=progress is True) if on else 0
            if stats.new or stats.changed or stats.deleted or stats.metadata or read:
                self.catalog.checkpoint()
        return stats

    def pending(self, under: str | None = None) -> dict[str, int]:
        """What `update` would do (a stat-only scan)."""
        s = plan(self.catalog, self.folder, self.scope_of(under)).stats
        return {"new": s.new, "changed": s.changed, "deleted": s.deleted}

    # --- search ---------------------------------------------------------------------------------
    def search(
        self, query: str, k: int = 10, threshold: float | None = None, under: str | None = None, glob: str | None = None
    ) -> list[Hit]:
        """Text → the k most similar images (cosine), best first."""
        if not str(query).strip():
            raise CliplabError("empty query: give some text (or search by --image)")
        if not self.catalog.count_vectors():
            return []
        vec = self.encoder().encode_texts([str(query)])[0]
        return self.search_vector(vec, k, threshold, under, glob)

    def search_image(
        self,
        image: str | Path,
        k: int = 10,
        threshold: float | None = None,
        under: str | None = None,
        glob: str | None = None,
    ) -> list[Hit]:
        """Image → the k most similar other images. An indexed, unchanged file reuses its stored vector."""
        if not self.catalog.count_vectors():
            return []
        fid, vec = self.image_vector(image)
        return self.search_vector(vec, k, threshold, under, glob, exclude=() if fid is None else (fid,))

    def image_vector(self, image: str | Path) -> tuple[int | None, np.ndarray]:
        """(its catalog id when indexed, its vector) of a query image: a file or an http(s) URL."""
        from cliplab.data.images import is_url, load_image  # load_image raises ImageError with the reason
        from cliplab.errors import ImageError

        if is_url(str(image)):
            fid, vec, path = None, None, str(image)
        else:
            path = Path(image).expanduser().absolute()
            path = path.parent.resolve() / path.name  # resolve folders, not a symlinked file itself
            fid, vec = self._stored_vector(path)
        if vec is None:
            try:
                img = load_image(path)
            except ImageError as e:
                raise ImageError(f"query image {image}: {e}") from None
            vec = self.encoder().encode_images([img])[0]
        return fid, vec

    def search_vector(
        self,
        vector: np.ndarray,
        k: int = 10,
        threshold: float | None = None,
        under: str | None = None,
        glob: str | None = None,
        exclude: Sequence[int] = (),
        filters=None,
    ) -> list[Hit]:
        """The k best images for `vector` among those below `under`, matching `glob` and passing
        `filters` (index/filters.py): the filters narrow the nearest-neighbour step itself."""
        if k < 1:
            raise CliplabError("top-k must be at least 1")
        q = l2_normalize(np.asarray(vector, np.float32).reshape(1, -1))
        under = self.scope_of(under)
        allowed = None
        if under or glob or (filters is not None and filters.active):
            allowed = self._allowed(under, glob, filters)
            if not len(allowed):
                return []
            if len(allowed) <= SEARCH_EXACT_MAX:
                return self._exact(q, allowed, k, threshold, exclude)
        ann = self.ann.get()
        if ann is None:
            return []
        want = k + len(exclude)
        while True:
            scores, ids = ann.search(q, want, allowed)
            hits = self._hits(scores[0], ids[0], k, threshold, exclude, q[0])
            # short because a stale cache still held dropped ids? ask for more (rare)
            full = bool((ids[0] >= 0).all()) and (threshold is None or scores[0][-1] >= threshold)
            if len(hits) >= k or want >= ann.ntotal:
                return hits
            if not full:  # the probed IVF lists held too few of the allowed ids: exact keeps "n when n match"
                return self._exact(q, allowed, k, threshold, exclude) if allowed is not None else hits
            want *= 2

    def _allowed(self, under, glob, filters) -> np.ndarray:
        """The ids a filtered search may return (a video's frames pass with it), kept for the catalog's
        generation: a server answers many queries with one filter bar (0.1 s of SQL each at 100k)."""
        key = (under, glob, filters, self.catalog.gen)
        cache = self._allowed_cache
        if key not in cache:
            if len(cache) >= 8:
                with contextlib.suppress(RuntimeError, StopIteration, KeyError):  # another thread got there
                    cache.pop(next(iter(cache)))
            cache[key] = self.catalog.ids_matching(under, glob, filters, frames=True)
        return cache[key]

    def _exact(self, q, allowed, k, threshold, exclude) -> list[Hit]:
        """Exact search over the allowed ids, straight from the catalog."""
        ids, vecs = self.catalog.vectors(ids=allowed)
        scores = vecs @ q[0]
        order = np.argsort(-scores, kind="stable")  # all: several may be frames of one video
        return self._hits(scores[order], ids[order], k, threshold, exclude, q[0])

    def _hits(self, scores, ids, k, threshold, exclude, query=None) -> list[Hit]:
        """One hit per file; the frames of a video count for it (index/frames.py)."""
        from cliplab.index.frames import as_hits

        return as_hits(self.catalog, self.folder, scores, ids, k, threshold, exclude, query)

    def _stored_vector(self, path: Path) -> tuple[int | None, np.ndarray | None]:
        """(file id, stored vector) of an indexed file; the vector only if the file is unchanged."""
        try:
            rel = path.relative_to(self.folder).as_posix()
        except ValueError:
            return None, None
        state = self.catalog.file_state(rel)
        fid = self.catalog.id_of(rel)
        if state is None or fid is None:
            return None, None
        st = path.stat() if path.exists() else None
        if st is None or (st.st_size, st.st_mtime_ns) != (state.size, state.mtime_ns):
            return fid, None  # changed since indexing: embed it afresh, still skip its old self
        return fid, self.catalog.vectors(ids=[fid])[1][0]

    # --- duplicates -----------------------------------------------------------------------------
    def duplicates(
        self,
        threshold: float | None = None,
        under: str | None = None,
        glob: str | None = None,
        max_neighbours: int = 32,
        verify: bool | float | None = None,
        progress: bool = False,
    ) -> list[DuplicateGroup]:
        """Groups of near-duplicate images (connected components: A~B and B~C group A, B, C) by the
        model's rule (index.verify.duplicate_rule: calibrated candidates confirmed by GeM, or one
        cosine `threshold`). Exact up to EXACT_FILTER_MAX images, ANN neighbours above."""
        from cliplab.index.verify import GemVerifier, duplicate_rule

        rule = duplicate_rule(self.model, threshold, verify)
        ids, vecs = self.catalog.vectors(self.scope_of(under), glob)
        ids, vecs = ids[ids < FRAME_ID_BASE], vecs[ids < FRAME_ID_BASE]  # a video takes part by its poster
        if len(ids) < 2:
            return []
        ann = self.ann.get if len(ids) > EXACT_FILTER_MAX else None
        filtered = bool(under or glob or self.scope)
        confirm = None if rule.verify is None else GemVerifier(self.catalog.paths, self.folder, rule.verify, progress)
        groups = duplicate_groups(ids, vecs, rule.threshold, ann, filtered, max_neighbours, confirm)
        paths = self.catalog.paths(ids.tolist())
        out = [
            DuplicateGroup(sorted(str(self.folder / paths[i]) for i in members if i in paths), lo, hi)
            for members, lo, hi in groups
        ]
        return sorted((g for g in out if len(g.paths) >= 2), key=lambda g: (-len(g.paths), g.paths[0]))

    # --- status ---------------------------------------------------------------------------------
    def status(self, check: bool = False, max_failures: int = 50) -> dict:
        """Counts, failures with reasons, model, size on disk; `check` adds what an update would do."""
        from cliplab.index.frames import counts as video_counts
        from cliplab.index.listing import collection_status
        from cliplab.index.ocr import coverage as ocr_coverage

        status = {**collection_status(self, check, max_failures), **video_counts(self.catalog, self.scope)}
        return {**status, "ocr": ocr_coverage(self.catalog)}

    @property
    def count(self) -> int:
        """Vectors in the index (what a search can return)."""
        return self.catalog.count_vectors()

    def describe(self) -> dict:
        out = {"folder": str(self.folder), "index_dir": str(self.index_dir), "model": self.model, "scope": self.scope}
        if self._encoder is not None:  # the runtime that embedded/searched in this process
            from cliplab.runtime import runtime_of

            out.update(runtime_of(self._encoder))
        return out

    def close(self) -> None:
        self.catalog.close()

    def discard_if_empty(self) -> bool:
        """Remove this index if it holds no file at all (one opened by a command that then refused
        to index); only the files an index consists of are deleted, never anything else in its folder."""
        if any(self.catalog.counts().values()):
            return False
        from cliplab.index.listing import delete_index_files

        self.close()
        delete_index_files(self.index_dir)
        return True

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def under_path(self, under: str | None) -> Path:
        """The folder a `--under` names (relative to the collection's scope)."""
        scope = self.scope_of(under)
        return self.folder / scope if scope else self.folder

    def count_under(self, under: str | None = None, glob: str | None = None, filters=None) -> int:
        """How many indexed images a search with these filters can return."""
        return len(self.catalog.ids_matching(self.scope_of(under), glob, filters))

    # --- helpers --------------------------------------------------------------------------------
    def scope_of(self, under: str | None) -> str | None:
        """Sub-folders are relative to the collection's scope (the folder a user is in)."""
        if under is None:
            return self.scope
        under = under.strip()
        while under.startswith("./"):  # `--under ./2024` as typed in a shell
            under = under[2:]
        under = under.strip("/")
        if under in ("", "."):
            return self.scope
        return f"{self.scope}/{under}" if self.scope else under

    @contextlib.contextmanager
    def _locked(self, wait: bool) -> Iterator[None]:
        """One writer per index (see lock.py); re-entrant within this object."""
        if self._writing:
            yield
            return
        with writer_lock(self.index_dir, wait):
            self._writing = True
            try:
                yield
            finally:
                self._writing = False


def _fingerprint(enc: Encoder) -> dict:
    """The identity an index stores for its vectors: any runtime can search them (`specs`)."""
    return vector_identity(enc.describe())


def _wanted(model: str | None, encoder: Encoder | None) -> str | None:
    """The model spec an index must record (None: whatever the default index holds). Fitted models
    are refused here, before any index is created for them (preclip itself indexes through its
    shipped reference fit; preclip:N and an `.unfitted()` copy have none)."""
    spec = encoder.name if encoder is not None else (normalize_spec(model) if model else None)
    if encoder is None and (spec or "").split(":")[0] == "preclip":
        fitted = parse_spec(spec).needs_fit
    else:
        fitted = getattr(encoder, "needs_fit", False)
    if fitted:
        raise CliplabError(
            f"model {spec!r} is fitted on the data it embeds, so it cannot build an "
            "incremental index: use lite, conse, preclip (its shipped fit) or a CLIP checkpoint"
        )
    return spec
