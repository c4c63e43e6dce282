"""Micro-batching: concurrent requests' encodes gathered into one model call.

A model call on a CPU costs about the same for 1 input as for a dozen (fixed per-call overheads,
BLAS on bigger matrices), so under load one call for everything that arrived within a few
milliseconds beats one call per request. Each request thread submits its item and waits on a
`Future`; one worker thread per batcher takes the first item, waits at most `max_wait_s` for more
(up to `max_batch`), runs the batch, and hands each caller its row.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np

_STOP = object()


class MicroBatcher:
    def __init__(
        self,
        fn: Callable[[Sequence[Any]], np.ndarray],
        max_batch: int = 32,
        max_wait_s: float = 0.004,
        name: str = "batcher",
    ):
        self.fn, self.max_batch, self.max_wait_s, self.name = fn, max_batch, max_wait_s, name
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0  # how many model calls, and how many items they carried (for tests/stats)
        self.items = 0

    def submit(self, item: Any) -> Future:
        """Queue one input; the future gets its output row (or the exception of its batch)."""
        self._ensure_started()
        fut: Future = Future()
        self._queue.put((item, fut))
        return fut

    def __call__(self, item: Any, timeout: float | None = 120.0) -> np.ndarray:
        return self.submit(item).result(timeout)

    def _ensure_started(self) -> None:
        with self._lock:  # started on first use, so an app built but never served starts no thread
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def close(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._queue.put(_STOP)
                self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            deadline = time.monotonic() + self.max_wait_s
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            self._process(batch)
            if stop:
                return

    def _process(self, batch: list) -> None:
        items = [item for item, _ in batch]
        try:
            out = self.fn(items)
        except Exception as e:  # every waiter learns of the failure; the worker lives on
            for _, fut in batch:
                fut.set_exception(e)
            return
        self.batches += 1
        self.items += len(batch)
        for (_, fut), row in zip(batch, out):
            fut.set_result(row)
