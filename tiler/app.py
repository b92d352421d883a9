"""The FastAPI application: ``create_app(settings)`` wires catalogues, engine and routers.

``create_app`` has no process-wide side effects. A server process starts through
:func:`serve_app` (what ``tiler serve`` and ``uvicorn tiler.app:serve_app --factory``
run, in every worker), which also configures logging (uvicorn workers have none for the
application; a repeated Python warning is logged once), malloc and GDAL's defaults for COGs,
and loads the catalogues with Python's cyclic garbage collector paused, then freezes them.
In front of the routes: :class:`~tiler.api.head.HeadAsGet` (HEAD answered like GET), gzip, CORS,
:class:`~tiler.api.body.BodyLimit` (request bodies bounded) and
:class:`~tiler.api.admission.Admission` (work in flight bounded, identical requests
shared, deadlines, disconnects).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import re
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TextIO
from urllib.parse import quote

from fastapi import APIRouter, FastAPI
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from tiler import __version__, errors
from tiler.api import collections, export, maps, point, tiles
from tiler.api.admission import Admission, Coalescer
from tiler.api.body import BodyLimit
from tiler.api.gate import Gate
from tiler.api.head import HeadAsGet
from tiler.api.responses import ResponseCache
from tiler.catalog.base import Catalog
from tiler.catalog.coverage import MinZoom
from tiler.catalog.sources import open_catalogs
from tiler.engine.budget import DeadlineExceeded, RequestCancelled
from tiler.engine.io import GDAL_DEFAULTS, remember_default_transforms
from tiler.engine.service import Engine
from tiler.settings import Settings

logger = logging.getLogger(__name__)

#: the built browser viewer (frontend/ builds into it)
VIEWER = Path(__file__).parent / "static" / "viewer"


def load_catalogs(settings: Settings) -> dict[str, Catalog]:
    """The catalogues ``settings`` name.

    Without collections: the database of ``database_url`` when set, else the built-in demo.
    """
    sources: list[str | Path] = list(settings.collections)
    if not sources and settings.database_url is not None:
        sources = [settings.database_url.get_secret_value()]
    if not sources:
        from tiler.tools.demo import ensure_demo

        sources = [ensure_demo(settings.demo_dir)]
    return open_catalogs(sources, settings)


def create_app(
    settings: Settings | None = None, catalogs: dict[str, Catalog] | None = None
) -> FastAPI:
    """Build the application.

    Args:
        settings: settings (default: from the environment).
        catalogs: catalogues to serve by id (default: :func:`load_catalogs`).

    Returns:
        The FastAPI app; its engine starts with it and is closed at shutdown.
    """
    settings = settings or Settings()
    if catalogs is None:
        catalogs = load_catalogs(settings)
    engine = Engine(
        read_threads=settings.read_threads,
        io_threads=settings.io_threads,
        item_timeout=settings.item_timeout,
        max_items=settings.max_items_per_tile,
        open_datasets=settings.open_datasets,
    )
    gate = Gate(
        limit=settings.max_in_flight or 2 * settings.read_threads,
        timeout=settings.request_timeout,
        queue_wait=settings.max_queue_wait,
        min_queue=0 if settings.max_queue_wait == 0 else None,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.close()
        for catalog in catalogs.values():
            catalog.close()

    app = FastAPI(
        title="qualitymosaic",
        version=__version__,
        description="Exact per-pixel quality mosaics (Earth Engine's qualityMosaic) of "
        "STAC collections as map tiles.",
        root_path=settings.root_path,
        lifespan=lifespan,
        redirect_slashes=False,  # SlashRedirect does it, without trusting Host
    )
    app.router.default = SlashRedirect(app.router, settings.public_url, app.router.default)
    app.state.settings = settings
    app.state.catalogs = catalogs
    app.state.engine = engine
    app.state.cache = ResponseCache(settings.tile_cache_bytes)
    app.state.gate = gate
    app.state.coalescer = Coalescer()
    app.state.min_zoom = MinZoom(settings.max_items_per_tile, ttl=settings.search_cache_ttl or 300)
    errors.install(app)
    app.add_exception_handler(DeadlineExceeded, _deadline_exceeded)
    app.add_exception_handler(RequestCancelled, _cancelled)
    routers = [module.router for module in (collections, tiles, maps, point, export)]
    for router in routers:
        app.include_router(router)
    app.include_router(maps.PublicTMSFactory().router, tags=["Tiling Schemes"])

    app.mount("/static/viewer", StaticFiles(directory=VIEWER, check_dir=False), name="viewer")

    @app.get("/", include_in_schema=False)
    def viewer() -> Response:
        index = VIEWER / "index.html"
        if index.is_file():
            return FileResponse(index, headers={"Cache-Control": "no-cache"})
        return HTMLResponse(
            "<!doctype html><title>qualitymosaic</title><p>The viewer is not built "
            "(cd frontend && npm ci && npm run build). API: <a href='docs'>/docs</a>, "
            "<a href='collections'>/collections</a>.</p>"
        )

    @app.get("/healthz", summary="Health check", tags=["health"])
    def healthz() -> JSONResponse:
        states = {cid: catalog.health() for cid, catalog in catalogs.items()}
        ok = all(s["status"] == "ok" for s in states.values())
        body = {
            "status": "ok" if ok else "degraded",
            "version": __version__,
            "collections": len(catalogs),
            "catalogs": states,
            "load": gate.status(),
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    app.add_middleware(
        Admission,
        gate=gate,
        routes=[route for router in routers for route in router.routes],
        cache=app.state.cache,
        coalescer=app.state.coalescer,
    )  # innermost
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)  # before a slot is taken
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "HEAD", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=["*"],
    )
    app.add_middleware(GZipMiddleware, minimum_size=1000)
    app.add_middleware(HeadAsGet)  # outermost: HEAD gets GET's exact headers (gzip too)
    return app


class SlashRedirect:
    """The router's answer to an unmatched path: a redirect across a trailing slash, or 404.

    Starlette's own redirect (``redirect_slashes``) writes an absolute ``Location`` from the
    ``Host`` header, so ``Host: evil.example`` on ``/collections/demo/`` sent the client to
    ``https://evil.example/collections/demo``. This one writes ``TILER_PUBLIC_URL`` + path
    when it is set, else a path only (relative to the host the client asked), never a Host.

    Args:
        router: the app's router (its routes are matched against the other spelling).
        public_url: ``TILER_PUBLIC_URL``, or None.
        fallback: what answers a path that matches nowhere either way (the 404).
    """

    def __init__(self, router: APIRouter, public_url: str | None, fallback: ASGIApp) -> None:
        self.router = router
        self.public_url = public_url.rstrip("/") if public_url else None
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Redirect (307) to the matching spelling of the path, else answer the fallback."""
        location = self.location(scope) if scope["type"] == "http" else None
        if location is None:
            await self.fallback(scope, receive, send)
            return
        await RedirectResponse(location, status_code=307)(scope, receive, send)

    def location(self, scope: Scope) -> str | None:
        """Where the request's path with or without its trailing slash is served, or None."""
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root + "/"):  # the root path was not stripped by a proxy
            path = path[len(root) :]
        if path in ("", "/"):
            return None
        other = path.rstrip("/") if path.endswith("/") else path + "/"
        if not other or not any(
            route.matches({**scope, "path": other, "root_path": ""})[0] is not Match.NONE
            for route in self.router.routes
        ):
            return None
        where = quote(other, safe="/:@!$&'()*+,;=%")
        base = self.public_url if self.public_url is not None else root
        location = f"{base}{where}"
        if location.startswith("//"):  # never a scheme-relative URL to another host
            return None
        query = scope.get("query_string", b"").decode("latin-1")
        return f"{location}?{query}" if query else location


