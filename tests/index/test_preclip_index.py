"""`preclip` indexes a folder through its shipped reference fit, incrementally; a copy fitted on the
data (`.unfitted()`, what eval and analyze use) is still refused."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cliplab.errors import CliplabError
from cliplab.index import Collection
from tests.index.conftest import no_model
from tests.index.helpers import copy_images


@pytest.fixture(scope="module")
def preclip():
    from cliplab.models import load_encoder

    return load_encoder("preclip")


def test_index_and_search_incrementally(preclip, shared, tmp_path):
    folder = tmp_path / "pics"
    copy_images(shared, folder, 5)
    col = Collection(folder, model="preclip", loader=lambda spec: preclip)
    s = col.update()
    assert (s.new, s.embedded, s.failed) == (5, 5, 0)
    hits = col.search("a photo of a dog.", k=3)
    assert len(hits) == 3 and all(-1 <= h.score <= 1 for h in hits)
    info = col.catalog.meta("model_info")
    assert preclip.reference.sha256[:12] in info  # the index pins the reference fit
    ids, before = col.catalog.vectors()
    # one more photo: only it is embedded, the old vectors stay as they were
    src = sorted((shared / "data" / "flickr8k-1k" / "images").glob("*.jpg"))[0]
    shutil.copy(src, folder / "new.jpg")
    again = Collection(folder, model="preclip", loader=lambda spec: preclip)
    s2 = again.update()
    assert (s2.new, s2.embedded, s2.unchanged) == (1, 1, 5)
    _, after = again.catalog.vectors(ids=ids)
    np.testing.assert_array_equal(after, before)
    # the new photo's vector is what embedding it alone gives: no fit on the data at hand
    new_id = again.catalog.id_of("new.jpg")
    _, new_vec = again.catalog.vectors(ids=[new_id])
    from cliplab.pipeline import embed_images

    alone = embed_images(preclip, [str(folder / "new.jpg")]).vectors
    np.testing.assert_allclose(new_vec, alone, atol=2e-3)  # the index stores float16
    assert Collection(folder, model="preclip", loader=lambda spec: no_model()).update().embedded == 0


def test_a_copy_fitted_on_the_data_is_refused(preclip, tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    with pytest.raises(CliplabError, match="fitted on the data it embeds"):
        Collection(folder, encoder=preclip.unfitted())
    with pytest.raises(CliplabError, match="fitted on the data it embeds"):
        Collection(folder, model="preclip:16")
