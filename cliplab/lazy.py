"""Lazy package exports: a package names what it offers, and the module behind a name is imported
on first use, so `import cliplab` (and every CLI start) does not pay for torch, numpy or pandas."""

from __future__ import annotations

from importlib import import_module
from typing import Callable


def lazy_getattr(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """The module-level `__getattr__` of `package`: name → getattr(import_module(exports[name]), name)."""

    def __getattr__(name: str):
        if name in exports:
            return getattr(import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
