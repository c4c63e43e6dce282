"""Compare and Explore on real photos indexed with the models the issue names: `lite`, `conse`,
`preclip` (its shipped PCA fit) and a cliplab checkpoint (the format `cliplab train` writes), one
index per model of the same folder, served together (torch towers, loaded once per session)."""

from __future__ import annotations

import pytest

from tests.serve.browser_helpers import photo_folder


@pytest.fixture(scope="module")
def four(shared, tmp_path_factory, lite_encoder, conse_encoder):
    """(TestClient, folder, {model name: encoder}) with the folder indexed by all four models."""
    import os

    from fastapi.testclient import TestClient

    from cliplab.index import Collection
    from cliplab.models import load_encoder
    from cliplab.models.trained.checkpoint import build_encoder, save_checkpoint
    from cliplab.models.trained.heads import head_config
    from cliplab.serve import Settings, create_app, open_state

    root = tmp_path_factory.mktemp("four")
    folder = photo_folder(shared, root / "Photos", flickr=6)  # 6 Flickr8k + 8 ImageNet photos
    config = {
        "image_tower": {"spec": "efficientnet-lite0", "train_last": 0},
        "text_tower": {"spec": "minilm", "train_last": 0},
        "image_side": {"inputs": ["pooled"], "conse_skip": False, "conse_top_t": 10,
                       "head": head_config("mlp", 1280, 32, hidden=64)},
        "text_side": {"head": head_config("linear", 384, 32)},
    }  # fmt: skip
    ckpt = root / "my-model"
    save_checkpoint(build_encoder(config, seed=3), ckpt)
    encoders = {"lite": lite_encoder, "conse": conse_encoder, "preclip": load_encoder("preclip")}
    encoders[str(ckpt)] = load_encoder(str(ckpt))
    old = os.environ.get("CLIPLAB_INDEX_HOME")
    os.environ["CLIPLAB_INDEX_HOME"] = str(root / "index-home")
    try:
        for name, enc in encoders.items():
            with Collection(folder, model=name, loader=lambda spec, e=enc: e) as col:
                assert col.update().embedded == 14
        state = open_state(
            [folder], model="lite", loader=encoders.__getitem__, settings=Settings(allowed_hosts=["testserver"])
        )
        with TestClient(create_app(state)) as client:
            yield client, folder, encoders
        state.close()
    finally:
        os.environ.pop("CLIPLAB_INDEX_HOME") if old is None else os.environ.update(CLIPLAB_INDEX_HOME=old)


@pytest.fixture(autouse=True)
def index_home(four, monkeypatch):
    """The folder's own index home (conftest's per-test home would hide the other models' indexes)."""
    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(four[1].parent / "index-home"))


def test_one_query_four_models(four):
    client, folder, encoders = four
    (col,) = client.get("/api/collections").json()
    assert col["models"][0] == "lite" and sorted(col["models"]) == sorted(encoders)
    r = client.post("/api/compare", json={"q": "a dog on the grass", "models": list(encoders), "n": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [m["model"] for m in body["models"]] == list(encoders)
    served = {p: i for i, p in ((row["id"], row["path"]) for m in body["models"] for row in m["results"])}
    for m in body["models"]:
        assert len(m["results"]) == 5 and m["missing"] == 0
        assert [row["rank"] for row in m["results"]] == [1, 2, 3, 4, 5]
        scores = [row["score"] for row in m["results"]]
        assert scores == sorted(scores, reverse=True)
    # every row speaks the served (lite) index's ids: the same photo has one id in every column
    lite = client.app.state.cliplab.source(None).collection.catalog
    assert all(lite.id_of(p) == i for p, i in served.items())
    pairs = body["agreement"]["overlap"]
    assert len(pairs) == 6 and all(0 <= v <= 1 for v in pairs.values())
    # the scores are each model's own: lite's top hit scores as lite computes it
    top = body["models"][0]["results"][0]
    from PIL import Image

    want = (
        encoders["lite"].encode_texts(["a dog on the grass"])[0]
        @ encoders["lite"].encode_images([Image.open(folder / top["path"])])[0]
    )
    assert abs(top["score"] - float(want)) < 2e-3  # stored vectors are float16


def test_the_pre_clip_baseline_has_a_map_and_named_clusters(four):
    client, _, _ = four
    jobs = None
    r = client.get("/api/clusters?model=preclip&method=pca")
    if r.status_code == 202:
        jobs = client.app.state.explore_jobs
        assert jobs.wait(120)
        r = client.get("/api/clusters?model=preclip&method=pca")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "preclip" and sum(c["size"] for c in body["clusters"]) == 14
    assert all(len(c["names"]) == 3 for c in body["clusters"])
