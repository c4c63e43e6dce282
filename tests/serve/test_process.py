"""The real `cliplab serve` process (toy model): HTTP on a free port, clip-retrieval's own ClipClient,
raw traversal paths, indexing in another process while querying, SIGTERM → clean exit 0."""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import make_image
from tests.serve.conftest import COLOURS, make_pics

ROOT = Path(__file__).resolve().parents[2]
CLIP_CLIENT = ROOT / ".venv" / "clip-retrieval" / "clip_retrieval" / "clip_client.py"


class Server:
    def __init__(self, folder: Path, env: dict, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.serve.serve_child", str(folder), "--model", "toy", "--port", "0", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"server exited: {self.proc.wait()} {self.proc.stderr.read()}")
            self.lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        self.url = self.lines[0].split("serving on ")[1].split()[0]
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self, sig=signal.SIGTERM) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out, err


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-process")
    env = {**os.environ, "CLIPLAB_INDEX_HOME": str(tmp / "index-home"), "PYTHONPATH": str(ROOT)}
    srv = Server(make_pics(tmp / "pics"), env)
    srv.folder, srv.env = tmp / "pics", env
    yield srv
    if srv.proc.poll() is None:
        srv.proc.kill()
        srv.proc.wait()


def test_prints_url_collections_and_answers(server):
    banner = "".join(server.lines)
    assert server.url.startswith("http://127.0.0.1:")
    assert f"pics: {server.folder.resolve()}" in banner and "model toy" in banner
    assert f"{len(COLOURS)} images" in banner and "1 failed" in banner
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/healthz").json()["status"] == "ok"
        assert c.get("/indices-list").json() == ["pics"]
        res = c.get("/api/search", params={"q": "anything", "n": 3}).json()["results"]
        assert len(res) == 3 and res[0]["url"].startswith(server.url)
        assert c.get(res[0]["url"]).status_code == 200
        assert c.get(res[0]["thumb_url"]).headers["content-type"] == "image/jpeg"


def test_raw_traversal_paths_over_the_socket(server):
    """Un-normalised `../` only reaches a server over a raw socket (HTTP clients resolve it)."""
    for path in [
        "/image/pics/../../../../etc/passwd",
        "/image/pics/../notes.txt",
        "/thumb/pics/../.env",
        "/image/../pics/1",
        "/static/../../serve/app.py",
        "/image/pics/..\\..\\notes.txt",
        "/image/pics/%2e%2e/%2e%2e/etc/passwd",
    ]:
        con = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        con.request("GET", path)
        r = con.getresponse()
        body = r.read()
        con.close()
        assert r.status == 404, (path, r.status)
        assert b"root:" not in body and b"do-not-serve" not in body


