"""Load on a real `cliplab serve` process: 16 concurrent clients sending distinct text queries.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/serve_load.py [--requests 800] [--clients 16] [--write]

Starts `cliplab serve ../shared/data/flickr8k-1k/images --model lite --port 0` (its index is kept
in .cache/serve-load-index, so only the first run embeds the 1,000 photos), waits for it to listen,
warms it up, then 16 threads (one httpx client each) send Flickr8k captions — every request a
different text — to `GET /api/search?n=10` until `--requests` have been answered. Reports q/s, p50,
p99 latency and errors; `--write` puts the table into docs/benchmarks.md (section "Serving").
Target (issue 11, 2 cores, lite): ≥ 100 q/s, p99 ≤ 500 ms, 0 errors.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from cliplab.data.shared import shared_dir

START, END = "<!-- serve_load:start -->", "<!-- serve_load:end -->"


def start_server(
    folder: Path | None, index_home: Path, extra: list[str], env_extra: dict | None = None
) -> tuple[subprocess.Popen, str, str]:
    """(process, URL, the collection's banner line) of `cliplab serve FOLDER --model lite --port 0`
    (no FOLDER: `extra` names what to serve, e.g. `--index DIR`)."""
    env = {**os.environ, "CLIPLAB_INDEX_HOME": str(index_home), "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    cmd = [
        sys.executable,
        "-c",
        "from cliplab.cli import main; main()",
        "serve",
        *([str(folder)] if folder is not None else []),
        "--model",
        "lite",
        "--port",
        "0",
        *extra,
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    url = None
    for line in proc.stdout:
        m = re.search(r"serving on (http://\S+)", line)
        if m:
            url = m.group(1)
        elif url:
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep draining its output
            return proc, url, line.strip()
    return proc, None, ""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def search_request(c: httpx.Client, q: str, params: dict | None, want: int) -> str | None:
    """GET /api/search?q=…&n=10 (+ `params`); an error text, or None (fewer than `want` results is one)."""
    r = c.get("/api/search", params={"q": q, "n": 10, **(params or {})})
    ok = r.status_code == 200 and len(r.json()["results"]) >= want
    return None if ok else f"{r.status_code} {r.text[:100]}"


def run_load(
    url: str,
    queries: list[str],
    clients: int,
    total: int,
    params: dict | None = None,
    want: int = 10,
    request=search_request,
    timeout: float = 30,
) -> dict:
    """`total` requests (`request(client, query, params, want)`, by default a search) from `clients`
    threads; what `request` returns as an error text counts as an error."""
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    it = iter(queries[:total])

    def client():
        with httpx.Client(base_url=url, timeout=timeout) as c:
            while True:
                with lock:
                    q = next(it, None)
                if q is None:
                    return
                t = time.perf_counter()
                try:
                    err = request(c, q, params, want)
                except httpx.HTTPError as e:
                    err = repr(e)
                dt = time.perf_counter() - t
                with lock:
                    lat.append(dt)
                    if err:
                        errors.append(err)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ms = np.array(lat) * 1000
    return {
        "requests": len(lat),
        "clients": clients,
        "wall_s": wall,
        "qps": len(lat) / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def markdown(r: dict, images: int, load: str, banner: str, extra: list[str]) -> str:
    cpu = r["server_cpu_ms"] + r["client_cpu_ms"]
    used, bound = cpu * r["qps"] / 1000, 2000 / cpu
    cmd = "HF_HUB_OFFLINE=1 nice -n 10 .venv/bin/python benchmarks/serve_load.py " + " ".join(extra) + " --write"
    return f"""{START}
## Serving (issue 11)

Command: `{cmd}`. A real `cliplab serve` process with `lite` over the {images} Flickr8k-1k photos on
127.0.0.1; {r["clients"]} client threads (httpx, in the benchmark process on the same 2 cores) send
{r["requests"]} distinct Flickr8k captions to `GET /api/search?n=10`. Concurrent text encodes are
micro-batched (up to 32 per model call, 4 ms window). The server said: `{banner}`.
Load average when it started: {load}.

| measurement | target | result |
|---|---|---|
| throughput | ≥ 100 q/s | {r["qps"]:.0f} q/s |
| latency p50 / p99 | p99 ≤ 500 ms | {r["p50_ms"]:.0f} / {r["p99_ms"]:.0f} ms |
| errors | 0 | {r["errors"]} |
| server CPU time per request (all threads) | — | {r["server_cpu_ms"]:.1f} ms |
| client CPU time per request (16 httpx threads) | — | {r["client_cpu_ms"]:.1f} ms |
| CPU this run got (server + clients) | — | {used:.2f} of 2 cores |

The cores were shared with other jobs, so q/s and latency above measure a busy machine. The CPU
time per request does not depend on the load: at {cpu:.1f} ms of CPU per query (server + clients),
two idle cores could answer at most about {bound:.0f} q/s — an upper bound derived from the
measurement, not a measurement.
{END}"""


def write_section(md: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text(encoding="utf-8")
    if START in text and END in text:
        text = text[: text.index(START)] + md + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + md + "\n"
    path.write_text(text, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=800)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--index-home", default=str(ROOT / ".cache" / "serve-load-index"))
    ap.add_argument("--runtime", default="auto", help="passed to cliplab serve (auto: ONNX Runtime when installed)")
    ap.add_argument("--precision", default="fp32", help="passed to cliplab serve (fp32 or int8)")
    ap.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    args = ap.parse_args()
    root = shared_dir()
    if root is None:
        raise SystemExit("benchmark needs the shared data folder (../shared or $CLIPLAB_SHARED)")
    data = root / "data" / "flickr8k-1k"
    with open(data / "captions.csv", newline="", encoding="utf-8") as f:
        captions = list(dict.fromkeys(row["caption"] for row in csv.DictReader(f)))
    folder = data / "images"
    extra = ["--runtime", args.runtime, "--precision", args.precision]
    proc, url, banner = start_server(folder, Path(args.index_home), extra)
    if url is None:  # e.g. `lite` was retrained since the cached index was built: rebuild it once
        env = {**os.environ, "CLIPLAB_INDEX_HOME": args.index_home, "HF_HUB_OFFLINE": "1"}
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from cliplab.cli import main; main()",
                "index",
                str(folder),
                "--model",
                "lite",
                "--reindex",
                *extra,
            ],
            cwd=ROOT,
            env=env,
            check=True,
        )
        proc, url, banner = start_server(folder, Path(args.index_home), extra)
        if url is None:
            raise SystemExit(f"cliplab serve exited with {proc.wait()}")
    print(banner)
    try:
        run_load(url, [f"warm-up {i}" for i in range(64)], args.clients, 64)
        load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
        cpu0, me0 = cpu_seconds(proc.pid), time.process_time()
        result = run_load(url, captions, args.clients, args.requests)
        # CPU per request: what the figures would be on 2 idle cores, whatever else is running
        result["server_cpu_ms"] = (cpu_seconds(proc.pid) - cpu0) * 1000 / result["requests"]
        result["client_cpu_ms"] = (time.process_time() - me0) * 1000 / result["requests"]
        images = httpx.get(url + "/api/collections").json()[0]["images"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(result)
    md = markdown(result, images, load, banner, extra)
    print(md)
    if args.write:
        write_section(md)


if __name__ == "__main__":
    main()
