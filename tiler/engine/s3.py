"""S3 per bucket or prefix: GDAL's own path-specific options, never process-wide environment.

``VSISetPathSpecificOption`` for ``/vsis3/{bucket}/``: ``AWS_REQUEST_PAYER=requester`` for
requester-pays buckets, ``AWS_NO_SIGN_REQUEST=YES`` for public ones (:class:`S3Paths`), so
one process reads both kinds (``TILER_S3_BUCKETS``, :func:`s3_options`).
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from tiler.engine.jobs import gdal_function

logger = logging.getLogger(__name__)

#: what a bucket's settings may say, as GDAL options
S3_OPTIONS = {
    "requester_pays": ("AWS_REQUEST_PAYER", {True: "requester"}),
    "unsigned": ("AWS_NO_SIGN_REQUEST", {True: "YES", False: "NO"}),
}


def s3_options(settings: Mapping[str, Any]) -> dict[str, str]:
    """GDAL options for one bucket's settings.

    ``requester_pays``, ``unsigned``, ``region``, ``endpoint``, ``https``,
    ``virtual_hosting``; what is unset is left to GDAL.
    """
    out: dict[str, str] = {}
    for name, (option, values) in S3_OPTIONS.items():
        value = settings.get(name)
        if value is not None and value in values:
            out[option] = values[value]
    for name, option in (
        ("region", "AWS_REGION"),
        ("endpoint", "AWS_S3_ENDPOINT"),
    ):
        if settings.get(name):
            out[option] = str(settings[name])
    for name, option in (("https", "AWS_HTTPS"), ("virtual_hosting", "AWS_VIRTUAL_HOSTING")):
        if settings.get(name) is not None:
            out[option] = "YES" if settings[name] else "NO"
    return out


class S3Paths:
    """GDAL options per S3 bucket or prefix, set with ``VSISetPathSpecificOption``.

    Args:
        options: bucket (or ``bucket/prefix``) -> GDAL option -> value.
    """

    def __init__(self, options: Mapping[str, Mapping[str, str]]) -> None:
        self.options = {_s3_prefix(key): dict(values) for key, values in options.items() if values}
        self._set = False

    def prefixes(self) -> Iterable[str]:
        """The path prefixes configured (``/vsis3/bucket/...``)."""
        return self.options.keys()

    def apply(self) -> None:
        """Set the options (GDAL holds them for the process, per path prefix)."""
        setter = gdal_function("VSISetPathSpecificOption")
        if setter is None:
            if self.options:
                logger.warning("GDAL has no VSISetPathSpecificOption: S3 bucket settings ignored")
            return
        for prefix, values in self.options.items():
            for key, value in values.items():
                setter(ctypes.c_char_p(prefix.encode()), key.encode(), value.encode())
            logger.info("S3 %s: %s", prefix, ", ".join(sorted(values)))
        self._set = bool(self.options)

    def clear(self) -> None:
        """Clear the options of the prefixes this object set."""
        if not self._set:
            return
        clear = gdal_function("VSIClearPathSpecificOptions")
        if clear is not None:
            for prefix in self.options:
                clear(ctypes.c_char_p(prefix.encode()))
        self._set = False


def _s3_prefix(key: str) -> str:
    key = key.removeprefix("s3://").strip("/")
    return f"/vsis3/{key}" + ("/" if "/" not in key else "")
