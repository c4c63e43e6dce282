"""Models: what a spec names (specs), the interface (core), inference backends (backends), models
trained by cliplab (trained) and intermediate-layer features (features); `loader` builds them.

Names are imported lazily: `cliplab.models.specs` must stay importable without numpy or torch."""

from cliplab.lazy import lazy_getattr

_EXPORTS = {
    "Encoder": "cliplab.models.core.base",
    "l2_normalize": "cliplab.models.core.base",
    "load_encoder": "cliplab.models.loader",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr("cliplab.models", _EXPORTS)
