"""Schema-driven fuzzing: requests generated from the server's own OpenAPI description (query,
path, JSON and multipart bodies, plus arbitrary JSON where a body is expected) must never be
answered with a 5xx. In-process (TestClient): no network. Bounded: a few seconds per route."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serve.test_api import png_bytes

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=12), kids, max_size=5),
    max_leaves=20,
)
FILES = st.sampled_from([b"", b"not an image", png_bytes((200, 10, 10)), png_bytes((9, 9, 9), fmt="BMP")])


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from fastapi.testclient import TestClient

    from cliplab.serve import Settings, create_app, open_state
    from tests.serve.conftest import make_pics, toy_loader

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLIPLAB_INDEX_HOME", str(tmp_path_factory.mktemp("home")))
        state = open_state(
            [make_pics(tmp_path_factory.mktemp("pics"))],
            model="toy",
            loader=toy_loader,
            settings=Settings(allowed_hosts=["testserver"]),
        )
    with TestClient(create_app(state), raise_server_exceptions=False) as client:
        yield client, client.get("/openapi.json").json()
    state.close()


def from_schema(schema: dict) -> st.SearchStrategy:
    """Values for the JSON-schema subset FastAPI writes here (types, anyOf, enum, arrays, objects),
    edges included (limits are not respected: a value outside them must be a 4xx too)."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of([from_schema(s) for s in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "string":
        return st.text(max_size=30)
    if kind == "integer":
        return st.integers(-(2**70), 2**70) | st.integers(-2, 30)
    if kind == "number":
        return st.floats() | st.integers(-(10**400), 10**400)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=6)
    if kind == "object":
        props = schema.get("properties", {})
        return st.fixed_dictionaries({}, optional={k: from_schema(v) for k, v in props.items()})
    return JSON


def _resolve(schema: dict, doc: dict) -> dict:
    ref = schema.get("$ref")
    if ref:
        return doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return schema


def _operations():
    # the description is static: build it once without a server to list the operations
    from cliplab.serve import Settings, create_app
    from cliplab.serve.encoders import EncoderPool
    from cliplab.serve.state import ServerState

    doc = create_app(ServerState({}, EncoderPool(), Settings())).openapi()
    return [(path, method) for path, ops in doc["paths"].items() for method in ops]


def _request(draw, op: dict, doc: dict) -> dict:
    params = {"query": {}, "path": {}}
    for p in op.get("parameters", []):
        if p.get("required") or draw(st.booleans()):
            value = draw(from_schema(_resolve(p["schema"], doc)) | st.text(max_size=30))
            params[p["in"]][p["name"]] = str(value) if value is not None else ""
    kw: dict = {"params": params["query"]}
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        body = draw(from_schema(_resolve(content["application/json"]["schema"], doc)) | JSON)
        kw["content"] = json.dumps(body)
        kw["headers"] = {"Content-Type": draw(st.sampled_from(["application/json", "text/plain"]))}
    elif "multipart/form-data" in content:
        schema = _resolve(content["multipart/form-data"]["schema"], doc)
        data, files = {}, []
        for name, prop in schema.get("properties", {}).items():
            if not (name in schema.get("required", []) or draw(st.booleans())):
                continue
            text = json.dumps(prop)
            if "octet-stream" in text or prop.get("format") == "binary":
                for i in range(draw(st.integers(0, 3))):
                    files.append((name, (f"f{i}.png", draw(FILES), "image/png")))
            else:
                data[name] = draw(st.text(max_size=40) | st.sampled_from(["1", "-1", "clip80", "{} {}", "a,b", "pics"]))
        kw["data"], kw["files"] = data, files or None
    return {"path": params["path"], **kw}


@pytest.mark.parametrize("path,method", _operations())
def test_no_request_from_the_description_is_a_5xx(api, path, method):
    client, doc = api
    op = doc["paths"][path][method]

    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.data())
    def check(data):
        req = data.draw(st.composite(lambda draw: _request(draw, op, doc))())
        url = path
        for name, value in req.pop("path").items():
            url = url.replace("{" + name + "}", quote(value, safe="") or "x")
        r = client.request(method.upper(), url, **{k: v for k, v in req.items() if v is not None})
        assert r.status_code < 500, (method, url, req, r.status_code, r.text[:300])
        if r.status_code >= 400:
            assert isinstance(r.json().get("error"), str)

    check()
