"""`cliplab serve`: index what changed, then serve search over HTTP (see cliplab/serve/API.md)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import typer

from cliplab.cli.app import DeviceOpt, PrecisionOpt, RuntimeOpt, app, err, guarded, out, runtime_text
from cliplab.errors import CliplabError


def _bind(host: str, port: int) -> socket.socket:
    """Bind before anything is printed, so a taken port is one clear error line, not a log dump."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise CliplabError(f"cannot listen on {host}:{port} ({e.strerror}); pick another --port") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@app.command()
@guarded
def serve(
    folders: list[str] | None = typer.Argument(None, help="Image folders to index (what changed) and serve."),
    index: list[str] | None = typer.Option(None, "--index", help="Serve an existing index folder (repeatable)."),
    name: list[str] | None = typer.Option(None, "--name", help="Collection name, in order (default: folder name)."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model spec (default: the index's, else lite)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8765, "--port", help="Port (0: any free port)."),
    token: str | None = typer.Option(
        None,
        "--token",
        envvar="CLIPLAB_TOKEN",
        help="Require 'Authorization: Bearer TOKEN' on every API route. Shows in `ps`: prefer --token-file "
        "or $CLIPLAB_TOKEN.",
    ),
    token_file: Path | None = typer.Option(
        None, "--token-file", help="Read the token from this file (first line), instead of --token."
    ),
    no_token: bool = typer.Option(
        False, "--no-token", help="Serve a non-loopback --host without a token (anyone who can reach it may search)."
    ),
    max_upload_mb: float = typer.Option(20.0, "--max-upload-mb", help="Largest accepted upload (413 above)."),
    allow_urls: bool = typer.Option(False, "--allow-urls", help="Let queries name image URLs for the server to fetch."),
    cors_origin: list[str] | None = typer.Option(
        None,
        "--cors-origin",
        help="Let pages from this origin (e.g. http://localhost:3005) call the API; repeatable, '*' for any. "
        "Default: same-origin only.",
    ),
    allowed_host: list[str] | None = typer.Option(
        None, "--allowed-host", help="Also answer for this Host name (besides localhost and the --host); repeatable."
    ),
    no_update: bool = typer.Option(False, "--no-update", help="Serve folders' indexes as they are, without indexing."),
    reports: list[Path] | None = typer.Option(
        None,
        "--reports",
        help="Also serve `cliplab analyze` reports from this folder (one report, or a folder of them) under "
        "/reports/; repeatable.",
    ),
    watch: bool = typer.Option(False, "--watch", help="Keep indexing new and changed files while serving."),
    ocr: bool | None = typer.Option(
        None,
        "--ocr/--no-ocr",
        help="Read the text in the folders' images for keyword and hybrid search (each folder's index remembers "
        "it, as with `index --ocr`). Needs cliplab[ocr].",
    ),
    runtime: str = RuntimeOpt,
    precision: str = PrecisionOpt,
    device: str = DeviceOpt,
    as_json: bool = typer.Option(
        False, "--json", help="Once listening, one JSON line on stdout: url, collections (folder, model, images)."
    ),
) -> None:
    """Serve search, classify and clip-retrieval's API for image folders (a web page at /)."""
    from cliplab.serve import Settings, create_app, open_state

    if not folders and not index:
        raise CliplabError("give one or more image folders, or --index DIR")
    if max_upload_mb <= 0:
        raise CliplabError("--max-upload-mb must be positive")
    if not 0 <= port <= 65535:
        raise CliplabError(f"--port {port}: use 0..65535 (0: any free port)")
    token = _token(token, token_file)
    loopback = _is_loopback(host)
    if not loopback and not token and not no_token:
        raise CliplabError(
            f"--host {host} reaches beyond this machine: give a token (--token-file FILE or $CLIPLAB_TOKEN), "
            "or --no-token to serve without one"
        )
    report_dirs = _report_folders(reports or [])  # before anything is bound or written
    if ocr is not None:
        _remember_ocr(folders or [], model, ocr)
    sock = _bind(host, port)
    settings = Settings(
        token=token or None,
        max_upload_mb=max_upload_mb,
        allow_urls=allow_urls,
        cors_origins=list(cors_origin or []),
        bind_host=host,
        allowed_hosts=list(allowed_host or []),
        reports=report_dirs,
    )

    def report(folder, stats):
        if stats.new or stats.changed or stats.deleted:
            err.print(f"indexed {folder}: {stats.new} new, {stats.changed} changed, {stats.deleted} deleted")

    state = watcher = None
    try:
        state = open_state(
            folders or [],
            index or [],
            name or [],
            model,
            loader=_loader(runtime, precision, device),
            update=not no_update,
            progress=True,
            settings=settings,
            on_update=report,
        )
        _model_threads()
        with err.status("loading models …"):
            state.warm()
        if watch:
            from cliplab.serve.watch import Watcher

            watcher = Watcher(state, on_update=report)
            watcher.start()
        _run(create_app(state), sock, host, state, loopback, token, watch, as_json)
    finally:
        if watcher is not None:
            watcher.stop()
        if state is not None:
            state.close()
        sock.close()


def _remember_ocr(folders: list[str], model: str | None, on: bool) -> None:
    """`--ocr/--no-ocr`: each folder's index remembers it; its updates (now, --watch) then read text."""
    from cliplab.data.ocr import unavailable_reason
    from cliplab.index import Collection
    from cliplab.index.ocr import remember

    if on and unavailable_reason():  # before any index is made for it
        raise CliplabError(f"--ocr: {unavailable_reason()}")
    for folder in folders:
        with Collection(folder, model=model) as col:
            remember(col.catalog, on)


def _report_folders(folders: list[Path]) -> list[Path]:
    for folder in folders:
        if not folder.is_dir():
            raise CliplabError(f"--reports {folder}: not a folder")
    return [folder.resolve() for folder in folders]


def _token(token: str | None, token_file: Path | None) -> str | None:
    if token_file is None:
        return token or None
    if token:
        raise CliplabError("give --token or --token-file, not both")
    try:
        lines = token_file.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise CliplabError(f"--token-file {token_file}: {e.strerror or e}") from None
    if not lines or not lines[0].strip():
        raise CliplabError(f"--token-file {token_file}: the first line is empty")
    return lines[0].strip()


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _loader(runtime: str, precision: str, device: str):
    """spec → encoder on the chosen runtime; the server's pool calls it once per model."""

    def load(spec: str):
        from cliplab.runtime import load_encoder

        return load_encoder(spec, runtime=runtime, precision=precision, device=device)

    return load


def _model_threads() -> None:
    """Concurrent queries reach the model as one batched call at a time, so more intra-op threads
    mostly spin: half the cores for the model leaves the rest to HTTP, JSON and gathering the next
    batch. Measured on 2 busy cores: 9.9 ms of server CPU per query at 1 thread, 16.7 ms at 2
    (docs/benchmarks.md). Set after the start-up indexing (which uses every core) and before the
    models warm up (ONNX Runtime fixes a session's threads when it makes it). CLIPLAB_THREADS wins."""
    from cliplab.pipeline import configure_threads
    from cliplab.settings import set_threads, settings

    n = settings().threads or max(1, (os.cpu_count() or 2) // 2)
    set_threads(n)
    configure_threads(n)


def _run(application, sock: socket.socket, host: str, state, loopback: bool, token, watch: bool, as_json=False) -> None:
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            super().handle_exit(sig, frame)
            # uvicorn re-raises a caught SIGINT/SIGTERM after shutting down; a clean stop should exit 0
            getattr(self, "_captured_signals", []).clear()

        async def startup(self, sockets=None):
            await super().startup(sockets)
            if not self.should_exit:  # listening, signal handlers in place: now say so
                _banner(sock, host, state, loopback, token, watch, as_json)

    config = uvicorn.Config(
        application, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5
    )
    Server(config).run(sockets=[sock])
    (err if as_json else out).print("stopped.")  # with --json, stdout holds the one JSON line


def _banner(sock: socket.socket, host: str, state, loopback: bool, token, watch: bool, as_json=False) -> None:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    if as_json:
        _json_banner(f"http://{shown}:{port}", state, token, watch)
    else:
        _text_banner(f"http://{shown}:{port}", state, watch)
    if not loopback and not token:
        err.print(
            f"[yellow]warning:[/] listening on {host} without --token: anyone who can reach this machine "
            "can search and view these images"
        )


def _json_banner(url: str, state, token, watch: bool) -> None:
    import json
    import sys

    from cliplab.cli.app import runtime_info
    from cliplab.jsonable import jsonable

    cols = [{**src.info(), **runtime_info(state.encoders.get(src.model).encoder)} for src in state.sources.values()]
    doc = {"url": url, "docs": url + "/docs", "collections": cols, "watching": watch, "token": bool(token)}
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, default=jsonable) + "\n")
    sys.stdout.flush()  # a pipe is block-buffered: the reader is waiting for this line


def _text_banner(url: str, state, watch: bool) -> None:
    out.print(f"cliplab serving on {url}  (API docs: /docs)")
    for src in state.sources.values():
        i = src.info()
        enc = state.encoders.get(src.model).encoder
        out.print(
            f"  {i['name']}: {i['folder']}  model {i['model']} ({runtime_text(enc)}), {i['images']} images"
            + (f", {i['failed']} failed" if i["failed"] else "")
        )
    if watch:
        out.print("  watching the folders for new and changed images")
    out.print("Ctrl-C to stop.")
