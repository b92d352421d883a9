"""Open datasets kept across requests, and a guard against files that do not answer.

:class:`DatasetCache` keeps a bounded LRU of open rasterio datasets (a dataset is used by
one thread at a time), so a file's header and GDAL's block cache survive between requests;
:meth:`DatasetCache.close` closes them all. Handles are kept by href and opened at the URL
:class:`~tiler.engine.credentials.Credentials` sign. :class:`StallGuard` stops new reads of
a file that does not answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError

from tiler.engine.credentials import Credentials, Signed

logger = logging.getLogger(__name__)


class FileNotAnswering(TimeoutError):
    """A read of the file has been running past the timeout: the file is not answering."""


class StallGuard:
    """Refuses new reads of a file while an earlier read of it has run past ``after`` s.

    A file that does not answer (a hung server or mount) would otherwise take one more
    thread with every request that reads it; the guard makes those reads fail at once
    (:class:`FileNotAnswering`, an item fault) until the stuck read ends.
    """

    def __init__(self, after: float) -> None:
        self.after = after
        self._lock = threading.Lock()
        self._reads: dict[str, dict[int, float]] = {}
        self._told: set[str] = set()
        self._next = 0

    @contextmanager
    def reading(self, href: str) -> Iterator[None]:
        """Count a read of ``href`` while it runs.

        Raises:
            FileNotAnswering: a read of ``href`` has been running for more than ``after`` s.
        """
        now = time.monotonic()
        with self._lock:
            starts = self._reads.setdefault(href, {})
            oldest = min(starts.values(), default=now)
            if now - oldest > self.after:
                if href not in self._told:
                    self._told.add(href)
                    logger.warning(
                        "%s is not answering (a read has run %.0f s): its reads are skipped "
                        "until that read ends",
                        href,
                        now - oldest,
                    )
                raise FileNotAnswering(
                    f"{href} is not answering (a read has run {now - oldest:.0f} s)"
                )
            self._next += 1
            token = self._next
            starts[token] = now
        try:
            yield
        finally:
            with self._lock:
                del starts[token]
                if not starts:
                    del self._reads[href]
                    self._told.discard(href)


class DatasetCache:
    """Open datasets kept across requests, at most ``size`` idle ones, closed by :meth:`close`.

    A dataset is never shared: a read checks one out (:meth:`open`) and gives it back after,
    so a file read by two threads at once has two handles. The bound is on the whole cache,
    not per thread, so memory does not grow with the number of read threads (each handle
    keeps its header and, with ``VSI_CACHE``, up to ``VSI_CACHE_SIZE`` bytes of the file).
    Handles are kept by href, never by the signed URL they were opened with: a handle whose
    URL is not the one :attr:`credentials` sign now (its token was renewed) is closed at
    checkout instead of reused.
    """

    def __init__(self, size: int = 64, credentials: Credentials | None = None) -> None:
        self.size = size
        self.credentials = credentials if credentials is not None else Credentials()
        self._lock = threading.Lock()
        self._idle: OrderedDict[str, list[tuple[str, rasterio.io.DatasetReader]]] = OrderedDict()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @contextmanager
    def open(self, href: str) -> Iterator[rasterio.io.DatasetReader]:
        """An open dataset of ``href`` (signed if its host needs it) for this thread alone."""
        with self.checkout(self.credentials.sign(href)) as (ds, _):
            yield ds

    @contextmanager
    def checkout(
        self, signed: Signed, fresh: bool = False, level: int | None = None
    ) -> Iterator[tuple[rasterio.io.DatasetReader, bool]]:
        """An open dataset of ``signed.url`` and whether it was reused, while the block runs.

        Args:
            signed: the href and the URL to open it at (:meth:`Credentials.sign`).
            fresh: open anew (idle handles of the href are closed): a reused one failed.
            level: an overview level (0: the first overview) opened as a dataset of its own
                (kept apart from the file's handles).
        """
        href = signed.href if level is None else f"{signed.href}\x00overview {level}"
        ds, stale = None, []
        with self._lock:
            handles = self._idle.get(href, [])
            while handles and ds is None:
                url, handle = handles.pop()
                self._count -= 1
                if url == signed.url and not fresh and not handle.closed:
                    ds = handle
                else:
                    stale.append(handle)
            if fresh:
                stale += [handle for _, handle in handles]
                self._count -= len(handles)
                handles.clear()
            if not handles:
                self._idle.pop(href, None)
        for old in stale:
            old.close()
        reused = ds is not None
        if ds is None:
            if level is None:
                ds = rasterio.open(signed.url)
            else:
                ds = rasterio.open(signed.url, overview_level=level)
        try:
            yield ds, reused
        except (RasterioError, OSError, CPLE_BaseError):  # the file is in trouble: not kept
            ds.close()
            raise
        except BaseException:
            self._put(href, signed.url, ds)
            raise
        self._put(href, signed.url, ds)

    def _put(self, href: str, url: str, ds: rasterio.io.DatasetReader) -> None:
        evicted = []
        with self._lock:
            self._idle.setdefault(href, []).append((url, ds))
            self._idle.move_to_end(href)
            self._count += 1
            while self._count > self.size:
                old_href, handles = next(iter(self._idle.items()))
                evicted.append(handles.pop(0)[1])
                self._count -= 1
                if not handles:
                    del self._idle[old_href]
        for old in evicted:
            old.close()

    def close(self) -> None:
        """Close every idle dataset (call once reads have stopped)."""
        with self._lock:
            idle, self._idle, self._count = self._idle, OrderedDict(), 0
        for handles in idle.values():
            for _, ds in handles:
                ds.close()
