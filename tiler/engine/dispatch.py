"""Pools of read threads: reads start in arrival order, a bounded number at once.

A :class:`Read` is one scheduled read (its state, a signal when it starts, its result); a
:class:`Dispatcher` owns a pool of threads and starts reads as slots free up, plus up to
``spare`` more for reads that wait on their files (:meth:`Dispatcher.leave`). The
scheduler (:mod:`tiler.engine.schedule`) decides which reads to submit and when.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tiler.engine.jobs import Job

#: the states of a read
QUEUED, RUNNING, WAITING, DONE = range(4)


class Read:
    """One scheduled read: its state, when it started, a signal when it starts, its result."""

    __slots__ = (
        "job",
        "fn",
        "urgent",
        "started",
        "state",
        "dropped",
        "slow",
        "on_start",
        "result",
    )

    def __init__(self, job: Job, fn: Callable[[Job], Any], urgent: bool = False) -> None:
        self.job = job
        self.fn = fn
        self.urgent = urgent
        self.started: float | None = None
        self.state = QUEUED
        self.dropped = False
        self.slow = False  # past SLOW_AFTER and handled
        self.on_start: Future[None] = Future()
        self.result: Future[Any] = Future()


class Dispatcher:
    """Starts reads in arrival order: ``size`` at once, plus up to ``spare`` slow ones.

    A read is handed to a pool thread only when it may run, so the threads that do the
    work are few (their memory, e.g. malloc arenas, stays small) and no thread ever waits
    for a slot.
    """

    def __init__(self, size: int, spare: int) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Read] = deque()
        self.free = size
        self.spare = spare
        self.waiting = 0
        self._pool = ThreadPoolExecutor(max_workers=size + spare, thread_name_prefix="read")

    def submit(self, read: Read) -> None:
        """Queue ``read``; it starts as soon as a slot is free."""
        with self._lock:
            self._queue.append(read)
            ready = self._ready()
        self._start(ready)

    def _ready(self) -> list[Read]:
        """Reads that may start now (call with the lock held)."""
        ready = []
        while self.free > 0 and self._queue:
            read = self._queue.popleft()
            if not read.dropped:
                self.free -= 1
                read.state = RUNNING
                read.started = time.monotonic()
                ready.append(read)
        return ready

    def _start(self, reads: list[Read]) -> None:
        for read in reads:
            read.on_start.set_result(None)
            self._pool.submit(self._run, read)

    def _run(self, first: Read) -> None:
        """Run ``first``, then the reads its end lets start (this thread takes one)."""
        read: Read | None = first
        while read is not None:
            try:
                read.result.set_result(read.fn(read.job))
            except BaseException as exc:  # handed to the request that waits for it
                read.result.set_exception(exc)
            with self._lock:
                if read.state == RUNNING:
                    self.free += 1
                elif read.state == WAITING:
                    self.waiting -= 1
                read.state = DONE
                ready = self._ready()
            read = ready.pop(0) if ready else None
            if read is not None:  # go on in this thread: the busy threads stay few
                read.on_start.set_result(None)
            self._start(ready)

    def leave(self, read: Read) -> None:
        """A slow read gives its slot to the next one, if a spare place is left."""
        with self._lock:
            if read.state != RUNNING or self.waiting >= self.spare:
                return
            read.state = WAITING
            self.waiting += 1
            self.free += 1
            ready = self._ready()
        self._start(ready)

    def close(self) -> None:
        """Drop the queued reads; running ones finish in the background."""
        with self._lock:
            self._queue.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
