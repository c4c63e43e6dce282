"""A served folder seen through each model that indexed it (`index DIR --model a --model b`)."""

from __future__ import annotations

import pytest

from tests.serve.conftest import toy_loader


@pytest.fixture
def two_models(pics):
    from fastapi.testclient import TestClient

    from cliplab.index import Collection
    from cliplab.serve import Settings, create_app, open_state

    with Collection(pics, model="toy2", loader=toy_loader) as col:
        col.update()
    state = open_state([pics], model="toy", loader=toy_loader, settings=Settings(allowed_hosts=["testserver"]))
    with TestClient(create_app(state)) as client:
        yield client, state
    state.close()


def test_collections_list_every_model_of_the_folder(two_models):
    client, _ = two_models
    (col,) = client.get("/api/collections").json()
    assert col["model"] == "toy" and col["models"] == ["toy", "toy2"]


def test_model_source_opens_the_other_index_once(two_models):
    from cliplab.errors import CliplabError

    _, state = two_models
    src = state.source(None)
    other = state.model_source(src, "toy2")
    assert other.model == "toy2" and other.name == src.name and other is state.model_source(src, "toy2")
    assert state.model_source(src, "toy") is src and state.model_source(src, None) is src
    assert other.info()["images"] == src.info()["images"] == 5
    with pytest.raises(CliplabError, match="no 'lite' index .*its models: toy, toy2"):
        state.model_source(src, "lite")
