"""Models: what a spec names (specs), the interface (core), inference backends (backends), models
trained by cliplab (trained) and intermediate-layer features (features); `loader` builds them.

Names are imported lazily: `cliplab.models.specs` must stay importable without numpy or torch."""

from importlib import import_module

_EXPORTS = {
    "Encoder": "cliplab.models.core.base",
    "l2_normalize": "cliplab.models.core.base",
    "load_encoder": "cliplab.models.loader",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'cliplab.models' has no attribute {name!r}")
