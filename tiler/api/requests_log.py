"""Request ids and the access log.

Every request has an id: the client's ``X-Request-ID`` when it is 1 to 64 characters of
``[A-Za-z0-9._-]`` (a proxy's, so that its log and this server's share it), else a new one
(32 hex digits). It is the current :data:`REQUEST_ID` while the request runs, so
:class:`RequestIdFilter` writes it into every log record of the request (threads that the
request's work starts with its context copied, as Starlette's thread pool does, have it too),
and it is returned in ``X-Request-ID`` and in every JSON error body
(:func:`with_request_id`).

:class:`AccessLog` writes one line per request: method, route group, path template (never
the path's values nor the query string, which may carry a token), status, duration, and what
the response's own headers say of the work (items read, rendered-tile cache).
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass, field

#: the current request's id ("" outside a request)
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="")

#: what an accepted ``X-Request-ID`` looks like (anything else is replaced)
VALID_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

#: the header, lower-case as in ASGI
HEADER = b"x-request-id"


def request_id(header: bytes | None) -> str:
    """The id of a request whose ``X-Request-ID`` is ``header`` (a new one if it is not valid)."""
    if header:
        text = header.decode("latin-1")
        if VALID_ID.fullmatch(text):
            return text
    return f"{random.getrandbits(128):032x}"  # an id, not a secret: no system call


class RequestIdFilter(logging.Filter):
    """Sets ``record.request_id`` to the current request's id (not set outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the id; never drops a record."""
        current = REQUEST_ID.get()
        if current and not getattr(record, "request_id", None):
            record.request_id = current
        return True


def with_request_id(body: bytes, encoding: str, rid: str) -> bytes | None:
    """A JSON error body with ``"request_id": rid`` added, or None if it is not a JSON object.

    Args:
        body: the body as sent (``encoding`` ``gzip`` or identity).
        encoding: the response's ``Content-Encoding`` ("" for none).
        rid: the request id.
    """
    if encoding not in ("", "identity", "gzip"):
        return None
    try:
        raw = gzip.decompress(body) if encoding == "gzip" else body
        doc = json.loads(raw)
    except (ValueError, OSError, EOFError):  # not JSON, or not gzip after all
        return None
    if not isinstance(doc, dict):
        return None
    doc["request_id"] = rid
    out = json.dumps(doc).encode()
    return gzip.compress(out) if encoding == "gzip" else out


@dataclass
class Work:
    """What a response's headers say about the work behind it (mosaic routes only)."""

    considered: int | None = None
    read: int | None = None
    used: int | None = None
    skipped: int = 0
    cache: str | None = None
    coalesced: bool = False
    retry_after: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_headers(cls, headers: list[tuple[bytes, bytes]]) -> Work:
        """What ``X-Items-*``, ``X-Cache``, ``X-Coalesced``, ``Retry-After`` and timings say."""
        work = cls()
        for name, value in headers:
            if not name.startswith((b"x-", b"server-timing", b"retry-after")):
                continue
            key = name.decode("latin-1")
            text = value.decode("latin-1")
            if key == "x-items-considered":
                work.considered = _int(text)
            elif key == "x-items-read":
                work.read = _int(text)
            elif key == "x-items-used":
                work.used = _int(text)
            elif key == "x-items-skipped":
                work.skipped = text.count("; ") + 1 if text else 0
            elif key == "x-cache":
                work.cache = text
            elif key == "x-coalesced":
                work.coalesced = True
            elif key == "retry-after":
                work.retry_after = True
            elif key == "server-timing":
                work.timings = _timings(text)
        return work


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def add_timing(headers: dict[str, str], stage: str, seconds: float) -> None:
    """Append ``stage`` and its duration to the ``Server-Timing`` of ``headers``."""
    timing = f"{stage};dur={seconds * 1000:.2f}"
    before = headers.get("Server-Timing")
    headers["Server-Timing"] = f"{before}, {timing}" if before else timing


def _timings(header: str) -> dict[str, float]:
    """``{stage: seconds}`` of a ``Server-Timing`` header (``name;dur=ms, ...``)."""
    out: dict[str, float] = {}
    for part in header.split(","):
        name, _, rest = part.strip().partition(";")
        _, _, dur = rest.partition("dur=")
        try:
            out[name] = float(dur) / 1000
        except ValueError:
            continue
    return out


@dataclass(frozen=True)
class Route:
    """What a request is, for logs and metrics: a few fixed values, never the raw path.

    Attributes:
        group: ``tile``, ``point``, ``export``, ``items``, ``metadata``, ``health`` or
            ``other``.
        template: the route's path template (``/collections/{collection_id}/items``);
            ``-`` when no route matches.
        collection: the collection id when it is one of the served collections, else "".
    """

    group: str
    template: str
    collection: str = ""


class AccessLog:
    """One line per request on the ``tiler.access`` logger (INFO; 5xx at WARNING).

    503 answers (a busy worker shedding load) are logged at most ``busy_per_second`` a
    second; the next one logged says how many were not. A retry storm of hundreds of
    refusals a second would otherwise spend the worker's CPU writing its log (the metrics
    count every one).
    """

    def __init__(self, logger: logging.Logger | None = None, busy_per_second: int = 10) -> None:
        self.logger = logger or logging.getLogger("tiler.access")
        self.busy_per_second = busy_per_second
        self._second = 0
        self._busy_logged = 0
        self._busy_unlogged = 0

    def _busy_line(self) -> int | None:
        """None: do not log this 503; else the number of 503s not logged before it."""
        now = int(time.monotonic())
        if now != self._second:
            self._second, self._busy_logged = now, 0
        if self._busy_logged >= self.busy_per_second:
            self._busy_unlogged += 1
            return None
        self._busy_logged += 1
        unlogged, self._busy_unlogged = self._busy_unlogged, 0
        return unlogged

    def write(
        self, method: str, route: Route, status: int, seconds: float, size: int, work: Work
    ) -> None:
        """Log one request's line (the request id comes from :class:`RequestIdFilter`)."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        unlogged = self._busy_line() if status == 503 else 0
        if unlogged is None:
            return
        fields: dict[str, object] = {
            "method": method,
            "group": route.group,
            "route": route.template,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "bytes": size,
        }
        if route.collection:
            fields["collection"] = route.collection
        if work.read is not None:
            fields["items_considered"] = work.considered
            fields["items_read"] = work.read
            fields["items_used"] = work.used
            fields["items_skipped"] = work.skipped
        if work.cache is not None:
            fields["cache"] = work.cache
        if work.coalesced:
            fields["coalesced"] = True
        if unlogged:
            fields["busy_not_logged"] = unlogged
        extra = " ".join(f"{k}={fields[k]}" for k in list(fields)[6:])
        self.logger.log(
            logging.WARNING if status >= 500 else logging.INFO,
            "%s %s %s %d %.1f ms%s",
            method,
            route.group,
            route.template,
            status,
            seconds * 1000,
            f" {extra}" if extra else "",
            extra={"access": fields},
        )
