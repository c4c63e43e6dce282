"""The map library: k by silhouette, names from a vocabulary, the cache with the index, incremental
placement and the 5 % recompute rule (synthetic vectors and the toy encoder; PCA except one UMAP test)."""

from __future__ import annotations

import numpy as np
import pytest

from cliplab.analysis import explore
from cliplab.analysis.map_views import describe, members, parse_region
from cliplab.errors import CliplabError
from tests.helpers import ToyEncoder, make_image

WORDS = ["north", "east", "south", "west"]


def blobs(k: int = 4, per: int = 40, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, blob of each): k tight groups around random directions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    vecs = np.concatenate([c + 0.12 * rng.normal(size=(per, dim)) for c in centres]).astype(np.float32)
    return vecs, np.repeat(np.arange(k), per)


class WordEncoder(ToyEncoder):
    """Its text vector of 'a photo of a {word}.' is the word's blob centre (WORDS order)."""

    dim = 16

    def __init__(self, centres):
        self.centres = centres

    def encode_texts(self, texts):
        return np.stack([self.centres[WORDS.index(t.split()[-1].rstrip("."))] for t in texts]).astype(np.float32)


def test_k_is_chosen_by_silhouette_and_clusters_are_named():
    vecs, truth = blobs()
    centres = np.stack([vecs[truth == b].mean(axis=0) for b in range(4)])
    m = explore.compute(np.arange(len(vecs)) + 100, vecs, "pca", WordEncoder(centres), WORDS)
    assert m.k == 4 and m.method == "pca" and max(m.info["silhouette"], key=m.info["silhouette"].get) == 4
    assert "silhouette" in m.rule and "k = 2…8" in m.rule  # min(24, √(160/2)) = 8
    for c in range(4):  # each cluster is one blob, named after it
        (blob,) = set(truth[m.cluster == c].tolist())
        assert m.names[c][0][0] == WORDS[blob] and m.names[c][0][1] > 0.99 and len(m.names[c]) == 3
    assert m.xy.shape == (160, 2) and np.abs(m.xy).max() == pytest.approx(1.0, abs=1e-5)


def test_too_few_photos_make_one_group_and_the_rule_says_so():
    m = explore.compute(np.array([1, 2]), np.eye(2, 4, dtype=np.float32), "pca")
    assert m.k == 1 and "too few" in m.rule and m.cluster.tolist() == [0, 0]


def test_members_and_describe():
    vecs, _ = blobs(k=3, per=10)
    m = explore.compute(np.arange(30), vecs, "pca")
    c0 = members(m, cluster=0)
    assert set(m.cluster[c0].tolist()) == {0} and np.all(np.diff(m.closeness[c0]) <= 1e-6)
    assert len(members(m, region="-1,-1,1,1")) == 30 and len(members(m, region="5,5,6,6")) == 0
    about = describe(m)
    assert sum(c["size"] for c in about["clusters"]) == 30 and about["summary"]["dates"] is None
    assert about["clusters"][0]["representatives"] == m.ids[c0[:8]].tolist()
    assert len(about["clusters"][0]["hull"]) >= 2
    with pytest.raises(CliplabError, match="four numbers"):
        parse_region("1,2,x,4")
    with pytest.raises(CliplabError, match="clusters 0…2"):
        members(m, cluster=3)


# --- a collection's map, cached with its index --------------------------------------------------


COLOURS = [(230, 20, 20), (20, 220, 20), (20, 20, 230)]


@pytest.fixture
def col(tmp_path, monkeypatch):
    """40 photos in three colours, indexed with the toy encoder."""
    from cliplab.index import Collection

    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "home"))
    folder = tmp_path / "pics"
    for i in range(40):
        r, g, b = COLOURS[i % 3]
        make_image(folder / f"{i:02d}.png", size=(16, 16), color=(r, g + i % 5, b))
    c = Collection(folder, model="toy", loader=lambda spec: ToyEncoder())
    c.update()
    yield c
    c.close()


def _add(col, names, colour):
    for n in names:
        make_image(col.folder / n, size=(16, 16), color=colour)
    col.update()


