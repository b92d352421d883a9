"""Responses of rendered bodies: a bounded cache, ETag / 304, and the mosaic's headers."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from urllib.parse import parse_qsl

from cachetools import LRUCache
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from tiler.engine.mosaic import MosaicStats


@dataclass(frozen=True)
class Rendered:
    """A rendered body with what its response needs."""

    content: bytes
    media_type: str
    headers: dict[str, str]

    @property
    def complete(self) -> bool:
        """False when items were skipped (the body has holes): never cache it."""
        return "X-Items-Skipped" not in self.headers

    @property
    def etag(self) -> str:
        """Strong ETag: a digest of the body."""
        return '"' + hashlib.blake2b(self.content, digest_size=12).hexdigest() + '"'


class ResponseCache:
    """LRU cache of :class:`Rendered` bodies, bounded by their total size in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._lru: LRUCache[str, Rendered] | None = (
            LRUCache(maxsize=max_bytes, getsizeof=lambda r: len(r.content) + 256)
            if max_bytes > 0
            else None
        )
        self._lock = threading.Lock()

    @staticmethod
    def key(request: Request) -> str:
        """The full request identity: path and sorted query parameters."""
        return request_key(request.scope)

    def get(self, key: str) -> Rendered | None:
        """A cached body, or None."""
        if self._lru is None:
            return None
        with self._lock:
            hit: Rendered | None = self._lru.get(key)
        return hit

    def put(self, key: str, value: Rendered) -> None:
        """Keep a body (not if it is incomplete or larger than the whole cache)."""
        if self._lru is None or not value.complete or len(value.content) + 256 > self.max_bytes:
            return
        with self._lock:
            self._lru[key] = value


def request_key(scope: Scope) -> str:
    """A request's identity from its ASGI scope: its path and sorted query parameters.

    Computed from the scope alone (no :class:`~starlette.requests.Request`), as the
    admission middleware needs it for every request before any parsing.
    """
    query = scope.get("query_string", b"").decode("latin-1")
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    path: str = scope["path"]
    return path + "?" + "&".join(f"{k}={v}" for k, v in pairs)


#: media types some libraries write that are not registered ones (titiler's ``jpg``)
_REGISTERED = {"image/jpg": "image/jpeg"}


def registered_media_type(media_type: str) -> str:
    """The registered name of ``media_type`` (``image/jpeg`` for ``image/jpg``)."""
    return _REGISTERED.get(media_type, media_type)


def not_modified(request: Request, etag: str) -> bool:
    """True when the client's ``If-None-Match`` already names ``etag``."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return etag in tags or "*" in tags


def respond(
    request: Request, rendered: Rendered, cache_control: str, cached: bool = False
) -> Response:
    """The response for a rendered body: 304 when the client has it, else the body.

    A body that misses skipped items (``X-Items-Skipped``: a file was missing, broken or too
    slow) is incomplete, maybe for a moment only: ``Cache-Control: no-store`` and no ETag,
    so neither a browser nor a CDN keeps the hole.
    """
    headers = {**rendered.headers, "X-Cache": "hit" if cached else "miss"}
    media_type = registered_media_type(rendered.media_type)
    if not rendered.complete:
        headers["Cache-Control"] = "no-store"
        return Response(rendered.content, media_type=media_type, headers=headers)
    etag = rendered.etag
    headers.update({"ETag": etag, "Cache-Control": cache_control})
    if not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    return Response(rendered.content, media_type=media_type, headers=headers)


def stats_headers(stats: MosaicStats) -> dict[str, str]:
    """Observability headers of a mosaic response."""
    headers = {
        "X-Items-Considered": str(stats.considered),
        "X-Items-Read": str(stats.read),
        "X-Items-Used": str(len(stats.used)),
        "X-Early-Exit": "1" if stats.exited_early else "0",
        "Server-Timing": ", ".join(f"{k};dur={v:.2f}" for k, v in stats.timings.items()),
    }
    if stats.skipped:
        headers["X-Items-Skipped"] = "; ".join(
            f"{k}: {v}".replace("\n", " ")[:300] for k, v in stats.skipped.items()
        )[:4000]
    return headers
