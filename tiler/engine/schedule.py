"""Scheduling reads: a bounded number in flight, results as they finish, faults skipped.

The unit is a :class:`Job`: some bands of one item, usually those stored in one file, so
the files of one item are read at once too. The scheduler owns two pools of read threads:

- local files: ``threads`` reads run at once (the cores' share: a local read is CPU work,
  decompression and resampling), at most ``window`` per request;
- remote files (``http(s)://``, ``s3://``, ``/vsi...``): a read mostly waits for the
  network, so ``io_threads`` run at once, independent of the core count, and a request
  puts many in flight: every round trip it waits for is one for all of them. A request
  starts with ``start`` remote reads (when it may stop early, as the quality pass does)
  and adds one per read done, so it doubles per round trip up to ``io_threads``.

A read that has run for :data:`SLOW_AFTER` seconds (or half the timeout, if shorter) is
waiting on its file (a slow disk or server), so it gives its slot to the next read and goes
on in one of ``spare`` extra threads. So one slow or stuck file never holds the threads
that other requests' reads need.

A read whose call raises an item fault (the file is missing, corrupt or unreadable) is
reported and skipped; so is a read still running at the request's
:class:`~tiler.engine.jobs.ReadDeadline`, ``timeout`` seconds after the first of its reads
(a tile's, across all its passes) that waited on its file: a tile waits about one timeout
in all, not one per read. Time queued behind other requests' reads does not count. The
mosaic goes on without the items skipped and says so. The reason reported (headers, JSON)
names the fault, never the file's path or URL; the full message goes to the log at
WARNING. Every wait obeys the request's :class:`~tiler.engine.budget.Budget`: past its
deadline, or once the client went away, reads that have not started are dropped and the
iteration raises.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError
from rio_tiler.errors import RioTilerError

from tiler.engine.budget import Budget, current_budget
from tiler.engine.dispatch import Dispatcher, Read
from tiler.engine.jobs import FileFailed, Job, ReadDeadline

logger = logging.getLogger(__name__)

#: what a read of a faulty item raises (missing, corrupt or unreachable file); GDAL's own
#: errors (``CPLE_*``) surface unwrapped from some dataset attributes after a failed read
ITEM_FAULTS: tuple[type[Exception], ...] = (RasterioError, RioTilerError, OSError, CPLE_BaseError)

#: seconds after which a running read counts as waiting on its file and leaves its slot
SLOW_AFTER = 1.0

T = TypeVar("T")

# words of a fault's message (lower case) -> the cause reported without the path or URL
_CAUSES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("not answering",), "timed out (file not answering)"),
    (("no such file", "does not exist", "not found", "response code: 404"), "file not found"),
    (
        ("permission denied", "access denied", "response code: 401", "response code: 403"),
        "access denied",
    ),
    (("not recognized as", "not a tiff", "not a supported", "unsupported"), "not a raster"),
    (("timed out", "timeout"), "timed out"),
    (("response code: 5",), "server error"),
    (("resolve", "connection refused", "curl error", "couldn't connect"), "unreachable"),
)


def fault_reason(exc: BaseException) -> str:
    """A short reason for a skipped item: the exception's type and cause, no path or URL.

    A remote file's fault (:class:`~tiler.engine.jobs.FileFailed`) says when it is retried.
    """
    failed = exc if isinstance(exc, FileFailed) else None
    text = (str(exc) if failed is None else failed.message).lower()
    cause = next((c for words, c in _CAUSES if any(w in text for w in words)), None)
    if cause is None:
        cause = "file not found" if isinstance(exc, FileNotFoundError) else "read failed"
    if failed is None:
        return f"{type(exc).__name__}: {cause}"
    return f"{failed.kind}: {cause} (retried after {math.ceil(failed.retry_in)} s)"


@dataclass
class _Run(Generic[T]):
    """One call of :meth:`Scheduler.run`: its jobs, its reads in flight and its limits.

    Attributes:
        fn: the read.
        source: the jobs, consumed when one may start.
        on_error: told of each skipped job and why.
        budget: the request's deadline and cancellation.
        start: remote jobs in flight at first, one more per job done (None: the window).
        deadline: the request's read deadline.
        urgent: jobs to start at once, beyond the window.
        drop: which pending jobs are no longer wanted.
        pending: the reads started or queued, not answered yet.
        held: the next job of ``source``, taken but not started (no room yet).
        done: reads answered so far.
    """

    fn: Callable[[Job], T]
    source: Iterator[Job]
    on_error: Callable[[Job, str], None]
    budget: Budget
    start: int | None
    deadline: ReadDeadline
    urgent: deque[Job]
    drop: Callable[[Job], bool] | None
    pending: list[Read] = field(default_factory=list)
    held: Job | None = None
    done: int = 0


class Scheduler:
    """Runs reads: local ones ``threads`` at once, remote ones ``io_threads`` at once.

    Attributes:
        window: local reads in flight at once for one request (bounds its memory).
        io_window: remote reads in flight at once for one request.
        timeout: seconds a request's reads may wait on their files (:class:`ReadDeadline`)
            before their items are skipped.
        slow_after: seconds after which a running read leaves its slot to others.
    """

    def __init__(
        self,
        threads: int,
        window: int | None = None,
        timeout: float = 30.0,
        spare: int | None = None,
        slow_after: float = SLOW_AFTER,
        io_threads: int = 32,
    ) -> None:
        self.window = window or threads
        self.io_window = window or io_threads
        self.timeout = timeout
        self.slow_after = slow_after
        self._local = Dispatcher(threads, 4 * threads if spare is None else spare)
        self._remote = Dispatcher(io_threads, io_threads if spare is None else spare)

    def close(self) -> None:
        """Stop: queued reads are dropped, running ones finish in the background."""
        self._local.close()
        self._remote.close()

    def deadline(self, timeout: float | None = None) -> ReadDeadline:
        """A new deadline for one request's reads (``timeout``: default :attr:`timeout`).

        A read counts as waiting on its file after :attr:`slow_after` s, or half the
        timeout if that is shorter (so that the reads of a request all start before it).
        """
        limit = self.timeout if timeout is None else timeout
        return ReadDeadline(limit, min(self.slow_after, limit / 2))

    def _dispatcher(self, read: Read) -> Dispatcher:
        return self._remote if read.job.remote else self._local

    def run(
        self,
        fn: Callable[[Job], T],
        source: Iterable[Job],
        on_error: Callable[[Job, str], None],
        budget: Budget | None = None,
        start: int | None = None,
        timeout: float | None = None,
        urgent: deque[Job] | None = None,
        drop: Callable[[Job], bool] | None = None,
        deadline: ReadDeadline | None = None,
    ) -> Iterator[tuple[Job, T]]:
        """Run ``fn`` over the jobs, a bounded number in flight; yield as they finish.

        ``source`` is consumed lazily, when a job may start, so a generator can leave out
        jobs that earlier results made useless. Jobs the consumer appends to ``urgent``
        start at once, beyond the window; jobs for which ``drop`` says True are given up
        (their results never come). Jobs whose call raises one of :data:`ITEM_FAULTS`, or
        whose read still runs at ``deadline``, are reported to ``on_error`` (and logged) and
        skipped. Once a read waits on its file, the remote window opens fully (the request
        waits anyway: its other reads wait together, within the one deadline). Stopping the
        iteration early drops what has not started.

        Args:
            fn: the read.
            source: the jobs, in the order they should start.
            on_error: told of each skipped job and why (no path or URL in the reason).
            budget: the request's deadline and cancellation (default: the current one).
            start: remote jobs in flight at first, one more per job done (None: all of
                :attr:`io_window` at once).
            timeout: the deadline's timeout when ``deadline`` is None (default:
                :attr:`timeout`).
            urgent: jobs to start at once (the consumer may add to it while iterating).
            drop: which pending jobs are no longer wanted (asked after each answer).
            deadline: the request's read deadline, shared by its calls (default: a new one,
                :meth:`deadline`).

        Raises:
            DeadlineExceeded: ``budget`` ran out.
            RequestCancelled: ``budget`` was cancelled.
        """
        run: _Run[T] = _Run(
            fn,
            iter(source),
            on_error,
            budget or current_budget(),
            start,
            deadline if deadline is not None else self.deadline(timeout),
            urgent if urgent is not None else deque(),
            drop,
        )
        try:
            yield from self._drain(run)
        finally:  # the consumer stopped or the budget ran out: drop what has not started
            for read in run.pending:
                read.dropped = True

    def _drain(self, run: _Run[T]) -> Iterator[tuple[Job, T]]:
        """Start reads as room allows, yield their answers, until none is left."""
        pending = run.pending
        while True:
            run.budget.check()
            if run.drop is not None:
                for read in [r for r in pending if run.drop(r.job)]:
                    pending.remove(read)
                    read.dropped = True
            while run.urgent:
                self._submit(run, run.urgent.popleft(), urgent=True)
            self._fill(run)
            if not pending:
                if run.urgent:
                    continue
                return
            signals: list[Future[Any]] = [run.budget.wake, *(r.result for r in pending)]
            signals += [r.on_start for r in pending if r.started is None]
            due = self._due(pending, run.budget, run.deadline)
            wait(signals, timeout=due, return_when=FIRST_COMPLETED)
            for read in [r for r in pending if r.result.done()]:
                pending.remove(read)
                run.done += 1
                try:
                    result: T = read.result.result()
                except ITEM_FAULTS as exc:
                    logger.warning(
                        "item %s skipped: %s: %s", read.job.item.id, type(exc).__name__, exc
                    )
                    run.on_error(read.job, fault_reason(exc))
                    continue
                yield read.job, result
            self._watch(pending, run.on_error, run.deadline)

    def _submit(self, run: _Run[T], job: Job, urgent: bool = False) -> None:
        """Hand ``job`` to its pool's dispatcher; it is pending until it answers."""
        read = Read(job, run.fn, urgent=urgent)
        run.pending.append(read)
        self._dispatcher(read).submit(read)

    def _fill(self, run: _Run[T]) -> None:
        """Start jobs of the source while the request's window has room."""
        while True:
            if run.held is None:
                run.held = next(run.source, None)
                if run.held is None:
                    return
            if run.held.remote:
                room = self.io_window
                if run.start is not None and run.deadline.at is None:  # until a read waits
                    room = min(room, run.start + run.done)
            else:
                room = self.window
            if sum(not r.urgent for r in run.pending) >= room:
                return
            self._submit(run, run.held)
            run.held = None

    def _due(self, pending: list[Read], budget: Budget, deadline: ReadDeadline) -> float | None:
        """Seconds until the budget's deadline, the next slow mark or read deadline."""
        due = budget.remaining()
        now = time.monotonic()
        for read in pending:
            if read.started is None:
                continue
            at = deadline.due(read.started)
            if not read.slow:
                at = min(at, read.started + deadline.mark)
            due = at - now if due is None else min(due, at - now)
        return None if due is None else max(due, 0.0)

    def _watch(
        self, pending: list[Read], on_error: Callable[[Job, str], None], deadline: ReadDeadline
    ) -> None:
        """Reads waiting on their files leave their slots; reads past the deadline are given up."""
        now = time.monotonic()
        running = [(r, t) for r in pending if (t := r.started) is not None and not r.result.done()]
        for read, started in running:
            if not read.slow and now - started >= deadline.mark:
                read.slow = True
                deadline.waiting(started)
                self._dispatcher(read).leave(read)
        expired = False
        for read, started in running:
            ran = now - started
            if now >= deadline.due(started):
                expired = True
                pending.remove(read)
                self._dispatcher(read).leave(read)
                logger.warning(
                    "item %s skipped: timed out, its read ran %g s without an answer "
                    "(TILER_ITEM_TIMEOUT); its files: %s",
                    read.job.item.id,
                    round(ran, 1),
                    ", ".join(
                        read.job.hrefs or sorted({b.href for b in read.job.item.bands.values()})
                    ),
                )
                on_error(read.job, f"timed out after {deadline.timeout:g} s")
        deadline.expiries += expired
