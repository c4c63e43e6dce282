"""Class embeddings for `/api/classify`, kept in a small in-memory LRU.

Requests choose labels and templates freely, so the library's on-disk cache (one file per label
set, never evicted) is not used here: this cache holds at most `max_bytes` and drops the least
recently used entry first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

MAX_TEMPLATE_CHARS = 200
MAX_LABEL_CHARS = 200
MAX_PROMPTS = 4000  # labels × templates per request: ~10 s of text encoding on 2 CPU cores (lite)


class ClassCache:
    def __init__(self, max_bytes: int = 64 * 2**20):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._items)

    def get(self, encoder, labels: list[str], templates: list[str]) -> np.ndarray:
        from cliplab.zeroshot import class_embeddings

        key = (id(encoder), tuple(labels), tuple(templates))
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        emb = class_embeddings(encoder, labels, templates, cache=False)
        with self._lock:
            if key not in self._items and emb.nbytes <= self.max_bytes:
                self._items[key] = emb
                self._size += emb.nbytes
                while self._size > self.max_bytes:
                    _, old = self._items.popitem(last=False)
                    self._size -= old.nbytes
        return emb
