"""Secrets kept out of text: faults' messages and rasterio's log records.

Messages of GDAL's errors name the file they failed on, which for a signed read is the URL
with its SAS token: :func:`scrubbed` copies a fault without it, :class:`SecretFilter` (on
:data:`SECRET_LOGGERS`, :func:`hide_secrets`) takes it out of log records, both through
:meth:`~tiler.engine.credentials.Credentials.scrub`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tiler.engine.credentials import Credentials


def scrubbed(exc: BaseException, credentials: Credentials) -> BaseException:
    """``exc``, or a copy of its type with the message scrubbed if it held a secret."""
    text = str(exc)
    clean = credentials.scrub(text)
    if clean == text:
        return exc
    try:
        copy = type(exc)(clean)
    except TypeError:  # a constructor with other arguments
        copy = OSError(f"{type(exc).__name__}: {clean}")
    return copy


class SecretFilter(logging.Filter):
    """Takes SAS tokens out of log records (GDAL's error messages name the signed URL)."""

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self.credentials = credentials

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the record's message in place; always keep it."""
        text = record.getMessage()
        clean = self.credentials.scrub(text)
        if clean != text:
            record.msg, record.args = clean, None
        return True


#: loggers that write GDAL's error messages (rasterio's error handler) and reads' faults
SECRET_LOGGERS = (
    "rasterio",
    "rasterio._env",
    "rasterio._err",
    "rasterio._io",
    "rasterio._base",
    "rasterio._filepath",
    "rasterio.env",
    "rio_tiler",
    "tiler.engine.schedule",
    "tiler.engine.io",
    "tiler.engine.datasets",
    "tiler.engine.jobs",
)


def hide_secrets(credentials: Credentials) -> Callable[[], None]:
    """Install a :class:`SecretFilter` on :data:`SECRET_LOGGERS`; returns its removal."""
    flt = SecretFilter(credentials)
    loggers = [logging.getLogger(name) for name in SECRET_LOGGERS]
    for log in loggers:
        log.addFilter(flt)

    def remove() -> None:
        for log in loggers:
            log.removeFilter(flt)

    return remove
