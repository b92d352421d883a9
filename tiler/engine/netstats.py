"""Requests and bytes of GDAL's network file systems (/vsicurl/, /vsis3/, /vsiaz/, ...).

GDAL (3.2 and later) counts the HTTP requests and bytes of its network file systems when
``CPL_VSIL_NETWORK_STATS_ENABLED`` is on, process-wide and for all threads, and gives them
as JSON (``VSINetworkStatsGetAsSerializedJSON``); ``VSINetworkStatsReset`` clears them.
rasterio wraps neither, so they are called through ctypes on the library rasterio uses
(:func:`~tiler.engine.jobs.gdal_library`).

:class:`NetworkStats` takes what was counted since its previous sample, per scheme. GDAL
keeps its counts per file too (a tree that grows with every distinct file read), so each
sample also clears them: a request that GDAL counts in the few microseconds between the
two calls is not reported (the API has no atomic read-and-clear).
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from tiler.engine.jobs import gdal_library

logger = logging.getLogger(__name__)

#: GDAL's configuration option that turns the counting on
ENABLE_OPTION = "CPL_VSIL_NETWORK_STATS_ENABLED"

#: GDAL's network file system (handler name) -> scheme label; /vsicurl/ serves http and https
SCHEMES = {
    "vsicurl": "http",
    "vsis3": "s3",
    "vsiaz": "az",
    "vsiadls": "adls",
    "vsigs": "gs",
    "vsioss": "oss",
    "vsiswift": "swift",
    "vsiwebhdfs": "webhdfs",
}


@dataclass
class Traffic:
    """Requests sent and body bytes received by one scheme."""

    requests: int = 0
    bytes: int = 0


class _Gdal:
    """The three GDAL functions, typed for ctypes."""

    def __init__(self) -> None:
        lib = gdal_library()
        self.get = lib.VSINetworkStatsGetAsSerializedJSON
        self.get.restype = ctypes.c_void_p
        self.get.argtypes = [ctypes.c_void_p]
        self.free = lib.VSIFree
        self.free.restype = None
        self.free.argtypes = [ctypes.c_void_p]
        self.reset = lib.VSINetworkStatsReset
        self.reset.restype = None
        self.set_option = lib.CPLSetConfigOption
        self.set_option.restype = None
        self.set_option.argtypes = [ctypes.c_char_p, ctypes.c_char_p]

    def take(self) -> str:
        """The counts as JSON, then cleared."""
        pointer = self.get(None)
        self.reset()
        if not pointer:
            return "{}"
        try:
            return ctypes.string_at(pointer).decode("utf-8", "replace")
        finally:
            self.free(pointer)


@functools.cache
def _gdal() -> _Gdal | None:
    try:
        return _Gdal()
    except (OSError, AttributeError) as exc:  # no library, or a GDAL older than 3.2
        logger.warning("GDAL's network statistics are not available: %s", exc)
        return None


def parse(document: str) -> dict[str, Traffic]:
    """Per scheme, the requests (every method) and bytes received of GDAL's JSON counts.

    Handlers not in :data:`SCHEMES` are named without their ``vsi`` prefix.
    """
    handlers: dict[str, Any] = json.loads(document).get("handlers", {})
    out: dict[str, Traffic] = {}
    for handler, stats in handlers.items():
        scheme = SCHEMES.get(handler, handler.removeprefix("vsi"))
        traffic = out.setdefault(scheme, Traffic())
        for method in stats.get("methods", {}).values():
            traffic.requests += int(method.get("count", 0))
            traffic.bytes += int(method.get("downloaded_bytes", 0))
    return out


class NetworkStats:
    """GDAL's network requests and bytes of this process, in samples (one per process).

    :meth:`enable` turns GDAL's counting on; :meth:`sample` returns what was counted since
    the previous sample, by any thread. Without GDAL's functions, samples are empty.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.enabled = False

    def enable(self) -> None:
        """Turn GDAL's counting on for the process; what was counted so far is dropped."""
        gdal = _gdal()
        if gdal is None:
            return
        with self._lock:
            if not self.enabled:
                gdal.set_option(ENABLE_OPTION.encode(), b"YES")
                self.enabled = True
            gdal.take()  # GDAL reads the option again after a reset

    def sample(self) -> dict[str, Traffic]:
        """Requests and bytes per scheme since the previous sample (only schemes used)."""
        gdal = _gdal()
        if gdal is None or not self.enabled:
            return {}
        with self._lock:
            document = gdal.take()
        try:
            found = parse(document)
        except (ValueError, TypeError, AttributeError) as exc:  # not GDAL's usual document
            # never the document itself: its file names may be signed URLs
            logger.warning("GDAL's network statistics not understood: %s", type(exc).__name__)
            return {}
        return {k: v for k, v in found.items() if v.requests or v.bytes}


#: the process's network statistics (GDAL's counts are process-wide)
NETWORK_STATS = NetworkStats()
