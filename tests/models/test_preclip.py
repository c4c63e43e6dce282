import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from cliplab.models import specs
from cliplab.models.backends.preclip import Projection, fit_pca, project
from tools.preclip_reference import vocabulary


def test_project_pads_to_dim_when_few_samples():
    x = np.random.default_rng(0).normal(size=(5, 20)).astype(np.float32)
    z = project(fit_pca(x, 8), x, 8)
    assert z.shape == (5, 8)
    assert np.allclose(z[:, 5:], 0)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1, atol=1e-5)


@pytest.fixture(scope="module")
def preclip():
    from cliplab.models import load_encoder

    return load_encoder("preclip:16")


def test_preclip_fits_each_modality_on_its_own_data(preclip, shared):
    from cliplab.pipeline import embed_images

    imgs = sorted((shared / "data" / "flickr8k-1k" / "images").glob("*.jpg"))[:20]
    res = embed_images(preclip, [str(p) for p in imgs])
    texts = [f"a photo number {i} of something" for i in range(30)]
    t = preclip.encode_texts(texts)
    assert res.vectors.shape == (20, 16) and t.shape == (30, 16)
    assert preclip.image_pca.n_components_ == 16 and preclip.text_pca.n_components_ == 16
    # Fitted once: encoding again gives the same vectors (the PCA is not refitted per call).
    np.testing.assert_allclose(preclip.encode_texts(texts[:3]), t[:3], atol=1e-5)


def test_unfitted_copy_refits_and_leaves_the_original_alone(preclip):
    texts = [f"caption number {i}" for i in range(20)]
    preclip.encode_texts(texts)
    fitted = preclip.text_pca
    fresh = preclip.unfitted()
    assert fresh.text_pca is None and fresh.image_pca is None
    assert preclip.text_pca is fitted and fresh.texts is preclip.texts  # towers shared, not reloaded
    fresh.encode_texts([f"other text {i}" for i in range(20)])
    assert fresh.text_pca is not fitted


# --- the shipped reference fit (tools/preclip_reference.py) -------------------------------------
REF_DIR = Path(specs.__file__).resolve().parent / "weights" / "preclip"


def test_the_reference_file_is_small_orthonormal_and_named_by_its_sha256():
    npz = REF_DIR / specs.PRECLIP_REFERENCE
    about = json.loads((REF_DIR / "reference.json").read_text())
    data = npz.read_bytes()
    assert len(data) < 1 << 20 and hashlib.sha256(data).hexdigest() == about["sha256"]
    assert about["image"]["count"] == 1000 and about["text"]["count"] == len(vocabulary())
    with np.load(npz) as z:
        shapes = {k: (z[k].shape, z[k].dtype) for k in z.files}
        assert shapes == {
            "image_mean": ((1280,), np.float32),
            "image_components": ((64, 1280), np.float32),
            "text_mean": ((384,), np.float32),
            "text_components": ((64, 384), np.float32),
        }
        for side in ("image", "text"):
            c = z[f"{side}_components"].astype(np.float64)
            np.testing.assert_allclose(c @ c.T, np.eye(64), atol=1e-4)


def test_the_tool_writes_the_same_bytes_twice(tmp_path, shared):
    """A small subset (8 photos, 8 names) through the script's own steps: same inputs, same bytes,
    and the arrays are the PCAs preclip fits on that data."""
    from tools.preclip_reference import fit, npz_bytes, photos, write

    paths, texts = photos(shared)[:8], vocabulary()[:8]
    arrays, facts = fit(paths, texts)
    assert arrays["image_components"].shape == (8, 1280) and facts["text"]["features"] == 384
    assert write(tmp_path, arrays, {"n": 8}) and not write(tmp_path, arrays, {"n": 8})  # unchanged: untouched
    again, _ = fit(paths, texts)
    assert npz_bytes(again) == (tmp_path / specs.PRECLIP_REFERENCE).read_bytes()
    about = json.loads((tmp_path / "reference.json").read_text())
    assert about["sha256"] == hashlib.sha256(npz_bytes(arrays)).hexdigest()


@pytest.fixture(scope="module")
def shipped():
    from cliplab.models import load_encoder

    return load_encoder("preclip")


def test_preclip_loads_the_reference_and_names_it(shipped):
    about = json.loads((REF_DIR / "reference.json").read_text())
    assert not shipped.needs_fit and shipped.reference.sha256 == about["sha256"]
    assert shipped.image_pca.n_components_ == 64 and shipped.text_pca.n_components_ == 64
    assert about["sha256"][:12] in shipped.describe()["pca_fitted_on"]
    assert specs.parse("preclip").needs_fit is False and specs.parse("preclip:16").needs_fit is True
    # the same texts give the same vectors alone or in a batch: nothing is fitted on them
    texts = ["a photo of a dog.", "a red car", "two people on a beach"]
    t = shipped.encode_texts(texts)
    np.testing.assert_allclose(shipped.encode_texts(texts[:1]), t[:1], atol=1e-5)
    assert shipped.text_pca is shipped.reference.text
    # its class embeddings may be cached (the description pins the fit); a data-fitted copy's never
    from cliplab.zeroshot import class_cache_key

    assert class_cache_key(shipped, ["dog", "cat"], ["{}"]) is not None
    assert class_cache_key(shipped.unfitted(), ["dog", "cat"], ["{}"]) is None


def test_unfitted_clears_the_reference_and_fits_on_the_data(shipped):
    """The seed's rule, value-checked: an unfitted copy's text vectors are exactly the PCA of these
    texts; the shipped encoder keeps its reference."""
    texts = [f"caption number {i} about a {w}" for i, w in enumerate(["dog", "cat", "car", "tree"] * 5)]
    fresh = shipped.unfitted()
    assert fresh.needs_fit and fresh.image_pca is None and fresh.text_pca is None
    assert fresh.describe()["pca_fitted_on"] == "the data being encoded"
    got = fresh.encode_texts(texts)
    raw = shipped.texts.encode(texts)
    np.testing.assert_allclose(got, project(fit_pca(raw, 64), raw, 64), atol=1e-5)
    assert fresh.needs_fit  # fitted on this data: still not a fit an index or a cache may keep
    assert not shipped.needs_fit and shipped.text_pca is shipped.reference.text
    assert np.abs(got - shipped.encode_texts(texts)).max() > 0.1  # another space than the reference


def test_projection_is_the_pca_transform():
    x = np.random.default_rng(1).normal(size=(40, 12)).astype(np.float32)
    pca = fit_pca(x, 5)
    np.testing.assert_allclose(Projection.of(pca).transform(x), pca.transform(x), atol=1e-5)
