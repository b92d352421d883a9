"""Reads as jobs: the bands of an item grouped by file, and what limits their waits.

A :class:`Job` reads some bands of one item, those stored in one file, so the files of an
item (band-per-file collections) are read at once rather than one after the other;
:class:`Assembly` collects the answers of an item's jobs until the item is complete.
A request's reads share one :class:`ReadDeadline`; :class:`FailedFiles` remembers remote
files whose read failed, for a short back-off only.
"""

from __future__ import annotations

import ctypes
import enum
import functools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy
import rasterio._env
from rasterio._path import _parse_path

from tiler.catalog.assets import is_remote
from tiler.catalog.models import Item

logger = logging.getLogger(__name__)


class Pass(enum.Enum):
    """What a read is for: the pass of a mosaic it belongs to."""

    #: the bands the quality expression reads
    QUALITY = "quality"
    #: the output bands of an item that wins a pixel
    BANDS = "bands"


@dataclass(frozen=True, slots=True)
class Job:
    """One read: bands ``names`` of ``item`` (those of one file, see :func:`jobs`).

    ``tag`` says what the read is for (None: the caller needs no label).
    """

    item: Item
    names: tuple[str, ...]
    tag: Pass | None = None

    @property
    def hrefs(self) -> list[str]:
        """The files the read opens."""
        bands = self.item.bands
        return sorted({bands[n].href for n in self.names if n in bands})

    @property
    def remote(self) -> bool:
        """True if a file of the read is remote (:func:`is_remote`)."""
        return any(is_remote(h) for h in self.hrefs)


def jobs(item: Item, names: Sequence[str], tag: Pass | None = None) -> list[Job]:
    """The reads of bands ``names`` of ``item``: one per file (one job if it has none)."""
    by_file: dict[str, list[str]] = {}
    for name in names:
        band = item.bands.get(name)
        if band is not None:
            by_file.setdefault(band.href, []).append(name)
    if len(by_file) <= 1:
        return [Job(item, tuple(names), tag)]
    return [Job(item, tuple(group), tag) for group in by_file.values()]


class Assembly:
    """The answers of items' jobs, put together per item (by position).

    An item is complete once each of its jobs has answered. A job that found the item
    outside the grid makes the item empty; a job that failed makes it fail.
    """

    def __init__(self) -> None:
        self._left: dict[int, int] = {}
        self._arrays: dict[int, dict[str, numpy.ma.MaskedArray]] = {}
        self._outside: set[int] = set()
        self.failed: set[int] = set()
        self.expected: set[int] = set()

    def expect(self, index: int, count: int) -> None:
        """Item ``index`` is read by ``count`` jobs."""
        self.expected.add(index)
        self._left[index] = count
        self._arrays[index] = {}

    def add(self, index: int, arrays: dict[str, numpy.ma.MaskedArray] | None) -> bool:
        """Add one job's answer (None: outside the grid); True once the item is complete."""
        if index in self.failed:
            return False
        if arrays is None:
            self._outside.add(index)
        else:
            self._arrays[index].update(arrays)
        self._left[index] -= 1
        return self._left[index] == 0

    def take(self, index: int) -> dict[str, numpy.ma.MaskedArray] | None:
        """The bands of a complete item (None: it is outside the grid)."""
        del self._left[index]
        bands = self._arrays.pop(index)
        return None if index in self._outside else bands

    def fail(self, index: int) -> bool:
        """A job of item ``index`` failed; True the first time."""
        if index in self.failed:
            return False
        self.failed.add(index)
        self._left.pop(index, None)
        self._arrays.pop(index, None)
        return True


class ReadDeadline:
    """One deadline for all the reads of a request, from the first that waits on its file.

    A read that has run ``mark`` seconds is waiting on its file (a slow or dead server);
    the first such read sets the deadline: its start plus ``timeout``. Every read started
    before the deadline is given up at it (or at its own start plus ``timeout``, if
    sooner); a read started after it may run ``mark`` seconds. So a request over a slow
    server waits about one ``timeout`` in all, not one per round of reads or per pass.

    Attributes:
        timeout: seconds from the first waiting read's start to the deadline.
        mark: seconds after which a running read counts as waiting on its file.
        at: the deadline (``time.monotonic()``), once a read waited.
        expiries: how many times running reads were given up for time (1: all at once).
    """

    def __init__(self, timeout: float, mark: float) -> None:
        self.timeout = timeout
        self.mark = mark
        self.at: float | None = None
        self.expiries = 0

    def waiting(self, started: float) -> None:
        """A read started at ``started`` has run ``mark`` s; the first one sets :attr:`at`."""
        if self.at is None:
            self.at = started + self.timeout

    def due(self, started: float) -> float:
        """When a read started at ``started`` is given up."""
        if self.at is None:
            return started + self.timeout
        if started < self.at:
            return min(started + self.timeout, self.at)
        return started + self.mark


