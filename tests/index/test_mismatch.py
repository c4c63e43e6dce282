"""A folder keeps one index per model; an explicit index queried with another model, or a model that
changed under the same name → a clear error (or a rebuild with reindex)."""

from __future__ import annotations

import pytest

from cliplab.errors import CliplabError
from cliplab.index import Collection, IndexMismatchError
from tests.index.conftest import no_model
from tests.index.helpers import TinyEncoder


class OtherTiny(TinyEncoder):
    name = "other-tiny"


class WideTiny(TinyEncoder):
    dim = 96

    def encode_texts(self, texts):
        import numpy as np

        return np.ones((len(texts), 96), np.float32) / np.sqrt(96)


def test_other_model_gets_its_own_index_but_an_explicit_index_keeps_its_model(photos, tiny, tmp_path):
    first = Collection(photos, encoder=tiny)
    first.update()
    other = Collection(photos, encoder=OtherTiny())  # no error: a second index beside the first
    assert other.index_dir != first.index_dir and other.status()["indexed"] == 0
    assert Collection(photos, encoder=tiny).index_dir == first.index_dir  # and the first is still found
    Collection(photos, index_dir=tmp_path / "one", encoder=tiny).update()
    msg = r"built with model 'tiny-test' \(48-d\).*asked for 'conse'.*--reindex"
    with pytest.raises(IndexMismatchError, match=msg):  # caught before any model loads
        Collection(photos, index_dir=tmp_path / "one", model="conse", loader=lambda spec: no_model())


def test_same_name_other_dim_is_caught_on_use(photos, tiny):
    Collection(photos, encoder=tiny).update()
    with pytest.raises(IndexMismatchError, match="96-d"):
        Collection(photos, encoder=WideTiny()).search("x")


class RetrainedTiny(TinyEncoder):
    def describe(self):
        return {**super().describe(), "weights": "v2"}


def test_same_name_other_weights_is_caught(photos, tiny):
    Collection(photos, encoder=tiny).update()
    with pytest.raises(IndexMismatchError, match="has changed since this index was built"):
        Collection(photos, encoder=RetrainedTiny()).search("x")


def test_reindex_rebuilds_only_that_models_index(photos, tiny):
    Collection(photos, encoder=tiny).update()
    Collection(photos, encoder=OtherTiny()).update()
    col = Collection(photos, encoder=OtherTiny(), reindex=True)
    assert col.status()["indexed"] == 0
    s = col.update()
    assert s.embedded == 30 and col.status()["model"] == "other-tiny"
    assert len(col.search("x", k=5)) == 5
    kept = Collection(photos, encoder=tiny, loader=lambda spec: no_model())
    assert kept.status()["indexed"] == 30 and kept.update().embedded == 0


def test_fitted_models_are_refused(photos):
    # preclip itself indexes through its shipped reference fit; preclip:16 has none
    with pytest.raises(CliplabError, match="fitted"):
        Collection(photos, model="preclip:16")
