"""Exception hierarchy and the one place that maps exceptions to HTTP status codes."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from rio_tiler.errors import InvalidExpression, TileOutsideBounds
from starlette import status
from starlette.requests import Request
from starlette.responses import JSONResponse
from titiler.core.errors import DEFAULT_STATUS_CODES, add_exception_handlers


class TilerError(Exception):
    """Base class of every error this package raises on purpose."""


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


class NotFound(TilerError):
    """The requested resource does not exist."""


class CollectionNotFound(NotFound):
    """The collection id is not one of the served collections."""


class TileNotFound(NotFound):
    """The tile lies outside the tile matrix set."""


class TooLarge(TilerError):
    """The request asks for too much work (pixels, items)."""


class CollectionLoadError(TilerError):
    """A collection file cannot be read or is not STAC."""


class CatalogUnavailable(TilerError):
    """A catalogue's database or API cannot be reached right now (a 503; it may come back)."""


class UpstreamError(TilerError):
    """A remote catalogue (a STAC API) answered with an error or nonsense (a 502)."""


class UpstreamTimeout(UpstreamError):
    """A remote catalogue did not answer in time (a 504)."""


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
            "detail": "; ".join(parts) or "invalid request",
            "errors": jsonable_encoder(exc.errors()),
        },
        status_code=status.HTTP_400_BAD_REQUEST,
    )


def install(app: FastAPI) -> None:
    """Register the status map and the validation handler on ``app``."""
    add_exception_handlers(app, STATUS_CODES)
    app.add_exception_handler(RequestValidationError, _validation_handler)  # type: ignore[arg-type]
