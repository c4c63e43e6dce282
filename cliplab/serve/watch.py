"""`cliplab serve --watch`: index new and changed images while serving (watchfiles).

The watcher updates through its own `Collection` objects — like a `cliplab index` run in another
process — so it never touches the FAISS index a search is reading; the serving collections pick up
its commits by generation on their next query.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from cliplab.data.formats import LISTED_EXTENSIONS
from cliplab.errors import CliplabError
from cliplab.serve.state import ServerState

log = logging.getLogger("cliplab.serve")


class Watcher:
    def __init__(
        self, state: ServerState, on_update: Callable[[str, object], None] | None = None, debounce_ms: int = 500
    ):
        self.state, self.on_update, self.debounce_ms = state, on_update, debounce_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._writers: dict[Path, object] = {}
        for src in state.sources.values():
            col = getattr(src, "collection", None)
            if col is not None and Path(col.folder).is_dir():
                self._writers[Path(col.folder)] = col

    def start(self) -> None:
        if self._writers:
            self._thread = threading.Thread(target=self._run, name="cliplab-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        from watchfiles import watch

        from cliplab.index import Collection

        writers = {
            folder: Collection(folder, index_dir=col.index_dir, model=col.model, loader=self.state.encoders.load)
            for folder, col in self._writers.items()
        }
        try:
            for changes in watch(*writers, stop_event=self._stop, debounce=self.debounce_ms, watch_filter=_relevant):
                touched = {f for _, p in changes for f in writers if Path(p).is_relative_to(f)}
                for folder in touched:
                    self.update(writers[folder])
        finally:
            for col in writers.values():
                col.close()

    def update(self, col) -> None:
        try:
            stats = col.update(wait=True)
        except CliplabError as e:  # e.g. the model no longer fits the index: log it, keep serving
            log.warning("watch: could not update %s: %s", col.folder, e)
            return
        if self.on_update:
            self.on_update(str(col.folder), stats)


def _relevant(change, path: str) -> bool:
    """Pictures (what a folder scan lists: RAW and video too), and folders: a file written into a
    brand-new folder can land before the folder is watched, so the folder's own event must trigger
    the (stat-only, cheap) scan."""
    suffix = Path(path).suffix.lower()
    return suffix in LISTED_EXTENSIONS or not suffix or Path(path).is_dir()
