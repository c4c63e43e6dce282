"""Serve tests: a small folder of coloured images, indexed with the toy encoder (milliseconds), and
a TestClient on the app. The toy encoder's image vector is the mean colour (+ a bias), so which
image an image/embedding query finds first is known; its text vectors are arbitrary."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ToyEncoder, make_image

# relative path → colour. red and red2 are near-identical (cosine ≈ 0.999), the rest far apart
COLOURS = {
    "red.jpg": (220, 20, 20),
    "sub/red2.png": (232, 30, 20),
    "green.jpg": (20, 200, 20),
    "sub/deep/blue.png": (20, 20, 220),
    "grey.jpg": (128, 128, 128),
}


def toy_loader(spec: str) -> ToyEncoder:
    return ToyEncoder()


@pytest.fixture(autouse=True)
def index_home(request, tmp_path, monkeypatch):
    """A fresh index home per test, but for the browser tests' shared photos (their indexes live
    beside them: a fresh home would hide the conse index)."""
    if "lite_conse_photos" in request.fixturenames:
        home = request.getfixturevalue("lite_conse_photos").parent / "index-home"
    else:
        home = tmp_path / "index-home"
    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def lite_conse(lite_encoder, conse_encoder):
    """The browser tests' two models, by name."""
    return {"lite": lite_encoder, "conse": conse_encoder}


@pytest.fixture(scope="module")
def lite_conse_photos(shared, tmp_path_factory, lite_conse):
    """28 real photos with captions, indexed with lite and conse (once per session)."""
    from tests.serve.browser_helpers import model_folder

    return model_folder(shared, tmp_path_factory, lite_conse)


def make_pics(folder: Path) -> Path:
    for rel, colour in COLOURS.items():
        make_image(folder / rel, size=(60, 40), color=colour)
    (folder / ".env").write_text("SECRET=do-not-serve\n")
    (folder / "notes.txt").write_text("not an image\n")
    (folder / "broken.jpg").write_text("a text file named like an image\n")  # indexed as failed
    return folder


@pytest.fixture
def pics(tmp_path) -> Path:
    return make_pics(tmp_path / "pics")


@pytest.fixture
def make_client(pics):
    """factory(**Settings fields) → (TestClient, ServerState); everything is closed afterwards."""
    from fastapi.testclient import TestClient

    from cliplab.serve import Settings, create_app, open_state

    opened = []

    def factory(raise_server_exceptions: bool = True, **settings):
        settings.setdefault("allowed_hosts", ["testserver"])  # TestClient's Host header
        state = open_state([pics], model="toy", loader=toy_loader, settings=Settings(**settings))
        client = TestClient(create_app(state), raise_server_exceptions=raise_server_exceptions)
        client.__enter__()  # runs the lifespan
        opened.append((client, state))
        return client, state

    yield factory
    for client, state in opened:
        client.__exit__(None, None, None)
        state.close()


@pytest.fixture
def client(make_client):
    return make_client()[0]


@pytest.fixture
def state_client(make_client):
    return make_client()


def ids_by_path(client) -> dict[str, int]:
    """relative path → image id, from the API itself (an embedding query per colour)."""
    out = {}
    for rel, colour in COLOURS.items():
        vec = [c / 255 for c in colour] + [1.0]
        r = client.post("/knn-service", json={"embedding_input": vec, "num_images": 1, "deduplicate": False})
        hit = r.json()[0]
        assert hit["path"] == rel
        out[rel] = hit["id"]
    return out


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium for the page tests (one per test module)."""
    from tests.serve.browser_helpers import chromium

    with chromium() as b:
        yield b
