"""Global descriptors from CNN feature maps (N, C, H, W) → (N, C), each L2-normalised.

- `gap`: global average pooling.
- `mac`: global max pooling (Tolias et al. 2016).
- `gem`: generalised mean, (mean x^p)^(1/p), p=3 (Radenović et al. 2018); p=1 is gap, p→∞ is mac.
- `rmac`: regional MAC (Tolias et al. 2016): MAC over the standard multi-scale grid of square
  regions (`rmac_regions`), each region vector L2-normalised, summed, L2-normalised.
- `pca_whiten`: optional PCA(-whitening) learned on a set of descriptors, then L2 again.
Inputs may be numpy arrays or torch tensors; outputs have the input's type.
"""

from __future__ import annotations

import math

import numpy as np
import torch

EPS = 1e-6


def _to_torch(x):
    if isinstance(x, torch.Tensor):
        return x.float(), False
    return torch.as_tensor(np.asarray(x, np.float32)), True


def _check(x: torch.Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"pooling expects (N, C, H, W) feature maps, got shape {tuple(x.shape)}")


def _l2(v: torch.Tensor) -> torch.Tensor:
    return v / (v.norm(dim=-1, keepdim=True) + EPS)


def _out(v: torch.Tensor, as_numpy: bool):
    return v.numpy() if as_numpy else v


def gap(x):
    t, np_in = _to_torch(x)
    _check(t)
    return _out(_l2(t.mean(dim=(2, 3))), np_in)


def mac(x):
    t, np_in = _to_torch(x)
    _check(t)
    return _out(_l2(t.amax(dim=(2, 3))), np_in)


def gem(x, p: float = 3.0):
    """Activations are clamped at EPS first (as in the reference code) so x^(1/p) is defined."""
    t, np_in = _to_torch(x)
    _check(t)
    v = t.clamp(min=EPS).pow(p).mean(dim=(2, 3)).pow(1.0 / p)
    return _out(_l2(v), np_in)


def rmac_regions(h: int, w: int, levels: int = 3, overlap: float = 0.4) -> list[tuple[int, int, int, int]]:
    """Square regions (top, left, height, width) of R-MAC's grid on an h × w map.

    Port of the reference grid (Tolias et al.'s rmac_regions, as in cnnimageretrieval-pytorch):
    at level l the side is floor(2·min(h, w)/(l+1)); l regions along the short side and l + d along
    the long one, d chosen so neighbouring regions overlap by about `overlap`.
    """
    side = min(h, w)
    steps = np.arange(2, 8)
    b = (max(h, w) - side) / (steps - 1)
    idx = int(np.argmin(np.abs((side**2 - side * b) / side**2 - overlap)))
    wd = idx + 1 if h < w else 0
    hd = idx + 1 if h > w else 0
    regions = []
    for level in range(1, levels + 1):
        wl = math.floor(2 * side / (level + 1))
        if wl == 0:
            continue
        for top in _starts(level + hd, h, wl):
            for left in _starts(level + wd, w, wl):
                regions.append((top, left, wl, wl))
    return regions


def _starts(n: int, length: int, wl: int) -> list[int]:
    """n region starts spread evenly over `length` (the reference code's centre arithmetic)."""
    wl2 = math.floor(wl / 2 - 1)
    step = 0 if n == 1 else (length - wl) / (n - 1)
    return [int(math.floor(wl2 + i * step) - wl2) for i in range(n)]


def rmac(x, levels: int = 3):
    t, np_in = _to_torch(x)
    _check(t)
    total = torch.zeros(t.shape[:2])
    for top, left, hh, ww in rmac_regions(t.shape[2], t.shape[3], levels):
        total += _l2(t[:, :, top : top + hh, left : left + ww].amax(dim=(2, 3)))
    return _out(_l2(total), np_in)


POOLINGS = {"gap": gap, "avg": gap, "mac": mac, "max": mac, "gem": gem, "rmac": rmac}


def pool(x, method: str = "gem", **kwargs):
    """Pool by name: gap (avg), mac (max), gem, rmac."""
    try:
        fn = POOLINGS[method.lower()]
    except KeyError:
        raise ValueError(f"unknown pooling {method!r} (have: gap, mac, gem, rmac)") from None
    return fn(x, **kwargs)


def fit_pca_whitening(descriptors: np.ndarray, dim: int | None = None, whiten: bool = True, seed: int = 0):
    """A scikit-learn PCA (whitening by default) learned on `descriptors` (N, C)."""
    from sklearn.decomposition import PCA

    d = np.asarray(descriptors, np.float64)
    k = min(dim or d.shape[1], d.shape[0], d.shape[1])
    return PCA(n_components=k, whiten=whiten, svd_solver="full", random_state=seed).fit(d)


def pca_whiten(descriptors: np.ndarray, pca=None, dim: int | None = None, whiten: bool = True) -> np.ndarray:
    """Project with `pca` (fitted on `descriptors` itself when None), then L2-normalise."""
    pca = pca if pca is not None else fit_pca_whitening(descriptors, dim, whiten)
    z = pca.transform(np.asarray(descriptors, np.float64))
    return (z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), EPS)).astype(np.float32)
