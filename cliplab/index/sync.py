"""Incremental sync of a folder into a catalog: scan, diff by (size, mtime), embed only what changed.

Order of work, each step committed on its own so a kill at any moment loses at most one batch:
1. scan the folder (stat only) and diff against the catalog; nothing to do → return (no model);
2. one transaction: drop deleted files; files whose content hash matches an indexed file
   (renames, copies, `touch`) take its vector without the model;
3. the rest is embedded batch by batch; each batch (vectors and failures) is one transaction.
A file is only marked indexed together with its vector, so a re-run after a crash simply finds the
uncommitted files still new or changed.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from cliplab.data.digest import file_digest
from cliplab.data.files import broken_link_reason, walk_images
from cliplab.data.formats import index_reason, is_video
from cliplab.errors import CliplabError
from cliplab.index.catalog import Catalog
from cliplab.models.core.base import Encoder

Progress = Callable[[int, int], None]  # (files done, files to do), called after each commit


@dataclass
class SyncStats:
    scanned: int = 0  # image files found
    unchanged: int = 0
    new: int = 0
    changed: int = 0
    deleted: int = 0
    reused: int = 0  # took the vector of identical content (rename, copy, touch): no model
    embedded: int = 0  # went through the model
    frames: int = 0  # video frames embedded (each video also counts once in `embedded`)
    failed: int = 0  # could not be used (reasons in the catalog)
    seconds: float = 0.0
    model_loaded: bool = False
    failures: list = field(default_factory=list)  # (path, reason) of this run
    metadata: int = 0  # photo metadata rows read (new files; every file of an index made before schema 2)

    def as_dict(self) -> dict:
        return asdict(self)


def scan(root: Path, under: str | None = None) -> dict[str, tuple[int, int]]:
    """relative path → (size, mtime_ns) of every image file below root[/under].

    Hidden folders (.git, .cliplab, .thumbnails, …) are skipped; symlinked files and folders are
    followed (each real folder once, so link loops end). A broken symlink is listed with size and
    mtime -1, so it is recorded as failed (with the reason) and retried once its target exists.
    """
    return {f.rel: (f.size, f.mtime_ns) for f in walk_images(root, under)}


def file_hash(path: str | Path) -> str | None:
    try:
        return file_digest(path)  # blake2b-128: what the catalog's hash column holds
    except OSError:
        return None


class IndexInterrupted(KeyboardInterrupt):
    """Ctrl-C during an update: every batch committed before it is kept; the message says how much."""

    def __init__(self, kept: int | None, total: int):
        self.kept, self.total = kept, total
        done = f"{kept:,} of {total:,}" if kept is not None else f"the committed part of {total:,}"
        super().__init__(f"interrupted: {done} new or changed images indexed and kept; run again to finish")


def _kept(catalog: Catalog, p: Plan, under: str | None) -> int | None:
    """How many of the plan's files the catalog now holds as they are on disk (the committed ones)."""
    try:
        known = catalog.file_stats(under)
    except Exception:  # noqa: BLE001 a connection left mid-statement: say less rather than fail
        return None
    return sum(1 for f in p.todo if known.get(f) == p.found[f])


@dataclass
class Plan:
    todo: list[str]  # new + changed, sorted
    deleted: list[str]
    found: dict[str, tuple[int, int]]
    stats: SyncStats


def plan(catalog: Catalog, root: Path, under: str | None = None) -> Plan:
    found = scan(root, under)
    known = catalog.file_stats(under)
    new = [p for p in found if p not in known]
    changed = [p for p, sm in found.items() if known.get(p, sm) != sm]
    deleted = sorted(p for p in known if p not in found)
    stats = SyncStats(
        scanned=len(found),
        new=len(new),
        changed=len(changed),
        deleted=len(deleted),
        unchanged=len(found) - len(new) - len(changed),
    )
    return Plan(sorted(new + changed), deleted, found, stats)


def sync(
    catalog: Catalog,
    root: Path,
    get_encoder: Callable[[], Encoder],
    under: str | None = None,
    batch_size: int | None = None,
    progress: bool | Progress = False,
    workers: int | None = None,
    before: Callable[[Plan], None] | None = None,
) -> SyncStats:
    """Bring the catalog in line with the folder. `get_encoder` is only called if images need the model.

    `before(plan)` runs once there is work, before anything is written: it may raise to refuse
    (e.g. too many files for an implicit index) or announce what is about to happen.
    """
    t0 = time.perf_counter()
    if not root.is_dir():  # unmounted or deleted: an empty scan must not drop every indexed file
        raise CliplabError(f"folder {root} does not exist (moved, deleted or not mounted); the index is left as it is")
    p = plan(catalog, root, under)
    stats = p.stats
    if not p.todo and not p.deleted:
        stats.seconds = time.perf_counter() - t0
        return stats
    if before is not None:
        before(p)
    try:
        return _apply(catalog, root, p, get_encoder, under, batch_size, progress, workers, t0)
    except KeyboardInterrupt:
        if not p.todo:
            raise
        raise IndexInterrupted(_kept(catalog, p, under), len(p.todo)) from None


