"""Encoders: the interface, the spec registry and every backend."""

from cliplab.models.base import Encoder, l2_normalize
from cliplab.models.registry import load_encoder

__all__ = ["Encoder", "l2_normalize", "load_encoder"]
