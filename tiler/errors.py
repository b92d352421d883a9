"""Exception hierarchy and the one place that maps exceptions to HTTP status codes."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from rio_tiler.errors import InvalidExpression, TileOutsideBounds
from starlette import status
from starlette.requests import Request
from starlette.responses import JSONResponse
from titiler.core.errors import DEFAULT_STATUS_CODES, add_exception_handlers

logger = logging.getLogger(__name__)


def quoted(text: object, limit: int = 120) -> str:
    """The user's text for a message, never echoed whole.

    ``repr``-quoted (control characters escaped), cut to ``limit`` characters.
    """
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "...")


class TilerError(Exception):
    """Base class of every error this package raises on purpose."""


class RequestCancelled(TilerError):
    """Nobody waits for the request's result any more (its client disconnected)."""


class DeadlineExceeded(TilerError):
    """The request's work ran past its deadline (``TILER_REQUEST_TIMEOUT``)."""

    def __init__(self, limit: float) -> None:
        super().__init__(
            f"the request's work took longer than the limit of {limit:g} s; ask for less "
            "(a narrower date range, fewer items, a smaller area or a higher zoom) or retry later"
        )
        self.limit = limit


class BadRequest(TilerError):
    """The request is malformed: a parameter value is not allowed."""


class InvalidQualityExpression(BadRequest):
    """A quality expression does not parse, or names a band that does not exist."""


class InvalidBands(BadRequest):
    """An output band does not exist in the collection."""


class InvalidFilter(BadRequest):
    """A datetime, bbox, ids, CQL2 filter or sortby value is malformed."""


class InvalidVisualisation(BadRequest):
    """min/max/gamma/palette/rescale values do not fit the request."""


class InvalidCRS(BadRequest):
    """A CRS parameter is not an allowed form, or coordinates lie outside the CRS's range."""


class InvalidNodata(BadRequest):
    """A nodata override is not a number the bands' data type can hold."""


class InvalidGeometry(BadRequest):
    """A GeoJSON geometry is empty, has no area, or has coordinates that are not finite."""


class NotFound(TilerError):
    """The requested resource does not exist."""


class CollectionNotFound(NotFound):
    """The collection id is not one of the served collections."""


class TileNotFound(NotFound):
    """The tile lies outside the tile matrix set."""


class TooLarge(TilerError):
    """The request asks for too much work (pixels, items)."""


class TooManyItems(TooLarge):
    """More items match a request than a mosaic may read; never answered partially."""

    def __init__(self, matched: int | None, limit: int, zoom: int | None = None) -> None:
        count = (
            f"{matched} items match this request, more than the limit of {limit}"
            if matched is not None
            else f"More than {limit} items (the limit) match this request"
        )
        where = f"zoom in to {zoom} or narrow the dates" if zoom is not None else "zoom in"
        super().__init__(f"{count}: {where} (narrow it with datetime, bbox, ids or filter)")
        self.matched = matched
        self.limit = limit
        self.zoom = zoom


class CollectionLoadError(TilerError):
    """A collection file cannot be read or is not STAC."""


class CatalogUnavailable(TilerError):
    """A catalogue's database or API cannot be reached right now (a 503; it may come back)."""


class UpstreamError(TilerError):
    """A remote catalogue (a STAC API) answered with an error or nonsense (a 502)."""


class UpstreamTimeout(UpstreamError):
    """A remote catalogue did not answer in time (a 504)."""


class AccessDenied(UpstreamError):
    """Every item of a request was refused by its storage (401/403, or no token): a 502.

    Attributes:
        hosts: the storage hosts that refused (never a URL, path or token).
    """

    def __init__(self, hosts: list[str]) -> None:
        names = ", ".join(hosts)
        super().__init__(
            f"every item was refused by {names} (HTTP 401/403): credentials are missing, "
            "expired or refused; see README, Public catalogues"
        )
        self.hosts = hosts


STATUS_CODES: dict[type[Exception], int] = {
    **DEFAULT_STATUS_CODES,
    BadRequest: status.HTTP_400_BAD_REQUEST,
    InvalidExpression: status.HTTP_400_BAD_REQUEST,
    NotFound: status.HTTP_404_NOT_FOUND,
    TileOutsideBounds: status.HTTP_404_NOT_FOUND,
    TooLarge: status.HTTP_400_BAD_REQUEST,
    CollectionLoadError: status.HTTP_500_INTERNAL_SERVER_ERROR,
    CatalogUnavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
    UpstreamError: status.HTTP_502_BAD_GATEWAY,
    AccessDenied: status.HTTP_502_BAD_GATEWAY,
    UpstreamTimeout: status.HTTP_504_GATEWAY_TIMEOUT,
}


async def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Answer a parameter that fails validation with a readable 400 message."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path"))
        parts.append(f"{where}: {err.get('msg')}")
    return JSONResponse(
        {
            "detail": "; ".join(parts)[:2000] or "invalid request",
            "errors": [_shortened(e) for e in jsonable_encoder(exc.errors())[:20]],
        },
        status_code=status.HTTP_400_BAD_REQUEST,
    )