def _apply(catalog, root, p: Plan, get_encoder, under, batch_size, progress, workers, t0) -> SyncStats:
    """The writes of `sync`: deletions, reuse and broken links in one transaction, then one
    transaction per embedded batch."""
    stats = p.stats
    # broken symlinks and RAW files (videos without PyAV): failed with the reason, no model
    broken = {f: broken_link_reason(root / f) if p.found[f][0] < 0 else index_reason(f) for f in p.todo}
    broken = {f: why for f, why in broken.items() if why}
    hashable = [f for f in p.todo if f not in broken and not is_video(f)]  # never hash a video: it can be GBs
    pool = ThreadPoolExecutor(max_workers=4)  # hashing is I/O + C code: threads overlap well
    try:
        hashes = dict(zip(hashable, pool.map(file_hash, [root / f for f in hashable])))
    finally:
        pool.shutdown(cancel_futures=True)  # on Ctrl-C, don't hash the rest first
    hashes.update(dict.fromkeys(f for f in p.todo if f not in hashes))
    known = catalog.file_states(under)
    reuse = catalog.blobs_by_hash(hashes.values())
    touched = {f for f in p.todo if f in known and known[f].status == "ok" and hashes[f] and known[f].hash == hashes[f]}
    copied = [f for f in p.todo if f not in touched and hashes[f] in reuse]
    with catalog.write() as w:
        w.delete(p.deleted)
        w.touch([(f, *p.found[f]) for f in sorted(touched)])
        w.put_ok([(f, *p.found[f], hashes[f]) for f in copied], [reuse[hashes[f]] for f in copied])
        w.put_failed([(f, *p.found[f], None, why) for f, why in sorted(broken.items())])
    stats.reused = len(touched) + len(copied)
    stats.failed = len(broken)
    stats.failures = sorted(broken.items())
    skip = touched | set(copied) | set(broken)
    rest = [f for f in p.todo if f not in skip and not is_video(f)]
    videos = [f for f in p.todo if f not in skip and is_video(f)]
    done = stats.reused + stats.failed
    if callable(progress):
        progress(done, len(p.todo))
    if not rest and not videos:
        stats.seconds = time.perf_counter() - t0
        return stats

    from cliplab.pipeline import (
        iter_image_batches,  # torch: only when something needs the model
    )

    encoder = get_encoder()
    stats.model_loaded = True
    if getattr(encoder, "needs_fit", False):
        raise CliplabError(
            f"model {encoder.name!r} is fitted on the data it embeds, so it cannot build an "
            "incremental index: use lite, conse, preclip (its shipped fit) or a CLIP checkpoint"
        )
    batches = iter_image_batches(
        encoder,
        [str(root / f) for f in rest],
        batch_size=batch_size,
        workers=workers,
        progress=progress is True,
        description="indexing",
    )
    for b in batches:
        ok = [rest[i] for i in b.indices]
        bad = [(rest[i], reason) for i, _, reason in b.failures]
        vecs = encoder.finish_images(b.vectors) if len(ok) else b.vectors
        with catalog.write() as w:
            if catalog.dim is None:
                w.set_meta(dim=str(int(vecs.shape[1])))
            w.put_ok([(f, *p.found[f], hashes[f]) for f in ok], vecs)
            w.put_failed([(f, *p.found[f], hashes[f], r) for f, r in bad])
        stats.embedded += len(ok)
        stats.failed += len(bad)
        stats.failures += bad
        done += len(ok) + len(bad)
        if callable(progress):
            progress(done, len(p.todo))
    if videos:
        _videos(catalog, root, p, videos, encoder, progress, done)
    stats.seconds = time.perf_counter() - t0
    return stats


def _sampled(path: Path):
    """A video's sampled frames (data/video.py), or the reason it cannot be used."""
    from cliplab.data.video import sample
    from cliplab.errors import ImageError

    try:
        return sample(path)
    except ImageError as e:
        return str(e)
    except Exception as e:  # noqa: BLE001 a decoder bug in one file must not end the run
        return f"video: unreadable ({type(e).__name__}: {e})"


def _videos(catalog, root: Path, p: Plan, videos: list[str], encoder, progress, done: int) -> None:
    """Each video: its frames sampled (the next one's decoding overlaps this one's embedding), embedded,
    and written with its poster in one transaction (catalog `put_video`); or recorded failed with the reason."""
    from cliplab.data.video import nearest, poster_time
    from cliplab.progress import progress_bar

    stats = p.stats
    with (
        ThreadPoolExecutor(max_workers=1) as pool,
        progress_bar(len(videos), "indexing videos", progress is True) as advance,
    ):
        ahead = [pool.submit(_sampled, root / f) for f in videos[:2]]
        for n, f in enumerate(videos):
            got = ahead.pop(0).result()
            if n + 2 < len(videos):
                ahead.append(pool.submit(_sampled, root / videos[n + 2]))
            if not isinstance(got, str):  # embedded before the write lock is taken
                vecs = encoder.encode_images([fr.image for fr in got.frames])
                times = [fr.t for fr in got.frames]
            with catalog.write() as w:
                if isinstance(got, str):
                    w.put_failed([(f, *p.found[f], None, got)])
                    stats.failed += 1
                    stats.failures.append((f, got))
                else:
                    if catalog.dim is None:
                        w.set_meta(dim=str(int(vecs.shape[1])))
                    poster = nearest(times, poster_time(got.info.duration))  # the frame its thumbnail shows
                    w.put_video((f, *p.found[f], None), vecs[poster], times, vecs)
                    stats.embedded += 1
                    stats.frames += len(times)
            advance(1)
            done += 1
            if callable(progress):
                progress(done, len(p.todo))