#: seconds a remote file whose read failed is not asked again (:class:`FailedFiles`)
RETRY_AFTER = 5.0


def gdal_library() -> ctypes.CDLL:
    """The GDAL library rasterio uses, for functions rasterio does not wrap (ctypes).

    Opened through rasterio's extension module, whose dependencies dlsym also searches, so
    a wheel's bundled GDAL and a system GDAL alike.

    Raises:
        OSError: the module cannot be loaded.
    """
    return ctypes.CDLL(rasterio._env.__file__)


@functools.cache
def gdal_function(name: str) -> Callable[..., None] | None:
    """GDAL's C function ``name`` (returning void), from :func:`gdal_library`.

    None (logged) if it is not there.
    """
    try:
        func = getattr(gdal_library(), name)
    except (OSError, AttributeError) as exc:  # no such library or symbol
        logger.warning("GDAL's %s not found: %s", name, exc)
        return None
    func.restype = None
    found: Callable[..., None] = func
    return found


def forget_remote(href: str) -> None:
    """Make GDAL forget what it learned of the remote file ``href`` (existence, size, chunks).

    After any failed request of a URL (an error status, a timeout, a refused connection),
    GDAL's network file systems (/vsicurl/, /vsis3/, ...) remember that the file does not
    exist, for the life of the process: every later open fails at once without a request.
    rasterio does not expose ``VSICurlPartialClearCache``, so it is called through ctypes.
    """
    clear = gdal_function("VSICurlPartialClearCache")
    if clear is not None:
        clear(ctypes.c_char_p(_parse_path(href).as_vsi().encode()))


def reset_gdal_error() -> None:
    """Clear this thread's last GDAL error (``CPLErrorReset``).

    GDAL keeps the last error per thread; a read that failed leaves it set, and rasterio
    raises it again from a later, healthy read of another file in the same pool thread
    (e.g. when a dataset attribute is read), so each read starts with it cleared.
    """
    reset = gdal_function("CPLErrorReset")
    if reset is not None:
        reset()


class FileFailed(OSError):
    """A read of a remote file failed, now or a moment ago; it is retried after ``retry_in`` s.

    Attributes:
        kind: the type name of the original fault (e.g. ``RasterioIOError``).
        message: its message.
        retry_in: seconds until the file is read again.
    """

    def __init__(self, kind: str, message: str, retry_in: float) -> None:
        super().__init__(f"{kind}: {message} (retried after {retry_in:.1f} s)")
        self.kind = kind
        self.message = message
        self.retry_in = retry_in


class AccessRefused(OSError):
    """A remote file's storage refused the read (401/403), or no token could be had.

    Attributes:
        host: the storage host the href names (never a token).
    """

    def __init__(self, host: str, why: str) -> None:
        super().__init__(
            f"access denied by {host}: credentials are missing, expired or refused ({why})"
        )
        self.host = host


class FailedFiles:
    """Remote files whose last read failed: refused for ``seconds``, then read afresh.

    A failure is never remembered longer than ``seconds``: the first read after that makes
    GDAL forget it (:func:`forget_remote`) and asks the server again, so a server that
    recovers is read again within seconds, and one that does not is asked at most once per
    ``seconds`` (per file) instead of by every read. At most ``size`` files are remembered
    (the oldest failures are forgotten first, then simply retried).
    """

    def __init__(
        self,
        seconds: float = RETRY_AFTER,
        size: int = 4096,
        forget: Callable[[str], None] = forget_remote,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.size = size
        self._forget = forget
        self._clock = clock
        self._lock = threading.Lock()
        self._failed: OrderedDict[str, tuple[float, str, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failed)

    def check(self, href: str) -> None:
        """Let a read of ``href`` go on, or refuse it while its back-off runs.

        Raises:
            FileFailed: ``href`` failed less than ``seconds`` ago.
        """
        with self._lock:
            failure = self._failed.get(href)
            if failure is None:
                return
            until, kind, message = failure
            now = self._clock()
            if now < until:
                raise FileFailed(kind, message, until - now)
            del self._failed[href]
            # under the lock: no read of href starts before GDAL has forgotten the failure
            self._forget(href)
        logger.info("reading %s again (its back-off of %g s is over)", href, self.seconds)

    def fail(self, href: str, exc: BaseException) -> FileFailed:
        """Remember that a read of ``href`` failed with ``exc``; what the read raises."""
        kind, message = type(exc).__name__, str(exc)
        with self._lock:
            self._failed[href] = (self._clock() + self.seconds, kind, message)
            self._failed.move_to_end(href)
            while len(self._failed) > self.size:
                self._failed.popitem(last=False)
        return FileFailed(kind, message, self.seconds)
