"""The FastAPI application: ``create_app(settings)`` wires catalogues, engine and routers.

``create_app`` has no process-wide side effects. A server process starts through
:func:`serve_app` (what ``tiler serve`` and ``uvicorn tiler.app:serve_app --factory``
run, in every worker), which also sets the process up (:mod:`tiler.process`: logging,
warnings, malloc and GDAL's defaults for COGs) and loads the catalogues with Python's cyclic
garbage collector paused, then freezes them.
In front of the routes: :class:`~tiler.api.head.HeadAsGet` (HEAD answered like GET),
:class:`~tiler.api.observe.Observe` (request ids, access log, metrics), gzip, CORS,
:class:`~tiler.api.body.BodyLimit` (request bodies bounded) and
:class:`~tiler.api.admission.Admission` (work in flight bounded, identical requests
shared, deadlines, disconnects).
"""

from __future__ import annotations

import dataclasses
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware

from tiler import __version__, errors
from tiler.api import collections, export, maps, point, tiles
from tiler.api.admission import Admission, Coalescer
from tiler.api.body import BodyLimit
from tiler.api.head import HeadAsGet
from tiler.api.metrics import Metrics, ObservedGate
from tiler.api.observe import Observe, RouteGroups
from tiler.api.redirect import SlashRedirect
from tiler.api.requests_log import RequestIdFilter
from tiler.api.responses import ResponseCache
from tiler.catalog.baked import BakedLayer, BakedLayerError, BakedLayers
from tiler.catalog.base import Catalog
from tiler.catalog.coverage import MinZoom
from tiler.catalog.sources import open_catalogs
from tiler.engine.baked import band_types, open_layers
from tiler.engine.expression import parse
from tiler.engine.service import Engine
from tiler.errors import TilerError
from tiler.process import (
    configure_gdal,
    configure_logging,
    configure_malloc,
    configure_warnings,
    paused_gc,
)
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


def load_baked(settings: Settings, catalogs: dict[str, Catalog], engine: Engine) -> BakedLayers:
    """Open the baked layers ``settings`` name, each checked against its served collection.

    A layer's quality is normalised by the collection's parser (as requests' are).

    Raises:
        BakedLayerError: a file that cannot be opened or is not a ``tiler export`` COG, of a
            collection not served, or whose quality the collection cannot parse: the
            server does not start (as titiler refuses a mosaic it cannot open).
    """
    layers: list[BakedLayer] = []
    for layer in open_layers(settings.baked, engine.datasets):
        catalog = catalogs.get(layer.collection)
        if catalog is None:
            raise BakedLayerError(
                f"baked layer {layer.name!r} is of collection {layer.collection!r}, which is "
                f"not served (served: {', '.join(sorted(catalogs)) or '(none)'})"
            )
        info = catalog.info()
        try:
            quality = parse(layer.quality, info.bands, info.aliases).text
        except TilerError as exc:
            raise BakedLayerError(f"baked layer {layer.name!r}: {exc}") from exc
        types = band_types(layer, catalog.sample(), info.data_types, engine.datasets)
        layers.append(dataclasses.replace(layer, quality=quality, types=types))
    return BakedLayers(layers)


def create_app(
    settings: Settings | None = None, catalogs: dict[str, Catalog] | None = None
) -> FastAPI:
    """Build the application.

    Args:
        settings: settings (default: from the environment).
        catalogs: catalogues to serve by id (default: :func:`load_catalogs`).

    Returns:
        The FastAPI app; its engine starts with it and is closed at shutdown.

    Raises:
        BakedLayerError: a baked layer of ``settings`` cannot be served (see
            :func:`load_baked`).
    """
    settings = settings or Settings()
    if catalogs is None:
        catalogs = load_catalogs(settings)
    engine = Engine.from_settings(settings)
    try:
        baked = load_baked(settings, catalogs, engine)
    except BakedLayerError:
        engine.close()
        raise
    gate = ObservedGate(
        limit=settings.max_in_flight or 2 * settings.read_threads,
        timeout=settings.request_timeout,
        queue_wait=settings.max_queue_wait,
        min_queue=0 if settings.max_queue_wait == 0 else None,
    )
    metrics = None
    if settings.metrics:
        kinds = {cid: type(catalog).__name__ for cid, catalog in catalogs.items()}
        metrics = Metrics(settings.metrics_collection_labels, kinds)
        gate.watch(metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if metrics is not None:
            metrics.close()
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
    app.state.baked = baked
    app.state.cache = ResponseCache(settings.tile_cache_bytes)
    app.state.gate = gate
    app.state.coalescer = Coalescer()
    app.state.min_zoom = MinZoom(settings.max_items_per_tile, ttl=settings.search_cache_ttl or 300)
    errors.install(app)
    routers = [module.router for module in (collections, tiles, maps, point, export)]
    for router in routers:
        app.include_router(router)
    tms_router = maps.PublicTMSFactory().router
    app.include_router(tms_router, tags=["Tiling Schemes"])

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

    @app.get("/healthz", summary="Liveness: the process answers", tags=["health"])
    def healthz() -> JSONResponse:
        """200 while the process serves (a liveness probe); catalogues are not checked."""
        body = {
            "status": "ok",
            "version": __version__,
            "collections": len(catalogs),
            "load": gate.status(),
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    @app.get("/readyz", summary="Readiness: the catalogues are reachable", tags=["health"])
    def readyz() -> JSONResponse:
        """200 when every catalogue answers, else 503 (a readiness probe)."""
        states = {cid: catalog.health() for cid, catalog in catalogs.items()}
        ok = all(s["status"] == "ok" for s in states.values())
        if metrics is not None:
            metrics.readiness(states)
        body = {"status": "ok" if ok else "unavailable", "catalogs": states}
        headers = {"Cache-Control": "no-store"}
        return JSONResponse(body, status_code=200 if ok else 503, headers=headers)

    if metrics is not None:

        @app.get("/metrics", summary="Prometheus metrics", tags=["health"])
        def prometheus() -> Response:
            """Prometheus text format; all worker processes together."""
            assert metrics is not None
            content, media_type = metrics.render()
            return Response(content, headers={"Content-Type": media_type})

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
    app.state.route_groups = RouteGroups(
        [r for router in [*routers, tms_router] for r in router.routes] + app.routes,
        list(catalogs),
    )
    app.add_middleware(  # every answer gets its request id, is logged and counted
        Observe, routes=app.state.route_groups, metrics=metrics
    )
    app.add_middleware(HeadAsGet)  # outermost: HEAD gets GET's exact headers (gzip, id too)
    return app


def serve_app(settings: Settings | None = None) -> FastAPI:
    """The app of a server process: GDAL defaults set, catalogues loaded and frozen.

    Args:
        settings: settings (default: from the environment, as uvicorn workers read them).
    """
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format, [RequestIdFilter()])
    configure_warnings()
    configure_malloc()
    configure_gdal()
    with paused_gc():
        catalogs = load_catalogs(settings)
    gc.freeze()  # the loaded items live as long as the process: keep the collector off them
    return create_app(settings, catalogs)
