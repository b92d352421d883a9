"""A request's budget: a deadline and a cancellation that every read it schedules obeys.

The HTTP layer (:mod:`tiler.api.admission`) opens a :class:`Budget` per request and makes
it current (:func:`budget_scope`, a context variable, so it reaches the route's worker
thread); the scheduler (:mod:`tiler.engine.schedule`) checks it whenever it waits for
reads and stops scheduling once the deadline has passed (:class:`DeadlineExceeded`) or the
client went away (:class:`RequestCancelled`). Code that runs outside a request (tests,
tools) has no current budget: no deadline, never cancelled.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, InvalidStateError
from contextlib import contextmanager, suppress
from contextvars import ContextVar

from tiler.errors import DeadlineExceeded, RequestCancelled


class Budget:
    """A deadline (``timeout`` seconds from now, None: none) and a cancellation flag.

    :meth:`cancel` may be called from any thread (the event loop's, typically); waiters see
    it at once through :attr:`wake`, a future completed on cancellation.
    """

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.reason: str | None = None
        self.wake: Future[None] = Future()

    def cancel(self, reason: str = "client disconnected") -> None:
        """Cancel the work (idempotent): scheduled reads that have not started are dropped."""
        if self.reason is None:
            self.reason = reason
        with suppress(InvalidStateError):  # already cancelled
            self.wake.set_result(None)

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self.reason is not None

    def remaining(self) -> float | None:
        """Seconds left before the deadline (may be negative), None without a deadline."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def check(self) -> None:
        """Raise when the work must stop.

        Raises:
            RequestCancelled: :meth:`cancel` was called.
            DeadlineExceeded: the deadline has passed.
        """
        if self.reason is not None:
            raise RequestCancelled(self.reason)
        left = self.remaining()
        if left is not None and left <= 0:
            assert self.timeout is not None
            raise DeadlineExceeded(self.timeout)


_CURRENT: ContextVar[Budget | None] = ContextVar("tiler_budget", default=None)


def current_budget() -> Budget:
    """The budget of the request being served, else an unlimited one."""
    return _CURRENT.get() or Budget()


@contextmanager
def budget_scope(budget: Budget) -> Iterator[Budget]:
    """Make ``budget`` current in this context (and in threads started from it)."""
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)
