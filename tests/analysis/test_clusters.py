"""Cluster contact sheets show each cluster's typical members (nearest the centroid)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from cliplab.analysis.clusters import contact_sheet, typical_members
from tests.helpers import make_image


def test_typical_members_are_nearest_the_centroid():
    v = np.array([[1, 0], [0.9, 0.1], [0, 1], [1, 0.05], [0.95, 0]], np.float64)  # row 2 is an outlier
    members = np.arange(5)
    picked = typical_members(v, members, 3)
    assert 2 not in picked and len(picked) == 3
    assert typical_members(v, members, 5)[-1] == 2  # the outlier comes last


def test_contact_sheet_shows_typical_not_first_by_name(tmp_path):
    # cluster of 3: "a" (first by name) is an odd one out; the sheet with 2 slots must show b and c
    colours = {"a.png": (0, 0, 255), "b.png": (255, 0, 0), "c.png": (250, 5, 5)}
    paths = [str(make_image(tmp_path / n, size=(20, 20), color=c)) for n, c in colours.items()]
    vectors = np.array([[0, 0, 1], [1, 0, 0], [0.98, 0.02, 0]], np.float64)
    out = contact_sheet(
        paths, [0, 0, 0], ["x", "x", "x"], tmp_path / "sheet.png", per_cluster=2, thumb=20, vectors=vectors
    )
    sheet = np.asarray(Image.open(out).convert("RGB")).astype(int)
    tiles = sheet[4:24, 190 + 4 :]  # the row's thumbnails, after the label column
    blue = (tiles[..., 2] > 200) & (tiles[..., 0] < 50)
    red = (tiles[..., 0] > 200) & (tiles[..., 2] < 50)
    assert red.sum() >= 2 * 20 * 20 * 0.9 and blue.sum() == 0
