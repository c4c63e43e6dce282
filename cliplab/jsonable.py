"""`json.dumps(..., default=jsonable)`: numpy scalars and arrays become plain Python values."""

from __future__ import annotations


def jsonable(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
