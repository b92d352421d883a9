"""The admission gate: computation slots, a short queue in front of them, the counters.

``limit`` computations run at once (CPU-bound work: about twice the read threads). A
request that finds them all busy waits its turn in a first-come queue when fewer than
``min_queue`` (2 x ``limit``) wait, so a browser's burst for one map page (six connections,
more over HTTP/2) is served, slowly on a cold or busy worker but without holes; beyond
that only while its expected wait, (requests ahead + 1) x the recent time of a computation
/ ``limit``, stays under ``queue_wait`` seconds. Under sustained overload the queue is full
and the answer is 503 at once. A queued request gives up when its client leaves, or with
503 when it did not get a slot within the request timeout.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Gate:
    """What the worker is doing: computations in their slots, the queue in front of them.

    Attributes:
        limit: computations of expensive routes at once.
        timeout: seconds of work a request may take (its budget).
        queue_wait: the longest expected wait for which a request is queued beyond
            ``min_queue`` (0 and ``min_queue`` 0: no queue).
        min_queue: requests queued whatever the expected wait (None: 2 x ``limit``).
        retry_after: seconds a refused client is told to wait.
        grace: seconds past the deadline after which the middleware answers by itself.
        service: seconds of a computation, a moving average (the queue's estimate).
    """

    limit: int
    timeout: float
    queue_wait: float = 0.5
    min_queue: int | None = None
    retry_after: int = 1
    grace: float = 1.0
    service: float = 0.25
    in_flight: int = 0
    queued: int = 0
    overdue: int = 0
    refused: int = 0
    coalesced: int = 0
    _turns: deque[asyncio.Future[None]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if self.min_queue is None:
            self.min_queue = 2 * self.limit

    def status(self) -> dict[str, Any]:
        """Counters for ``/healthz``."""
        return {
            "in_flight": self.in_flight,
            "limit": self.limit,
            "queued": self.queued,
            "overdue": self.overdue,
            "refused": self.refused,
            "coalesced": self.coalesced,
            "service_ms": round(self.service * 1000),
        }

    def expected_wait(self) -> float:
        """Seconds a request arriving now would wait for a slot."""
        return (self.queued + 1) * self.service / self.limit

    def refuses(self) -> bool:
        """Whether a request arriving now would be refused (no slot, no room in the queue)."""
        if self.in_flight < self.limit and not self.queued:
            return False
        return self.queued >= (self.min_queue or 0) and self.expected_wait() > self.queue_wait

    async def enter(self, gone: asyncio.Event) -> bool:
        """Take a slot, at once or after a short wait in turn.

        Returns:
            True with a slot (give it back with :meth:`release`); False when refused or the
            client went away (``gone``) while waiting.
        """
        if self.in_flight < self.limit and not self.queued:
            self.in_flight += 1
            return True
        if self.refuses():
            return False
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._turns.append(turn)
        self.queued += 1
        left = asyncio.ensure_future(gone.wait())
        either: list[asyncio.Future[Any]] = [turn, left]
        try:
            await asyncio.wait(either, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            if self._give_up(turn):
                self.release()
            raise
        finally:
            left.cancel()
            self.queued -= 1
        if not self._give_up(turn):
            return False
        if gone.is_set():
            self.release()
            return False
        return True

    def _give_up(self, turn: asyncio.Future[None]) -> bool:
        """True if ``turn`` was given a slot; else it is withdrawn from the queue."""
        if turn.done() and not turn.cancelled():
            return True
        turn.cancel()  # :meth:`release` skips it
        return False

    def release(self, seconds: float | None = None) -> None:
        """Give a slot back (to the first in the queue), after ``seconds`` of work."""
        if seconds is not None:
            self.service += 0.2 * (seconds - self.service)
        while self._turns:
            turn = self._turns.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot passes on: in_flight stays
                return
        self.in_flight -= 1
