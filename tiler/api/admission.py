"""Admission control: bounded work per worker, shared identical work, deadlines, disconnects.

:class:`Admission` is pure ASGI middleware in front of the routes. Every request gets a
:class:`~tiler.engine.budget.Budget` (``TILER_REQUEST_TIMEOUT``), made current so the read
scheduler obeys it; if a request has not started its answer one second past the deadline
(work stuck outside the reads), the middleware answers 504 itself. For the expensive routes
(those that document the 503 of :data:`OVERLOAD_RESPONSES`: tiles, point, exports), before
any work:

- a tile already in the rendered-tile cache is served, never refused;
- a GET identical to one being computed (same path, query and ``If-None-Match``) waits for
  that computation and gets a copy of its answer (``X-Coalesced: 1``, :class:`Coalescer`);
- beyond ``limit`` computations in flight a request waits its turn only while the expected
  wait is short (:class:`~tiler.api.gate.Gate`), else the answer is 503 with
  ``Retry-After`` at once, as cheaply as possible (a retry storm must not starve the
  computations of CPU): decided from the scope alone, before any parsing or task;
- when the client disconnects (and nobody else waits for the same answer) the budget is
  cancelled, so no further reads are scheduled for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tiler.api.gate import Gate
from tiler.api.responses import ResponseCache, request_key
from tiler.engine.budget import Budget, budget_scope
from tiler.errors import DeadlineExceeded

logger = logging.getLogger(__name__)

#: OpenAPI ``responses`` of the expensive routes for what this middleware answers; a route
#: that documents them is admission-controlled (:class:`ExpensiveRoutes`)
OVERLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"description": "Busy: too many requests in progress; retry after `Retry-After` s."},
    504: {"description": "The request's work ran past TILER_REQUEST_TIMEOUT."},
}

#: a copy of an answer is kept for waiting identical requests only up to this size
SHARED_BYTES = 16 * 1024 * 1024


class _Flight:
    """One computation that identical requests wait for; its answer, once complete."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.waiters = 1
        self.done = asyncio.Event()
        self.start: Message | None = None
        self.body: bytearray | None = bytearray()

    def abandon(self) -> None:
        """A waiting client went away; cancel the work once nobody waits."""
        self.waiters -= 1
        if self.waiters <= 0:
            self.budget.cancel("client disconnected")

    def record(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body" and self.body is not None:
            self.body += message.get("body", b"")
            if len(self.body) > SHARED_BYTES:
                self.body = None  # too large to keep a copy: waiters compute it themselves


class Coalescer:
    """Identical GETs of the expensive routes being computed, by request key.

    The first computes; the others wait for its answer and get a copy.
    """

    def __init__(self) -> None:
        self.flights: dict[str, _Flight] = {}

    def get(self, key: str) -> _Flight | None:
        """The computation of ``key`` in progress, if any."""
        return self.flights.get(key)

    def start(self, key: str, budget: Budget) -> _Flight:
        """Record the computation of ``key`` (one that others may wait for)."""
        flight = self.flights[key] = _Flight(budget)
        return flight

    def finish(self, key: str, flight: _Flight) -> None:
        """The computation of ``key`` ended: wake its waiters, forget it."""
        if self.flights.get(key) is flight:
            del self.flights[key]
        flight.done.set()


class ExpensiveRoutes:
    """The routes whose work is admission-controlled.

    Those that document the 503 of :data:`OVERLOAD_RESPONSES`, so that renaming a route
    cannot drop its admission control, and the documentation says which routes it covers.
    """

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.routes = [r for r in routes if isinstance(r, APIRoute) and 503 in r.responses]
        if not self.routes:
            raise ValueError("no route documents OVERLOAD_RESPONSES: nothing to admit")

    def match(self, scope: Scope) -> bool:
        """Whether the request's path is one of these routes (any method)."""
        return any(route.matches(scope)[0] is not Match.NONE for route in self.routes)


class _Watcher:
    """Reads the request's messages ahead of the app to notice a disconnect at once."""

    def __init__(self, receive: Receive, on_disconnect: Callable[[], None]) -> None:
        self._queue: asyncio.Queue[Message] = asyncio.Queue()
        self._on_disconnect = on_disconnect
        self._task = asyncio.ensure_future(self._pump(receive))

    async def _pump(self, receive: Receive) -> None:
        while True:
            message = await receive()
            self._queue.put_nowait(message)
            if message["type"] == "http.disconnect":
                self._on_disconnect()
                return

    async def receive(self) -> Message:
        return await self._queue.get()

    def stop(self) -> None:
        self._task.cancel()


class _Reply:
    """The client's ``send``, silenced once the middleware has answered by itself."""

    def __init__(self, send: Send, flight: _Flight | None = None) -> None:
        self._send = send
        self.flight = flight
        self.started = False
        self.closed = False

    async def send(self, message: Message) -> None:
        if self.flight is not None:
            self.flight.record(message)
        if self.closed:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


async def send_json(send: Send, status: int, detail: str, headers: dict[str, str]) -> None:
    """Answer ``{"detail": ...}`` with ``status``."""
    body = json.dumps({"detail": detail}).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *((k.lower().encode(), v.encode()) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _first(*events: asyncio.Event, timeout: float | None) -> None:
    """Wait until one of ``events`` is set, or ``timeout`` seconds."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


class Admission:
    """The middleware (see the module's description).

    Args:
        app: the application inside.
        gate: the computation slots and their queue.
        routes: the application's API routes (the expensive ones are found among them).
        cache: the rendered-tile cache (a cached answer is served, never refused).
        coalescer: identical requests in progress (default: a new one).
    """

    def __init__(
        self,
        app: ASGIApp,
        gate: Gate,
        routes: Sequence[BaseRoute],
        cache: ResponseCache | None = None,
        coalescer: Coalescer | None = None,
    ) -> None:
        self.app = app
        self.gate = gate
        self.expensive = ExpensiveRoutes(routes)
        self.cache = cache
        self.coalescer = coalescer or Coalescer()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.expensive.match(scope):
            with budget_scope(Budget(self.gate.timeout)) as budget:
                await self._run(scope, receive, _Reply(send), budget)
            return
        key = ""
        if scope["method"] == "GET":
            key = request_key(scope)
            if self.cache is not None and self.cache.get(key):
                with budget_scope(Budget(self.gate.timeout)) as budget:
                    await self._run(scope, receive, _Reply(send), budget)  # never refused
                return
            inm = dict(scope["headers"]).get(b"if-none-match", b"").decode("latin-1")
            key = f"{key}\n{inm}"
            flight = self.coalescer.get(key)
            if flight is not None and await self._follow(flight, receive, send):
                return
        if self.gate.refuses():  # the cheap path: no task, no parsing, no budget
            await self._refuse(send)
            return
        with budget_scope(Budget(self.gate.timeout)) as budget:
            await self._admit(scope, receive, send, budget, key)

    async def _refuse(self, send: Send) -> None:
        gate = self.gate
        gate.refused += 1
        await send_json(
            send,
            503,
            f"the server is busy: {gate.in_flight} requests are being computed (the limit of "
            f"this worker) and {gate.queued} wait; retry after {gate.retry_after} s",
            {"Retry-After": str(gate.retry_after)},
        )

    async def _admit(
        self, scope: Scope, receive: Receive, send: Send, budget: Budget, key: str
    ) -> None:
        gate = self.gate
        flight = self.coalescer.start(key, budget) if key else None
        gone = asyncio.Event()
        stop = flight.abandon if flight else budget.cancel

        def disconnected() -> None:
            gone.set()
            stop()

        watcher = _Watcher(receive, disconnected)
        try:
            if not await gate.enter(gone):
                if not gone.is_set():
                    await self._refuse(send)
                return
            started = time.monotonic()
            try:
                await self._run(scope, watcher.receive, _Reply(send, flight), budget)
            finally:
                gate.release(time.monotonic() - started)
        finally:
            watcher.stop()
            if flight is not None:
                self.coalescer.finish(key, flight)

    async def _follow(self, flight: _Flight, receive: Receive, send: Send) -> bool:
        """Wait for an identical computation and send its answer; False: compute it anew."""
        flight.waiters += 1
        gone = asyncio.Event()
        watcher = _Watcher(receive, gone.set)
        try:
            await _first(flight.done, gone, timeout=self.gate.timeout + self.gate.grace)
        finally:
            watcher.stop()
            if not flight.done.is_set():
                flight.abandon()
        if gone.is_set():
            return True  # nobody to answer
        if not flight.done.is_set():
            await send_json(send, 504, str(DeadlineExceeded(self.gate.timeout)), {})
            return True
        if flight.start is None or flight.body is None:
            return False
        self.gate.coalesced += 1
        start = dict(flight.start)
        start["headers"] = [*start.get("headers", []), (b"x-coalesced", b"1")]
        await send(start)
        await send({"type": "http.response.body", "body": bytes(flight.body)})
        return True

    async def _run(self, scope: Scope, receive: Receive, reply: _Reply, budget: Budget) -> None:
        """Run the app; past the deadline (plus grace) without an answer, answer 504."""
        task = asyncio.ensure_future(self.app(scope, receive, reply.send))
        try:
            done, _ = await asyncio.wait({task}, timeout=self.gate.timeout + self.gate.grace)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if done:
            task.result()
            return
        budget.cancel("deadline")
        if not reply.started:
            reply.closed = True
            await send_json(reply._send, 504, str(DeadlineExceeded(self.gate.timeout)), {})
        logger.warning(
            "%s %s still running %g s past its deadline",
            scope["method"],
            scope["path"],
            self.gate.grace,
        )
        self.gate.overdue += 1
        try:
            await task
        except Exception:
            logger.exception("%s %s failed after its deadline", scope["method"], scope["path"])
        finally:
            self.gate.overdue -= 1