@pytest.fixture(scope="module")
def clip_client_module():
    """clip-retrieval's own client, loaded from its file (its package __init__ imports torch & co).
    `make test` downloads the wheel into .venv/clip-retrieval/ (pip download --no-deps)."""
    if not CLIP_CLIENT.is_file():
        pytest.fail(
            f"{CLIP_CLIENT} is missing: `make test` puts it there "
            "(pip download --no-deps clip-retrieval==2.45.0, unzipped into .venv/clip-retrieval/)"
        )
    spec = importlib.util.spec_from_file_location("clip_client", CLIP_CLIENT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_clip_retrieval_client(server, clip_client_module, tmp_path):
    client = clip_client_module.ClipClient(url=server.url + "/knn-service", indice_name="pics", num_images=3)
    by_text = client.query(text="a red square")
    assert len(by_text) == 3 and {"id", "similarity", "url", "caption"} <= set(by_text[0])
    query = make_image(tmp_path / "q.png", size=(20, 20), color=(20, 20, 220))
    by_image = client.query(image=str(query))
    assert by_image[0]["path"] == "sub/deep/blue.png" and by_image[0]["caption"] == "blue.png"
    by_vec = client.query(embedding_input=[20 / 255, 200 / 255, 20 / 255, 1.0])
    assert by_vec[0]["path"] == "green.jpg"
    assert httpx.get(by_vec[0]["url"]).content == (server.folder / "green.jpg").read_bytes()
    # deduplicate=True (the client's default) kept only one of the two near-identical reds
    red = client.query(embedding_input=[220 / 255, 20 / 255, 20 / 255, 1.0])
    assert [r["path"] for r in red].count("red.jpg") + [r["path"] for r in red].count("sub/red2.png") == 1


def test_index_in_another_process_while_querying(server):
    new = [make_image(server.folder / "new" / f"n{i}.png", size=(30, 30), color=(250, 200 - i, 0)) for i in range(8)]
    errors: list[str] = []
    answered = [0]
    stop = threading.Event()

    def query_loop():
        with httpx.Client(base_url=server.url, timeout=30) as c:
            while not stop.is_set():
                r = c.post("/knn-service", json={"text": f"query {answered[0]}", "num_images": 5})
                if r.status_code != 200:
                    errors.append(r.text)
                answered[0] += 1
                time.sleep(0.01)  # leave the CPUs to the indexer too

    t = threading.Thread(target=query_loop)
    t.start()
    try:
        run = subprocess.run(
            [sys.executable, "-m", "tests.serve.index_child", str(server.folder), "0.15"],
            cwd=ROOT,
            env=server.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        stop.set()
        t.join()
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("progress") >= 2  # several commits, queries ran between them
    assert not errors and answered[0] > 0
    # the new images are searchable without a restart
    hit = httpx.post(
        server.url + "/knn-service", json={"embedding_input": [250 / 255, 200 / 255, 0, 1.0], "num_images": 1}
    ).json()[0]
    assert hit["path"] == "new/n0.png"
    cols = httpx.get(server.url + "/api/collections").json()
    assert cols[0]["images"] == len(COLOURS) + len(new)


def test_taken_port_is_one_error_line(server, tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.serve.serve_child",
            str(server.folder),
            "--model",
            "toy",
            "--port",
            str(server.port),
        ],
        cwd=ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr


def test_json_is_one_line_once_listening(tmp_path):
    """`serve --json`: one JSON line on stdout (url, collections, model) when it listens; nothing more."""
    env = {**os.environ, "CLIPLAB_INDEX_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    folder = make_pics(tmp_path / "pics")
    args = [sys.executable, "-m", "tests.serve.serve_child", str(folder), "--model", "toy", "--port", "0", "--json"]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        doc = json.loads(proc.stdout.readline())
        assert doc["url"].startswith("http://127.0.0.1:") and doc["docs"] == doc["url"] + "/docs"
        [col] = doc["collections"]
        assert (col["name"], col["folder"], col["model"]) == ("pics", str(folder.resolve()), "toy")
        assert (col["images"], col["failed"], col["runtime"]) == (len(COLOURS), 1, "torch")
        assert httpx.get(doc["url"] + "/healthz").json()["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and out == "" and "stopped." in err, err


def test_sigterm_exits_cleanly(server):
    """Last in this module: stops the shared server."""
    code, out, err = server.stop(signal.SIGTERM)
    assert code == 0, err
    assert "Traceback" not in err and "Traceback" not in out
    assert "stopped." in out


def test_ctrl_c_exits_cleanly_and_an_open_host_warns(tmp_path):
    env = {**os.environ, "CLIPLAB_INDEX_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    srv = Server(make_pics(tmp_path / "pics"), env, "--host", "0.0.0.0", "--no-token")  # no token: said explicitly
    assert httpx.get(f"http://127.0.0.1:{srv.port}/healthz").status_code == 200
    code, _out, err = srv.stop(signal.SIGINT)
    assert code == 0 and "Traceback" not in err, err
    assert "warning" in err and "--token" in err  # 0.0.0.0 without a token


def test_token_file_keeps_the_token_out_of_ps(tmp_path):
    env = {**os.environ, "CLIPLAB_INDEX_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    env.pop("CLIPLAB_TOKEN", None)
    (tmp_path / "token").write_text("s3cret-from-file\n")
    srv = Server(make_pics(tmp_path / "pics"), env, "--host", "0.0.0.0", "--token-file", str(tmp_path / "token"))
    try:
        url = f"http://127.0.0.1:{srv.port}"
        assert "s3cret" not in " ".join(srv.proc.args)
        assert httpx.get(url + "/api/collections").status_code == 401
        assert httpx.get(url + "/openapi.json").status_code == 401
        bearer = {"Authorization": "Bearer s3cret-from-file"}
        assert httpx.get(url + "/api/collections", headers=bearer).status_code == 200
    finally:
        code, _out, err = srv.stop(signal.SIGTERM)
    assert code == 0 and "warning" not in err, err
