"""Process setup of a server: logging, warnings, malloc, GDAL defaults, garbage collector.

What :func:`tiler.app.serve_app` runs once per server process (every uvicorn worker), never
an app constructor: each function here changes process-wide state.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from tiler.engine.io import GDAL_DEFAULTS, remember_default_transforms

logger = logging.getLogger(__name__)


def configure_logging(level: str = "INFO") -> None:
    """Log the application's messages at ``level`` unless logging is configured already.

    ``tiler serve`` configures it in its process; uvicorn's worker processes
    (``--workers 2``) configure only uvicorn's own loggers, so :func:`serve_app`, which
    every worker runs, calls this.
    """
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )


#: a number in a warning's text (request values: coordinates, sizes, thresholds)
_NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _masked(text: str, limit: int = 300) -> str:
    """``text`` on one line, numbers replaced by ``#``, control characters escaped, cut."""
    text = _NUMBER.sub("#", text[: 4 * limit])
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[:limit] + "..."


class WarningLog:
    """Python warnings, logged to ``py.warnings`` without the request's values.

    A warning's text may repeat what a request sent (geojson_pydantic's antimeridian
    warning quotes the bbox's numbers), so its numbers are logged as ``#`` and control
    characters escaped. Each text is logged once per place that warns (category, file,
    line), at most ``per_place`` distinct texts per place and ``places`` places in all; what
    passes those bounds is not logged (one fixed line says so per place). So requests
    can neither write their own values to the log nor a line each.
    """

    def __init__(self, per_place: int = 5, places: int = 1000) -> None:
        self.per_place = per_place
        self.places = places
        self.seen: dict[tuple[str, str, int], set[str]] = {}
        self._lock = threading.Lock()
        self._log = logging.getLogger("py.warnings")

    def __call__(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        """Log one warning (the signature of :func:`warnings.showwarning`)."""
        place = (category.__name__, filename, lineno)
        text = _masked(str(message))
        with self._lock:
            texts = self.seen.get(place)
            if texts is None:
                if len(self.seen) >= self.places:
                    return
                texts = self.seen[place] = set()
            if text in texts or len(texts) > self.per_place:
                return
            texts.add(text)
            full = len(texts) > self.per_place
        if full:
            self._log.warning(
                "%s:%s: %s: further warnings from here are not logged",
                filename,
                lineno,
                category.__name__,
            )
        else:
            self._log.warning("%s:%s: %s: %s", filename, lineno, category.__name__, text)


def configure_warnings() -> None:
    """Log Python warnings (``py.warnings``) once per distinct text and place, values masked.

    Libraries warn per dataset opened (rio-tiler's ``NoOverviewWarning``), and any
    ``warnings.catch_warnings()`` (rio-tiler and this package use it per tile rendered)
    resets Python's memory of what was shown, so the same warning went to stderr again and
    again (thousands of lines per 10,000 tiles); now it is logged the first time only, by
    :class:`WarningLog` (which also keeps request values out of the log).
    """
    if not isinstance(warnings.showwarning, WarningLog):
        warnings.showwarning = WarningLog()


def configure_gdal() -> None:
    """Set :data:`~tiler.engine.io.GDAL_DEFAULTS` where the environment has no value.

    Also works around a leak of rasterio (:func:`~tiler.engine.io.default_transform`).
    """
    for key, value in GDAL_DEFAULTS.items():
        os.environ.setdefault(key, value)
    remember_default_transforms()


#: glibc's mallopt parameter that fixes the size from which allocations are mmapped
_M_MMAP_THRESHOLD = -3


def configure_malloc(threshold: int = 128 * 1024) -> None:
    """Return large buffers (numpy arrays, GDAL blocks) to the system when freed (glibc).

    glibc raises its mmap threshold to the size of each large block freed, so after the
    first tiles their arrays come from the heap, which then fragments: about 120 MB of
    free but unreturned heap per worker on the demo. A fixed threshold keeps them mmapped.
    Skipped when ``MALLOC_MMAP_THRESHOLD_`` is set (glibc reads it itself) or not glibc.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, threshold)
    except (OSError, AttributeError):
        logger.debug("not glibc: malloc left as it is")


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (loading creates millions of acyclic objects).

    Without the pause the collector runs over and over while a large collection loads
    and takes about 3/4 of the time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
