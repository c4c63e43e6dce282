"""The server's text-query cache: a repeated text never reaches the model; two models never share an entry."""

from __future__ import annotations

import numpy as np
import pytest

from cliplab.serve.encoders import EncoderPool, TextCache
from tests.helpers import ToyEncoder
from tests.serve.conftest import toy_loader


class CountingEncoder(ToyEncoder):
    """ToyEncoder that records every text the model is asked for; `salt` makes another model."""

    def __init__(self, salt: str = ""):
        self.salt, self.seen = salt, []

    def encode_texts(self, texts):
        self.seen += list(texts)
        return super().encode_texts([self.salt + t for t in texts])


@pytest.fixture
def pool():
    encoders = {"a": CountingEncoder(), "b": CountingEncoder("other model: ")}
    p = EncoderPool(lambda spec: encoders[spec])
    yield p, encoders
    p.close()


def test_a_repeated_text_does_not_reach_the_encoder(pool):
    p, enc = pool
    first = p.get("a").encode_text("a dog")
    again = p.get("a").encode_text("a dog")
    assert enc["a"].seen == ["a dog"] and np.array_equal(first, again)
    # the collections' path (`Collection(loader=pool.load)`, `cliplab.search`) shares the cache
    rows = p.load("a").encode_texts(["a dog", "a cat", "a cat"])
    assert enc["a"].seen == ["a dog", "a cat"]  # a cat once, even twice in one call
    assert np.array_equal(rows[0], first) and np.array_equal(rows[1], rows[2])
    assert np.allclose(rows, ToyEncoder().encode_texts(["a dog", "a cat", "a cat"]))
    first[:] = 0  # a caller scaling its vector in place leaves the cached one alone
    assert np.any(p.get("a").encode_text("a dog")) and p.cache.hits == 3


def test_two_models_never_share_an_entry(pool):
    p, enc = pool
    va, vb = p.get("a").encode_text("a dog"), p.get("b").encode_text("a dog")
    assert enc["a"].seen == ["a dog"] and enc["b"].seen == ["a dog"]
    assert not np.allclose(va, vb)
    assert np.array_equal(p.load("b").encode_texts(["a dog"])[0], vb) and len(p.cache) == 2


def test_least_recently_used_goes_first():
    c = TextCache(2)
    one, two, three = (np.full(4, i, np.float32) for i in (1, 2, 3))
    c.put(("m", "one"), one)
    c.put(("m", "two"), two)
    assert c.get(("m", "one")) is not None  # "one" used last: "two" is the oldest now
    c.put(("m", "three"), three)
    assert c.get(("m", "two")) is None and len(c) == 2
    assert np.array_equal(c.get(("m", "one")), one) and np.array_equal(c.get(("m", "three")), three)
    off = TextCache(0)
    off.put(("m", "one"), one)
    assert off.get(("m", "one")) is None


def test_the_server_embeds_a_repeated_query_once(pics):
    from fastapi.testclient import TestClient

    from cliplab.serve import Settings, create_app, open_state

    enc = CountingEncoder()
    state = open_state([pics], model="toy", loader=lambda spec: enc, settings=Settings(allowed_hosts=["testserver"]))
    try:
        with TestClient(create_app(state)) as client:
            enc.seen.clear()  # the warm-up text
            client.post("/knn-service", json={"text": "a red square", "num_images": 2})  # the plain text path
            assert enc.seen == ["a red square"]
            params = {"q": "a red square", "n": 9, "type": "jpg", "mode": "semantic"}  # the library's search
            found = client.get("/api/search", params=params).json()["results"]
            assert enc.seen == ["a red square"] and {x["path"] for x in found} == {"red.jpg", "green.jpg", "grey.jpg"}
            client.get("/api/search", params={**params, "q": '"a red square" - "blue"'})
            assert enc.seen == ["a red square", "blue"]
    finally:
        state.close()


def test_encoders_behave_as_loaded_for_collections():
    p = EncoderPool(toy_loader)
    served = p.load("toy")
    assert served.dim == 4 and served.name == "toy" and served.describe() == ToyEncoder().describe()
    assert served.encode_images([]).shape == (0, 4)  # everything but texts is the loaded encoder's
    p.close()


def test_the_cache_size_is_a_setting(monkeypatch):
    from cliplab.errors import SettingsError

    monkeypatch.setenv("CLIPLAB_TEXT_CACHE", "0")  # off: every text reaches the model
    enc = CountingEncoder()
    p = EncoderPool(lambda spec: enc)
    p.get("a").encode_text("a dog")
    p.get("a").encode_text("a dog")
    assert enc.seen == ["a dog", "a dog"] and len(p.cache) == 0
    p.close()
    monkeypatch.setenv("CLIPLAB_TEXT_CACHE", "lots")
    with pytest.raises(SettingsError, match="CLIPLAB_TEXT_CACHE"):
        EncoderPool(toy_loader)
