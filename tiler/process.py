"""Process setup of a server: logging, warnings, malloc, GDAL defaults, garbage collector.

What :func:`tiler.app.serve_app` runs once per server process (every uvicorn worker), never
an app constructor: each function here changes process-wide state.
"""

from __future__ import annotations

import ctypes
import gc
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

logger = logging.getLogger(__name__)


#: loggers of uvicorn that keep their own handlers (uvicorn's default logging config)
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")

#: attributes every LogRecord has: what is not one of them was passed with ``extra=``
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message``, then ``request_id=...`` when the record has one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The line of ``record``."""
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} request_id={request_id}" if request_id else line


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extra fields.

    Fields given with ``extra=`` (e.g. the access log's) are written at the top level;
    an exception's traceback goes in ``exc_info`` as text.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The JSON line of ``record``."""
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class ServerLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The server's handler of the root logger (stderr), as :func:`configure_logging` sets it."""


def formatter(fmt: str = "text") -> logging.Formatter:
    """The formatter of ``fmt``: ``"text"`` or ``"json"`` (one JSON object per line)."""
    if fmt == "json":
        return JSONFormatter()
    if fmt == "text":
        return TextFormatter()
    raise ValueError(f"log format {fmt!r}: use text or json")


def configure_logging(
    level: str = "INFO", fmt: str = "text", filters: Sequence[logging.Filter] = ()
) -> None:
    """Log the server's messages (and uvicorn's) to stderr as ``fmt`` text or JSON lines.

    The root logger gets one :class:`ServerLogHandler` (replacing a plain stderr handler of
    ``logging.basicConfig``, e.g. ``tiler``'s own; other handlers, such as a test's
    capture, stay and get the filters too); uvicorn's loggers, when uvicorn configured
    handlers of their own, write through the same formatter and filters. ``filters`` add
    fields to every record, e.g. the request id. Called again (another app in the same
    process), it updates the format and adds only filters of a type not there yet.

    Args:
        level: the root logger's level when the handler is created.
        fmt: ``"text"`` or ``"json"``.
        filters: filters for every handler (e.g. the request id's).
    """
    chosen = formatter(fmt)
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, ServerLogHandler)), None)
    if handler is None:
        for old in list(root.handlers):
            if type(old) is logging.StreamHandler and old.stream in (sys.stderr, sys.stdout):
                root.removeHandler(old)
        handler = ServerLogHandler(sys.stderr)
        root.addHandler(handler)
        root.setLevel(level.upper())
    handler.setFormatter(chosen)
    handlers = list(root.handlers)
    for name in UVICORN_LOGGERS:
        for own in logging.getLogger(name).handlers:
            own.setFormatter(chosen)
            handlers.append(own)
    for each in handlers:
        for new in filters:
            if not any(type(f) is type(new) for f in each.filters):
                each.addFilter(new)


#: environment variable of prometheus-client's multiprocess mode
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir(environ: dict[str, str] | None = None) -> Path | None:
    """Set up prometheus-client's multiprocess directory for the worker processes.

    When ``PROMETHEUS_MULTIPROC_DIR`` is set, its ``*.db`` files (the values of an earlier
    run) are removed; else a new temporary directory is created and put in the environment,
    which the workers inherit. Call it in the supervisor before any worker starts.

    Args:
        environ: the environment to read and update (default: ``os.environ``).

    Returns:
        The directory created (remove it with :func:`remove_metrics_dir`), or None when it
        was given.
    """
    env: Any = os.environ if environ is None else environ
    given = env.get(MULTIPROC_ENV)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
        return None
    created = Path(tempfile.mkdtemp(prefix="tiler-metrics-"))
    env[MULTIPROC_ENV] = str(created)
    return created


def remove_metrics_dir(folder: Path | None, environ: dict[str, str] | None = None) -> None:
    """Remove a directory of :func:`prepare_metrics_dir` and its variable (None: nothing)."""
    if folder is None:
        return
    env: Any = os.environ if environ is None else environ
    if env.get(MULTIPROC_ENV) == str(folder):
        del env[MULTIPROC_ENV]
    shutil.rmtree(folder, ignore_errors=True)


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
    from tiler.engine.io import GDAL_DEFAULTS, remember_default_transforms  # GDAL: not at import

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
