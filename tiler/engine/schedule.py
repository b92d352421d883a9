"""Scheduling reads: a bounded number in flight, results as they finish, faults skipped.

The scheduler owns the read thread pool. A read whose call raises an item fault (the file
is missing, corrupt or unreadable), or that makes no progress for ``timeout`` seconds, is
reported and skipped: the mosaic goes on without that item and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from rasterio.errors import RasterioError
from rio_tiler.errors import RioTilerError

from tiler.catalog.models import Item

logger = logging.getLogger(__name__)

#: what a read of a faulty item raises (missing, corrupt or unreachable file)
ITEM_FAULTS: tuple[type[Exception], ...] = (RasterioError, RioTilerError, OSError)

T = TypeVar("T")


class Scheduler:
    """Runs reads on a pool of ``threads`` threads, at most ``window`` per request.

    Attributes:
        window: reads in flight at once for one request (bounds its memory).
        timeout: seconds without progress after which pending reads are given up.
    """

    def __init__(self, threads: int, window: int | None = None, timeout: float = 30.0) -> None:
        self.window = window or threads
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="read")

    def close(self) -> None:
        """Stop the pool: queued reads are dropped, running ones finish in the background."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run(
        self,
        fn: Callable[[Item], T],
        items: Iterable[Item],
        on_error: Callable[[Item, str], None],
    ) -> Iterator[tuple[Item, T]]:
        """Run ``fn`` over ``items``, at most :attr:`window` in flight; yield as they finish.

        Items whose call raises one of :data:`ITEM_FAULTS`, or that take longer than
        :attr:`timeout` seconds without any progress, are reported to ``on_error`` (and
        logged) and skipped. Stopping the iteration early cancels what has not started.
        """
        pending: dict[Future[T], Item] = {}
        try:
            yield from self._drain(fn, iter(items), pending, on_error)
        finally:  # the consumer stopped early: drop what has not started
            for fut in pending:
                fut.cancel()

    def _drain(
        self,
        fn: Callable[[Item], T],
        source: Iterator[Item],
        pending: dict[Future[T], Item],
        on_error: Callable[[Item, str], None],
    ) -> Iterator[tuple[Item, T]]:
        exhausted = False
        while True:
            while not exhausted and len(pending) < self.window:
                try:
                    item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                pending[self._pool.submit(fn, item)] = item
            if not pending:
                return
            done, _ = wait(pending, timeout=self.timeout, return_when=FIRST_COMPLETED)
            if not done:
                for fut, item in pending.items():
                    fut.cancel()
                    logger.warning("item %s skipped: timed out after %g s", item.id, self.timeout)
                    on_error(item, f"timed out after {self.timeout:g} s")
                pending.clear()
                continue
            for fut in done:
                item = pending.pop(fut)
                try:
                    yield item, fut.result()
                except ITEM_FAULTS as exc:
                    logger.warning("item %s skipped: %s", item.id, exc)
                    on_error(item, f"{type(exc).__name__}: {exc}")