def _shortened(error: dict[str, Any]) -> dict[str, Any]:
    """A validation error whose ``input`` is quoted in part, never echoed whole."""
    value = error.get("input")
    if isinstance(value, str) and len(value) > 200:
        error["input"] = value[:200] + "..."
    elif value is not None and not isinstance(value, str | int | float | bool):
        text = str(value)
        error["input"] = text if len(text) <= 200 else text[:200] + "..."
    return error


def _internal_error(exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": f"internal error ({type(exc).__name__}); the server log has the details"},
        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


async def _internal_handler(request: Request, exc: Exception) -> JSONResponse:
    """A 500 of a known family (GDAL, rio-tiler...): no path or URL; the log has them."""
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _internal_error(exc)


async def _deadline_exceeded(request: Request, exc: Exception) -> JSONResponse:
    """504: the request's work ran past its deadline."""
    logger.warning("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": str(exc)}, status_code=504, headers={"Cache-Control": "no-store"}
    )


async def _cancelled(request: Request, exc: Exception) -> JSONResponse:
    """499 (client closed request, shows in the access log): nobody reads it."""
    logger.info("%s %s stopped: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": f"stopped: {exc}"}, status_code=499)


async def _too_many_items(request: Request, exc: Exception) -> JSONResponse:
    """400 with the zoom where the map works as data (``minzoom``), not only in the text."""
    body: dict[str, Any] = {"detail": str(exc)}
    if isinstance(exc, TooManyItems):
        body.update(matched=exc.matched, limit=exc.limit)
        if exc.zoom is not None:
            body["minzoom"] = exc.zoom
    return JSONResponse(body, status_code=status.HTTP_400_BAD_REQUEST)


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    """Any other exception: the same 500 (Starlette raises it again after, the server logs it)."""
    return _internal_error(exc)


# ---------------------------------------------------------------------------------------
# what responses say about a skipped item: ids and a reason, never a path or URL

_URL = re.compile(r"(?:\b[A-Za-z][A-Za-z0-9+.\-]*://|/vsi[a-z0-9_]+/)[^\s'\"]*")
_PATH = re.compile(r"(?<![\w.:/])(?:~|\.{1,2})?/[^\s'\":]*|\b[A-Za-z]:\\[^\s'\"]*")


def redact(text: str) -> str:
    """``text`` with URLs and file paths replaced by ``<url>`` and ``<path>``."""
    return _PATH.sub("<path>", _URL.sub("<url>", text))


# ---------------------------------------------------------------------------------------
# OpenAPI: what the API answers (400 with this JSON shape, not FastAPI's 422)

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "What was wrong and what is allowed."},
        "errors": {
            "type": "array",
            "items": {"type": "object"},
            "description": "Parameter validation errors, one per parameter (400 only).",
        },
    },
}
_ERROR_RESPONSES = {
    "400": "Bad request: a parameter is malformed or not allowed; `detail` says what was "
    "wrong and what is allowed.",
    "404": "Not found: an unknown collection or tile matrix set, or a tile outside the matrix.",
    "413": "Payload too large: the request body exceeds TILER_MAX_BODY_BYTES.",
    "503": "Service unavailable: overloaded (see Retry-After) or a catalogue cannot be "
    "reached right now.",
    "502": "Bad gateway: a remote catalogue (a STAC API) answered with an error, or the "
    "storage of every item refused its credentials (missing, expired or refused).",
    "504": "Gateway timeout: the request's work passed its time limit, or a remote catalogue "
    "did not answer in time.",
}


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace FastAPI's documented 422 by the 4xx/5xx the API answers (in place)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Error"] = ERROR_SCHEMA
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            responses.pop("422", None)
            responses.setdefault("400", _error_response(_ERROR_RESPONSES["400"]))
            if "{" in path:
                responses.setdefault("404", _error_response(_ERROR_RESPONSES["404"]))
            if "requestBody" in operation:
                responses.setdefault("413", _error_response(_ERROR_RESPONSES["413"]))
            if "{collection_id}" in path:
                for code in ("502", "504"):
                    responses.setdefault(code, _error_response(_ERROR_RESPONSES[code]))
            responses.setdefault("503", _error_response(_ERROR_RESPONSES["503"]))
    return schema


def _documented_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(original())
        return app.openapi_schema

    return openapi


def install(app: FastAPI) -> None:
    """Register the status map, the validation and 500 handlers, and their OpenAPI."""
    add_exception_handlers(app, STATUS_CODES)
    # titiler's handlers answer str(exc), which names files and URLs: not for 500s
    for exc_class, code in STATUS_CODES.items():
        if code == status.HTTP_500_INTERNAL_SERVER_ERROR and exc_class is not Exception:
            app.add_exception_handler(exc_class, _internal_handler)
    app.add_exception_handler(Exception, _unexpected_handler)
    app.add_exception_handler(DeadlineExceeded, _deadline_exceeded)
    app.add_exception_handler(TooManyItems, _too_many_items)
    app.add_exception_handler(RequestCancelled, _cancelled)
    app.add_exception_handler(RequestValidationError, _validation_handler)  # type: ignore[arg-type]
    app.openapi = _documented_openapi(app)  # type: ignore[method-assign]