async def _deadline_exceeded(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": str(exc)}, status_code=504, headers={"Cache-Control": "no-store"}
    )


async def _cancelled(request: Request, exc: Exception) -> JSONResponse:
    logger.info("%s %s stopped: %s", request.method, request.url.path, exc)
    # nobody reads it; 499 (client closed request) shows in the access log
    return JSONResponse({"detail": f"stopped: {exc}"}, status_code=499)


def configure_logging(level: str = "INFO") -> None:
    """Log the application's messages at ``level`` unless logging is configured already.

    ``tiler serve`` configures it in its process; uvicorn's worker processes
    (``--workers 2``) configure only uvicorn's own loggers, so :func:`serve_app`, which
    every worker runs, calls this.
    """
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )


#: a number in a warning's text (request values: coordinates, sizes, thresholds)
_NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _masked(text: str, limit: int = 300) -> str:
    """``text`` on one line, numbers replaced by ``#``, control characters escaped, cut."""
    text = _NUMBER.sub("#", text[: 4 * limit])
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[:limit] + "..."


class WarningLog:
    """Python warnings, logged to ``py.warnings`` without the request's values.

    A warning's text may repeat what a request sent (geojson_pydantic's antimeridian
    warning quotes the bbox's numbers), so its numbers are logged as ``#`` and control
    characters escaped. Each text is logged once per place that warns (category, file,
    line), at most ``per_place`` distinct texts per place and ``places`` places in all; what
    passes those bounds is not logged (one fixed line says so per place). So requests
    can neither write their own values to the log nor a line each.
    """

    def __init__(self, per_place: int = 5, places: int = 1000) -> None:
        self.per_place = per_place
        self.places = places
        self.seen: dict[tuple[str, str, int], set[str]] = {}
        self._lock = threading.Lock()
        self._log = logging.getLogger("py.warnings")

    def __call__(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        """Log one warning (the signature of :func:`warnings.showwarning`)."""
        place = (category.__name__, filename, lineno)
        text = _masked(str(message))
        with self._lock:
            texts = self.seen.get(place)
            if texts is None:
                if len(self.seen) >= self.places:
                    return
                texts = self.seen[place] = set()
            if text in texts or len(texts) > self.per_place:
                return
            texts.add(text)
            full = len(texts) > self.per_place
        if full:
            self._log.warning(
                "%s:%s: %s: further warnings from here are not logged",
                filename,
                lineno,
                category.__name__,
            )
        else:
            self._log.warning("%s:%s: %s: %s", filename, lineno, category.__name__, text)


def configure_warnings() -> None:
    """Log Python warnings (``py.warnings``) once per distinct text and place, values masked.

    Libraries warn per dataset opened (rio-tiler's ``NoOverviewWarning``), and any
    ``warnings.catch_warnings()`` (rio-tiler and this package use it per tile rendered)
    resets Python's memory of what was shown, so the same warning went to stderr again and
    again (thousands of lines per 10,000 tiles); now it is logged the first time only, by
    :class:`WarningLog` (which also keeps request values out of the log).
    """
    if not isinstance(warnings.showwarning, WarningLog):
        warnings.showwarning = WarningLog()


def configure_gdal() -> None:
    """Set :data:`~tiler.engine.io.GDAL_DEFAULTS` where the environment has no value.

    Also works around a leak of rasterio (:func:`~tiler.engine.io.default_transform`).
    """
    for key, value in GDAL_DEFAULTS.items():
        os.environ.setdefault(key, value)
    remember_default_transforms()


#: glibc's mallopt parameter that fixes the size from which allocations are mmapped
_M_MMAP_THRESHOLD = -3


def configure_malloc(threshold: int = 128 * 1024) -> None:
    """Return large buffers (numpy arrays, GDAL blocks) to the system when freed (glibc).

    glibc raises its mmap threshold to the size of each large block freed, so after the
    first tiles their arrays come from the heap, which then fragments: about 120 MB of
    free but unreturned heap per worker on the demo. A fixed threshold keeps them mmapped.
    Skipped when ``MALLOC_MMAP_THRESHOLD_`` is set (glibc reads it itself) or not glibc.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, threshold)
    except (OSError, AttributeError):
        logger.debug("not glibc: malloc left as it is")


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (loading creates millions of acyclic objects).

    Without the pause the collector runs over and over while a large collection loads
    and takes about 3/4 of the time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def serve_app(settings: Settings | None = None) -> FastAPI:
    """The app of a server process: GDAL defaults set, catalogues loaded and frozen.

    Args:
        settings: settings (default: from the environment, as uvicorn workers read them).
    """
    settings = settings or Settings()
    configure_logging(settings.log_level)
    configure_warnings()
    configure_malloc()
    configure_gdal()
    with paused_gc():
        catalogs = load_catalogs(settings)
    gc.freeze()  # the loaded items live as long as the process: keep the collector off them
    return create_app(settings, catalogs)
