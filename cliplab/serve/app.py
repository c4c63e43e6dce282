"""`create_app(state)`: the FastAPI app around a `ServerState`.

Cross-cutting concerns live here: the Host and token checks, the request-size bound, CORS, turning every
error into `{"error": ...}` JSON, and the page's static files. Routes are in routes_*.py; they only
parse requests and call the query pipeline / library.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import secrets
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from cliplab.errors import CliplabError
from cliplab.serve.query import ApiError, NotFound
from cliplab.serve.state import ServerState

STATIC_DIR = Path(__file__).parent / "static"
DOCS_STATIC = "/static-docs"
# with a token, the API description (/openapi.json, /docs, /redoc) needs it too: only the page is open
OPEN_PATHS = {"/", "/healthz", "/favicon.ico"}
log = logging.getLogger("cliplab.serve")


def create_app(state: ServerState) -> FastAPI:
    from cliplab import __version__
    from cliplab.serve import (
        routes_api,
        routes_classify,
        routes_clip,
        routes_compare,
        routes_explore,
        routes_files,
        routes_reports,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        state.encoders.close()  # stop the batcher threads; the caller closes the collections

    # FastAPIOffline serves the /docs page's Swagger UI from its package: no CDN, works offline.
    app = FastAPIOffline(
        title="cliplab",
        version=__version__,
        lifespan=lifespan,
        static_url=DOCS_STATIC,
        description="Search and classify image collections with CLIP-style models. "
        "Also speaks clip-retrieval's protocol (/indices-list, /knn-service, /metadata).",
        # Starlette's multipart limits for the File/Form routes (count of files and fields, bytes of a text field)
        form_limits=routes_api.FORM_LIMITS,
    )
    app.state.cliplab = state
    _add_guards(app, state)
    _add_error_handlers(app)
    app.include_router(routes_api.router)
    app.include_router(routes_classify.router)
    app.include_router(routes_clip.router)
    app.include_router(routes_files.router)
    app.include_router(routes_explore.router)
    app.include_router(routes_compare.router)
    app.include_router(routes_reports.router)

    @app.get("/healthz", tags=["status"])
    def healthz() -> dict:
        return {
            "status": "ok",
            "version": __version__,
            "collections": len(state.sources),
            "auth": state.settings.token is not None,
        }

    @app.get("/", include_in_schema=False)
    def page():
        index = STATIC_DIR / "index.html"
        if index.is_file():
            return FileResponse(index, media_type="text/html", headers={"Cache-Control": "no-cache"})
        return HTMLResponse(
            "<!doctype html><title>cliplab</title><p>cliplab is running: see <a href='/docs'>/docs</a>."
        )

    if STATIC_DIR.is_dir():  # StaticFiles refuses `..` and anything outside its folder
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    else:  # a source tree without the page: the API works, /static/* is a plain 404

        @app.get("/static/{path:path}", include_in_schema=False)
        def no_static(path: str):
            raise NotFound(f"not found: /static/{path}")

    return app


def _add_guards(app: FastAPI, state: ServerState) -> None:
    app.add_middleware(Guard, settings=state.settings)
    origins = state.settings.cors_origins
    if not origins:  # same-origin only: a page from elsewhere cannot read the answers
        return
    # added last = outermost, so preflights and 401/413 answers carry the CORS headers too
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST"],
        allow_headers=["*"],
        allow_credentials="*" not in origins,
    )


class Guard:
    """Host check, request size bound (declared, then counted as it arrives) and token check,
    before any route runs. Plain ASGI (not
    BaseHTTPMiddleware): it runs on every request, and the wrapper costs a task per request."""

    def __init__(self, app, settings):
        self.app, self.settings = app, settings
        # a base64 image in JSON is 4/3 of its bytes; the rest of a request is small
        self.body_limit = settings.max_upload_bytes * 4 // 3 + 1024 * 1024

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        if not host_ok(request.headers.get("host"), self.settings):
            # DNS rebinding: a page on evil.example re-resolved to 127.0.0.1 still says Host: evil.example
            msg = "this server does not answer for that Host name (start it with --allowed-host NAME)"
            return await _error(421, msg)(scope, receive, send)
        length = request.headers.get("content-length")
        msg = f"request body too large (limit {self.settings.max_upload_mb:g} MB per upload)"
        if length and length.isdigit() and int(length) > self.body_limit:
            return await _error(413, msg)(scope, receive, send)
        path, token = scope["path"], self.settings.token
        if (
            token
            and scope["method"] != "OPTIONS"
            and not (path in OPEN_PATHS or path.startswith(("/static/", DOCS_STATIC + "/")))
            and not _token_ok(request, token)
        ):
            response = _error(
                401, "missing or wrong token: send 'Authorization: Bearer TOKEN'", {"WWW-Authenticate": "Bearer"}
            )
            return await response(scope, receive, send)
        return await self.app(scope, _counted(receive, self.body_limit, msg), send)


def _counted(receive, limit: int, msg: str):
    """`receive` that counts body bytes as they arrive: a chunked body has no Content-Length to
    check, so the route's read fails (→ 413) as soon as the total passes `limit`."""
    seen = 0

    async def wrapped():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                # FastAPI's HTTPException: FastAPI's form parsing re-raises it (any other error → 400)
                raise HTTPException(413, msg)
        return message

    return wrapped


def host_ok(value: str | None, settings) -> bool:
    """Does a Host header name this server: localhost, a loopback address, the bound address or an
    --allowed-host? Bound to a wildcard address, any IP literal too (rebinding needs a name)."""
    if value is None:  # HTTP/1.0 clients; browsers always send Host
        return True
    name = value.strip().lower()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    name = name.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        ip = None
    bound = (settings.bind_host or "").lower()
    if ip is not None and (ip.is_loopback or bound in ("0.0.0.0", "::")):
        return True
    return name in {bound, *(h.lower().rstrip(".") for h in settings.allowed_hosts)} - {""}


def _token_ok(request: Request, token: str) -> bool:
    auth = request.headers.get("authorization", "")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    given = given or request.cookies.get("cliplab_token") or request.query_params.get("token")
    return given is not None and secrets.compare_digest(given.encode(), token.encode())


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        retry = getattr(e, "retry_after", None)  # 503 Busy: the pixel budget is spent for now
        return _error(e.status, str(e), {"Retry-After": str(retry)} if retry else None)

    @app.exception_handler(CliplabError)
    async def user_error(request: Request, e: CliplabError):
        return _error(400, str(e))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        msg = e.detail if e.status_code != 404 or e.detail != "Not Found" else f"not found: {request.url.path}"
        return _error(e.status_code, str(msg), getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError):
        parts = []
        for err in e.errors()[:3]:
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path"))
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return _error(400, "bad request: " + "; ".join(parts))

    @app.exception_handler(Exception)
    async def crash(request: Request, e: Exception):
        # a bug, not bad input: one JSON line to the client (uvicorn logs the traceback), keep serving
        log.error("error while answering %s %s: %r", request.method, request.url.path, e)
        return _error(500, f"internal error ({type(e).__name__}); see the server log")
