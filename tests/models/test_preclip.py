import numpy as np
import pytest

from cliplab.models.backends.preclip import fit_pca, project


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
