"""Pooling functions against hand-computed values on tiny feature maps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cliplab.models.features.pooling import gap, gem, mac, pca_whiten, pool, rmac, rmac_regions

# one image, two channels, 2 × 2 map
X = np.array([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [1.0, 0.0]]]], np.float32)


def unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def test_gap_mac_gem_hand_computed():
    assert gap(X)[0] == pytest.approx(unit([2.5, 0.5]), abs=1e-6)
    assert mac(X)[0] == pytest.approx(unit([4.0, 1.0]), abs=1e-6)
    g0 = ((1 + 8 + 27 + 64) / 4) ** (1 / 3)
    g1 = ((1e-18 + 1 + 1 + 1e-18) / 4) ** (1 / 3)  # zeros are clamped to eps = 1e-6 before ^3
    assert gem(X)[0] == pytest.approx(unit([g0, g1]), abs=1e-6)
    assert gem(X, p=1.0)[0] == pytest.approx(gap(X)[0], abs=1e-5)


def test_rmac_hand_computed_two_levels():
    # level 1 on a 2 × 2 map: the whole map; level 2: four 1 × 1 regions (the pixels)
    assert rmac_regions(2, 2, levels=2) == [(0, 0, 2, 2), (0, 0, 1, 1), (0, 1, 1, 1), (1, 0, 1, 1), (1, 1, 1, 1)]
    pixels = [[1, 0], [2, 1], [3, 1], [4, 0]]
    expect = unit([4, 1]) + sum(unit(p) for p in pixels)
    assert rmac(X, levels=2)[0] == pytest.approx(unit(expect), abs=1e-6)


def test_rmac_grid_7x7_is_the_standard_14_regions():
    regs = rmac_regions(7, 7, levels=3)
    assert regs[0] == (0, 0, 7, 7)
    assert regs[1:5] == [(0, 0, 4, 4), (0, 3, 4, 4), (3, 0, 4, 4), (3, 3, 4, 4)]
    assert regs[5:] == [(t, l, 3, 3) for t in (0, 2, 4) for l in (0, 2, 4)]


def _reference_regions(h, w, levels):
    """cnnimageretrieval-pytorch's rmac() grid (without its extra global MAC term)."""
    ovr, steps = 0.4, torch.Tensor([2, 3, 4, 5, 6, 7])
    side = min(w, h)
    b = (max(h, w) - side) / (steps - 1)
    _, idx = torch.min(torch.abs(((side**2 - side * b) / side**2) - ovr), 0)
    wd = idx.item() + 1 if h < w else 0
    hd = idx.item() + 1 if h > w else 0
    out = []
    for l in range(1, levels + 1):
        wl = math.floor(2 * side / (l + 1))
        wl2 = math.floor(wl / 2 - 1)
        b = 0 if l + wd == 1 else (w - wl) / (l + wd - 1)
        cen_w = torch.floor(wl2 + torch.Tensor(range(l - 1 + wd + 1)) * b) - wl2
        b = 0 if l + hd == 1 else (h - wl) / (l + hd - 1)
        cen_h = torch.floor(wl2 + torch.Tensor(range(l - 1 + hd + 1)) * b) - wl2
        out += [(int(i), int(j), wl, wl) for i in cen_h.tolist() for j in cen_w.tolist() if wl]
    return out


@pytest.mark.parametrize("h,w", [(7, 7), (7, 10), (10, 7), (5, 12), (14, 9), (3, 4)])
def test_rmac_grid_matches_reference_code(h, w):
    regs = rmac_regions(h, w, levels=3)
    assert regs == _reference_regions(h, w, 3)
    assert all(0 <= t and t + s <= h and 0 <= left and left + s <= w for t, left, s, _ in regs)


def test_outputs_are_unit_norm_and_keep_the_input_type():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 8, 7, 9)).astype(np.float32)
    for name in ("gap", "mac", "gem", "rmac"):
        v = pool(x, name)
        assert isinstance(v, np.ndarray) and v.shape == (3, 8)
        assert np.linalg.norm(v, axis=1) == pytest.approx(1.0, abs=1e-5)
        t = pool(torch.from_numpy(x), name)
        assert isinstance(t, torch.Tensor) and np.allclose(t.numpy(), v, atol=1e-6)
    with pytest.raises(ValueError):
        pool(x, "median")
    with pytest.raises(ValueError):
        gap(x[0])


def test_pca_whitening_decorrelates():
    rng = np.random.default_rng(0)
    d = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    from cliplab.models.features.pooling import fit_pca_whitening

    pca = fit_pca_whitening(d, dim=4)
    z = pca.transform(d)
    assert np.cov(z.T) == pytest.approx(np.eye(4), abs=1e-6)
    out = pca_whiten(d, pca)
    assert out.shape == (200, 4) and np.linalg.norm(out, axis=1) == pytest.approx(1.0, abs=1e-5)
