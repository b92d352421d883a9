"""A bounded in-memory cache of rendered responses, and ETag handling."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from cachetools import LRUCache
from starlette.requests import Request


@dataclass(frozen=True)
class Rendered:
    """A rendered body with what its response needs."""

    content: bytes
    media_type: str
    headers: dict[str, str]

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
        query = "&".join(f"{k}={v}" for k, v in sorted(request.query_params.multi_items()))
        return f"{request.url.path}?{query}"

    def get(self, key: str) -> Rendered | None:
        """A cached body, or None."""
        if self._lru is None:
            return None
        with self._lock:
            return self._lru.get(key)

    def put(self, key: str, value: Rendered) -> None:
        """Keep a body (skipped if larger than the whole cache)."""
        if self._lru is None or len(value.content) + 256 > self.max_bytes:
            return
        with self._lock:
            self._lru[key] = value


def not_modified(request: Request, etag: str) -> bool:
    """True when the client's ``If-None-Match`` already names ``etag``."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return etag in tags or "*" in tags