def test_dates_are_the_photos_own_never_a_file_time(tmp_path, monkeypatch):
    """EXIF dates give the clusters' and the folder's date range; a photo without one (its date is
    the file's mtime, which says when it was copied) counts in no range."""
    from cliplab.index import Collection
    from tests.index.helpers import make_dated_folder

    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "home"))
    folder = make_dated_folder(tmp_path / "dated", n=12)  # 2017–2020
    make_image(folder / "copied-today.png", size=(16, 16), color=(9, 9, 9))
    with Collection(folder, model="toy", loader=lambda spec: ToyEncoder()) as c:
        c.update()
        about = describe(explore.get(c, "pca"), c.catalog)
    assert about["summary"]["dates"] == {"from": "2017-01-15", "to": "2020-12-15"}
    assert about["summary"]["text"].endswith("taken 2017-01 … 2020-12")
    spans = [c["dates"] for c in about["clusters"] if c["dates"]]
    assert spans and all("2017" <= d["from"] <= d["to"] <= "2020-12-31" for d in spans)


def test_cached_with_the_index_and_reused(col, monkeypatch):
    m = explore.get(col, "pca")
    assert m.k == 3 and len(m.ids) == 40 and (col.index_dir / "map" / "pca.npz").is_file()
    assert (col.index_dir / "map" / "pca.json").is_file()
    monkeypatch.setattr(explore, "compute", lambda *a, **k: pytest.fail("recomputed a fresh map"))
    again = explore.get(col, "pca")
    assert again.gen == m.gen and np.array_equal(again.xy, m.xy) and again.names == m.names


def test_a_few_new_photos_are_placed_near_their_neighbours(col, monkeypatch):
    m = explore.get(col, "pca")
    monkeypatch.setattr(explore, "compute", lambda *a, **k: pytest.fail("recomputed for one photo"))
    _add(col, ["zz-green.png"], (20, 221, 20))  # 1 of 40: under 5 %
    assert explore.status(col, "pca")[0] == "update"
    up = explore.get(col, "pca")
    new = int(col.catalog.id_of("zz-green.png"))
    i = int(np.flatnonzero(up.ids == new)[0])
    greens = [int(np.flatnonzero(up.ids == col.catalog.id_of(f"{j:02d}.png"))[0]) for j in range(1, 40, 3)]
    assert up.cluster[i] == up.cluster[greens[0]] and len(up.ids) == 41 and up.drift == 1
    assert np.linalg.norm(up.xy[i] - up.xy[greens].mean(axis=0)) < 0.05
    assert up.gen == col.catalog.gen and explore.status(col, "pca")[0] == "fresh"
    (col.folder / "00.png").unlink()  # removed: dropped (2 changes of 40: still under 5 %)
    col.update()
    assert col.catalog.id_of("00.png") is None and len(explore.get(col, "pca").ids) == 40
    assert np.array_equal(m.centers, explore.load(col, "pca").centers)  # the clusters stay


def test_past_five_percent_the_map_is_computed_again(col):
    m = explore.get(col, "pca")
    _add(col, ["a.png", "b.png", "c.png"], (20, 20, 231))  # 3 of 40: 7.5 %
    state, old = explore.status(col, "pca")
    assert state == "recompute" and old.gen == m.gen
    stale = explore.stale_view(col, old)
    assert stale.stale and len(stale.ids) == 40
    new = explore.get(col, "pca")
    assert new.base_count == 43 and new.drift == 0 and len(new.ids) == 43 and not new.stale


def test_unknown_method_and_empty_index(col, tmp_path):
    from cliplab.index import Collection

    with pytest.raises(CliplabError, match="unknown map method"):
        explore.get(col, "tsne")
    (tmp_path / "empty").mkdir()
    with Collection(tmp_path / "empty", model="toy", loader=lambda s: ToyEncoder()) as empty:
        with pytest.raises(CliplabError, match="nothing to map"):
            explore.get(empty, "pca")


def test_umap_map_of_a_small_set():
    vecs, truth = blobs(k=3, per=15, seed=1)
    m = explore.compute(np.arange(45), vecs, "auto")  # 45 ≥ UMAP_MIN: auto is UMAP
    assert m.method == "umap" and m.xy.shape == (45, 2) and np.isfinite(m.xy).all()
    centres = np.stack([m.xy[truth == b].mean(axis=0) for b in range(3)])
    spread = max(np.linalg.norm(m.xy[truth == b] - centres[b], axis=1).max() for b in range(3))
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in range(3) for b in range(a + 1, 3)]
    assert min(gaps) > spread  # the three groups stay apart on the map
