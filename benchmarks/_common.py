"""Shared bits for benchmark scripts: locating the shared data, timing, markdown output."""

from __future__ import annotations

import os
import platform
import sys
import time
from contextlib import contextmanager

import torch

from cliplab.data.shared import shared_dir


def require_shared():
    root = shared_dir()
    if root is None:
        sys.exit("benchmark needs the shared data folder (../shared or $CLIPLAB_SHARED)")
    return root


@contextmanager
def timer(store: dict, key: str):
    t = time.perf_counter()
    yield
    store[key] = time.perf_counter() - t


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), Python {platform.python_version()}"
    )
