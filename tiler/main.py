"""The FastAPI application: ``create_app(settings)``; nothing is configured at import."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from titiler.core.factory import TMSFactory

from tiler import __version__, errors
from tiler.cache import ResponseCache
from tiler.collection import Collection, load_collections
from tiler.export import router as export_router
from tiler.maps import router as maps_router
from tiler.point import router as point_router
from tiler.routes import router
from tiler.settings import Settings

logger = logging.getLogger(__name__)

#: the built browser viewer (frontend/ builds into it)
VIEWER = Path(__file__).parent / "static" / "viewer"

#: GDAL settings for reading COGs; set unless the environment already has them.
GDAL_DEFAULTS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "GDAL_HTTP_VERSION": "2",
    "GDAL_CACHEMAX": "200",
    "CPL_VSIL_CURL_CACHE_SIZE": "200000000",
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": "5000000",
}


def create_app(
    settings: Settings | None = None, collections: dict[str, Collection] | None = None
) -> FastAPI:
    """Build the application.

    Args:
        settings: settings (default: from the environment).
        collections: collections to serve (default: load ``settings.collections``, or the
            built-in demo when that is empty).

    Returns:
        The FastAPI app.
    """
    settings = settings or Settings()
    for key, value in GDAL_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if collections is None:
        paths = list(settings.collections)
        if not paths:
            from tiler.demo import ensure_demo

            paths = [ensure_demo(settings.demo_dir)]
        collections = load_collections(paths)
        # the loaded items live as long as the app: keep the cycle collector off them
        gc.freeze()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="qualitymosaic",
        version=__version__,
        description="Exact per-pixel quality mosaics (Earth Engine's qualityMosaic) of "
        "STAC collections as map tiles.",
        root_path=settings.root_path,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.collections = collections
    app.state.pool = ThreadPoolExecutor(
        max_workers=settings.read_threads, thread_name_prefix="read"
    )
    app.state.cache = ResponseCache(settings.tile_cache_bytes)
    app.state.summaries = {}
    errors.install(app)
    app.include_router(router)
    app.include_router(maps_router)
    app.include_router(point_router)
    app.include_router(export_router)
    app.include_router(TMSFactory().router, tags=["Tiling Schemes"])

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
    def healthz() -> dict[str, object]:
        return {"status": "ok", "version": __version__, "collections": len(collections)}

    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "HEAD", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=["*"],
    )
    app.add_middleware(GZipMiddleware, minimum_size=1000)
    return app
