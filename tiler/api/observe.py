"""The middleware in front of all others but HEAD's: request ids, access log, request metrics.

:class:`Observe` sees every HTTP request before anything else: it gives the request its id
(:mod:`tiler.api.requests_log`), finds its route group (:class:`RouteGroups`), and once the
answer is sent writes the access line and counts it (:class:`~tiler.api.metrics.Metrics`),
reading what the work was from the answer's own headers (``X-Items-*``, ``X-Cache``,
``Server-Timing``). Every answer gets ``X-Request-ID``; a JSON error body (status 400 and
above, whichever layer wrote it: a route, the admission middleware, the body limit) gets
``"request_id"``. An exception that escapes the application is answered here with the
API's JSON 500 (then raised again for the server's log). HEAD requests come as GET
(:class:`~tiler.api.head.HeadAsGet` is outside), so their headers are exactly GET's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from starlette.routing import BaseRoute, Match, Mount
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tiler.api.metrics import Metrics
from tiler.api.requests_log import (
    HEADER,
    REQUEST_ID,
    AccessLog,
    Route,
    Work,
    request_id,
    with_request_id,
)

#: what answers whose route matched nothing are (404, 405)
UNMATCHED = Route("other", "-")
#: the status logged when the application sent no answer (the client went away)
CLOSED = 499
#: routes of the liveness, readiness and metrics probes
PROBES = ("/healthz", "/readyz", "/metrics")


def route_group(template: str) -> str:
    """The group of a route's path template."""
    if "/tiles/{tileMatrixSetId}/{z}/{x}/{y}" in template:
        return "tile"
    if "/point/" in template:
        return "point"
    if "/bbox/" in template or template.endswith("/feature"):
        return "export"
    if template.endswith("/items"):
        return "items"
    if template in PROBES:
        return "health"
    if template.startswith(("/collections", "/tileMatrixSets", "/openapi.json")):
        return "metadata"
    return "other"


class RouteGroups:
    """Which route a request is for, by matching the application's routes as its router does.

    Args:
        routes: the application's routes (in the router's order).
        collections: the served collection ids (any other id is never reported).
    """

    def __init__(self, routes: Sequence[BaseRoute], collections: Sequence[str] = ()) -> None:
        self.routes: list[tuple[BaseRoute, Route]] = []
        for route in routes:
            if isinstance(route, StarletteRoute | Mount):
                template = route.path
                self.routes.append((route, Route(route_group(template), template)))
        self.collections = frozenset(collections)

    def match(self, scope: Scope) -> Route:
        """The request's :class:`Route` (:data:`UNMATCHED` when none matches)."""
        partial: Route | None = None
        for route, found in self.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return self._with_collection(found, child)
            if match is Match.PARTIAL and partial is None:
                partial = self._with_collection(found, child)
        return partial or UNMATCHED

    def _with_collection(self, found: Route, child: Scope) -> Route:
        cid = child.get("path_params", {}).get("collection_id")
        if isinstance(cid, str) and cid in self.collections:
            return Route(found.group, found.template, cid)
        return found


class _Answer:
    """The client's ``send``: adds ``X-Request-ID``, records what was answered."""

    def __init__(self, send: Send, rid: str) -> None:
        self._send = send
        self.rid = rid
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.size = 0
        self._held: Message | None = None
        self._body = bytearray()

    @property
    def started(self) -> bool:
        return self.status != 0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = [*message.get("headers", []), (HEADER, self.rid.encode())]
            message = {**message, "headers": self.headers}
            if self.status >= 400 and self._is_json():
                self._held = message  # the body gets the request id: wait for it
                return
        elif message["type"] == "http.response.body":
            self.size += len(message.get("body", b""))
            if self._held is not None:
                self._body += message.get("body", b"")
                if message.get("more_body", False):
                    return
                await self._release()
                return
        await self._send(message)

    def _header(self, name: bytes) -> str:
        for key, value in self.headers:
            if key.lower() == name:
                return value.decode("latin-1")
        return ""

    def _is_json(self) -> bool:
        return self._header(b"content-type").startswith("application/json")

    async def _release(self) -> None:
        held, body = self._held, bytes(self._body)
        assert held is not None
        self._held = None
        rewritten = with_request_id(body, self._header(b"content-encoding"), self.rid)
        if rewritten is not None:
            body = rewritten
            self.headers = [
                (k, str(len(body)).encode() if k.lower() == b"content-length" else v)
                for k, v in self.headers
            ]
            held = {**held, "headers": self.headers}
        await self._send(held)
        await self._send({"type": "http.response.body", "body": body})

    async def internal_error(self, exc: Exception) -> None:
        """Answer the API's JSON 500 for an exception that escaped the application."""
        detail = f"internal error ({type(exc).__name__}); the server log has the details"
        body = json.dumps({"detail": detail, "request_id": self.rid}).encode()
        self._held = None
        await self.send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await self.send({"type": "http.response.body", "body": body})


@dataclass
class Observe:
    """The middleware (see the module's description).

    Attributes:
        app: the application inside.
        routes: the request's route group and template are found among them.
        metrics: where requests are counted (None: metrics off).
        access_log: the access log (default: the ``tiler.access`` logger).
    """

    app: ASGIApp
    routes: RouteGroups
    metrics: Metrics | None = None
    access_log: AccessLog = field(default_factory=AccessLog)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        header = next((v for k, v in scope["headers"] if k == HEADER), None)
        rid = request_id(header)
        token = REQUEST_ID.set(rid)
        route = self.routes.match(scope)
        answer = _Answer(send, rid)
        try:
            await self.app(scope, receive, answer.send)
        except Exception as exc:
            if not answer.started:
                await answer.internal_error(exc)
            self._done(scope, route, answer, started, 500)
            raise  # the server logs it, with this request's id (the context is kept)
        self._done(scope, route, answer, started, answer.status or CLOSED)
        REQUEST_ID.reset(token)

    def _done(
        self, scope: Scope, route: Route, answer: _Answer, started: float, status: int
    ) -> None:
        seconds = time.perf_counter() - started
        work = Work.from_headers(answer.headers)
        if self.metrics is not None:
            self.metrics.observe(route, status, seconds, work)
        self.access_log.write(scope["method"], route, status, seconds, answer.size, work)
