"""CRS query parameters that never reach the network or the disk, and coordinate bounds.

``coord_crs`` and ``dst_crs`` are untrusted text. GDAL's and PROJ's "user input" parsers
fetch URLs and read files, so the text is matched against what is allowed first, and each
form goes to a constructor that can only look in PROJ's database or parse the text itself:

- an authority code, ``EPSG:32633`` (any authority of PROJ's database: EPSG, ESRI, OGC,
  IGNF, ...), or the same as an OGC URN (``urn:ogc:def:crs:EPSG::32633``) or OGC URI
  (``http://www.opengis.net/def/crs/EPSG/0/32633``), read as a code, never fetched;
- inline WKT (``PROJCS[...]``, ``PROJCRS[...]``, ...) or a PROJ string (``+proj=utm ...``)
  without grid files, ``init`` files or extensions;
- a tile matrix set id (``WebMercatorQuad``): that set's CRS.

Coordinates are then checked against the CRS's area of use (widened by its own size on
each side) before anything transforms them: PROJ spins for minutes on coordinates such as
1e20 metres.
"""

import functools
import math
import re
from collections.abc import Callable
from typing import Annotated

import pyproj
from fastapi import Query
from morecantile.defaults import tms as default_tms
from pyproj.database import get_authorities
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.warp import transform_bounds
from rio_tiler.constants import WGS84_CRS

from tiler.api.checks import nesting_depth
from tiler.errors import InvalidCRS

#: longest CRS text accepted (a WKT2 definition of a projected CRS is ~1-3 KB)
MAX_CRS_LENGTH = 8192
#: brackets inside brackets in WKT (real definitions nest 6-8 deep)
MAX_WKT_DEPTH = 16
#: the largest coordinate magnitude allowed in metres, whatever the area of use says
MAX_METRES = 1.2e8

ALLOWED = (
    "an authority code (EPSG:32633, OGC:CRS84, ESRI:54009), an OGC URN or URI of one "
    "(urn:ogc:def:crs:EPSG::32633, http://www.opengis.net/def/crs/EPSG/0/32633), inline WKT "
    "or a PROJ string (+proj=utm +zone=33 +datum=WGS84), or a tile matrix set id "
    f"({', '.join(default_tms.list())}); never a file name or URL"
)

_CODE = r"(?P<code>[A-Za-z0-9_.\-]{1,40})"
_AUTH = r"(?P<auth>[A-Za-z][A-Za-z0-9_]{0,31})"
_AUTH_CODE = re.compile(rf"{_AUTH}:{_CODE}", re.ASCII)
_URN = re.compile(rf"urn:ogc:def:crs:{_AUTH}:[0-9.]*:{_CODE}", re.IGNORECASE | re.ASCII)
_URI = re.compile(
    rf"https?://www\.opengis\.net/def/crs/{_AUTH}/[0-9.]+/{_CODE}", re.IGNORECASE | re.ASCII
)
_WKT_KEYWORDS = frozenset(
    {
        "GEOGCS",
        "PROJCS",
        "COMPD_CS",
        "GEODCRS",
        "GEOGCRS",
        "GEODETICCRS",
        "GEOGRAPHICCRS",
        "PROJCRS",
        "PROJECTEDCRS",
        "COMPOUNDCRS",
        "BOUNDCRS",
    }
)
_WKT_START = re.compile(r"^(?P<keyword>[A-Za-z_][A-Za-z0-9_]*)\s*[\[(]")
#: what makes GDAL or PROJ open a file (grids, init files, WKT1 extensions with a PROJ
#: string, WKT2 parameter files) or a URL
_FORBIDDEN = re.compile(r"extension|parameterfile|grids|init|/vsi|://|@|file", re.IGNORECASE)
#: a CRS that PROJ quotes in an error message as its whole PROJJSON
_PROJJSON = re.compile(r"'\{[^']*'?")
_PROJ_STRING = re.compile(
    r"\+proj=[A-Za-z0-9_]+(\s+\+[A-Za-z_][A-Za-z0-9_]*(=[\w.,:+\-]*)?)*", re.ASCII
)


def _invalid(name: str, text: str, why: str) -> InvalidCRS:
    shown = text if len(text) <= 80 else text[:80] + "..."
    return InvalidCRS(f"{name}={shown!r}: {why}; allowed: {ALLOWED}")


def _from_code(name: str, text: str, auth: str, code: str) -> CRS:
    authorities = {a.upper(): a for a in get_authorities()}
    if auth.upper() not in authorities:
        raise _invalid(name, text, f"unknown authority {auth!r} (known: {', '.join(authorities)})")
    try:
        if auth.upper() == "EPSG" and code.isdigit():
            return CRS.from_epsg(int(code))
        found = pyproj.CRS.from_authority(authorities[auth.upper()], code)
        return CRS.from_wkt(found.to_wkt())
    except (CRSError, pyproj.exceptions.CRSError, ValueError):
        raise _invalid(name, text, f"{auth}:{code} is not a CRS of PROJ's database") from None


def parse_crs(name: str, value: str | None) -> CRS | None:
    """The CRS a query parameter names (None when absent), without network or file access.

    Args:
        name: the parameter's name, for messages.
        value: the text.

    Raises:
        InvalidCRS: not one of the allowed forms, unknown, or not a horizontal CRS.
    """
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if len(text) > MAX_CRS_LENGTH:
        raise _invalid(name, text, f"longer than {MAX_CRS_LENGTH} characters")
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in text):
        raise _invalid(name, text, "control characters are not allowed")
    crs: CRS | None = None
    if text in default_tms.list():
        crs = default_tms.get(text).rasterio_crs
    elif m := (_AUTH_CODE.fullmatch(text) or _URN.fullmatch(text) or _URI.fullmatch(text)):
        crs = _from_code(name, text, m["auth"], m["code"])
    elif (m := _WKT_START.match(text)) and m["keyword"].upper() in _WKT_KEYWORDS:
        if _FORBIDDEN.search(text):
            raise _invalid(name, text, "WKT naming files, grids, extensions or URLs")
        if nesting_depth(text, "[(", "])") > MAX_WKT_DEPTH:
            raise _invalid(name, text, f"WKT nested more than {MAX_WKT_DEPTH} deep")
        try:
            crs = CRS.from_wkt(text)
        except CRSError as exc:
            raise _invalid(name, text, f"not valid WKT ({str(exc)[:200]})") from None
    elif text.startswith("+proj="):
        if not _PROJ_STRING.fullmatch(text) or _FORBIDDEN.search(text):
            raise _invalid(
                name, text, "PROJ strings are +key=value terms without grids, init or files"
            )
        try:
            crs = CRS.from_wkt(pyproj.CRS.from_proj4(text).to_wkt())
        except (CRSError, pyproj.exceptions.CRSError) as exc:
            raise _invalid(name, text, f"not a valid PROJ string ({str(exc)[:200]})") from None
    if crs is None:
        raise _invalid(name, text, "not an accepted form")
    if not (crs.is_geographic or crs.is_projected):
        raise _invalid(name, text, "not a horizontal (geographic or projected) CRS")
    return crs


def _crs_query(name: str, description: str) -> Callable[[str | None], CRS | None]:
    """A dependency: the query parameter ``name`` parsed safely (:func:`parse_crs`).

    The annotations are evaluated here (this module has no ``from __future__ import
    annotations``), so FastAPI sees each parameter's own name and description.
    """

    def dependency(
        crs: Annotated[
            str | None,
            Query(alias=name, max_length=MAX_CRS_LENGTH, description=f"{description}: {ALLOWED}."),
        ] = None,
    ) -> CRS | None:
        return parse_crs(name, crs)

    return dependency


#: the ``coord_crs`` query parameter (titiler's name)
CoordCRSParams = _crs_query("coord_crs", "CRS of the input coordinates (default WGS84 lon/lat)")
#: the ``dst_crs`` query parameter (titiler's name)
DstCRSParams = _crs_query("dst_crs", "CRS of the output grid (default: coord_crs)")


# ---------------------------------------------------------------------------------------
# coordinates


@functools.lru_cache(maxsize=128)
def _valid_bounds(wkt: str) -> tuple[float, float, float, float]:
    crs = pyproj.CRS.from_wkt(wkt)
    factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    if crs.is_geographic:
        half = math.pi / (factor or math.pi / 180)  # 180 degrees, 200 grads
        return (-half, -half / 2, half, half / 2)
    cap = MAX_METRES / (factor or 1.0)
    area = crs.area_of_use.bounds if crs.area_of_use else (-180.0, -90.0, 180.0, 90.0)
    try:
        to_crs = pyproj.Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True)
        w, s, e, n = to_crs.transform_bounds(*area, densify_pts=21)
    except (pyproj.exceptions.ProjError, pyproj.exceptions.CRSError, ValueError):
        return (-cap, -cap, cap, cap)
    if not all(math.isfinite(v) for v in (w, s, e, n)) or w >= e or s >= n:
        return (-cap, -cap, cap, cap)
    dx, dy = e - w, n - s
    return (max(-cap, w - dx), max(-cap, s - dy), min(cap, e + dx), min(cap, n + dy))


def valid_bounds(crs: CRS) -> tuple[float, float, float, float]:
    """Where coordinates of ``crs`` may lie (x/y order of rasterio: east, north).

    Its area of use, widened by its own size on each side, at most 1.2e8 metres from the
    origin; geographic CRSs: the globe.
    """
    return _valid_bounds(crs.to_wkt(version="WKT2_2019"))  # WKT2 keeps the area of use


def _crs_name(crs: CRS) -> str:
    """A short name of ``crs`` for a message: its code, else its WKT name, else a phrase.

    rasterio's CRS has no ``name``: an inline definition (whose string is its whole WKT)
    is named by the name in that WKT, as PROJ reads it.
    """
    text = str(crs.to_string())
    if len(text) <= 40:
        return text
    try:
        name = str(pyproj.CRS.from_wkt(crs.to_wkt()).name or "")
    except pyproj.exceptions.CRSError:
        name = ""
    if name and name.lower() != "unknown":
        return repr(name if len(name) <= 60 else name[:60] + "...")
    return "(an unnamed inline CRS)"


def check_coordinates(
    name: str, crs: CRS, xs: tuple[float, ...], ys: tuple[float, ...], what: str
) -> None:
    """Every x in ``xs`` and y in ``ys`` is finite and within :func:`valid_bounds`.

    Raises:
        InvalidCRS: a coordinate outside (the message gives the allowed ranges).
    """
    if not all(math.isfinite(v) for v in (*xs, *ys)):
        raise InvalidCRS(f"{what}: coordinates must be finite numbers")
    w, s, e, n = valid_bounds(crs)
    if all(w <= x <= e for x in xs) and all(s <= y <= n for y in ys):
        return
    if crs.is_geographic:
        x, y, why = "lon", "lat", "the globe"
    else:
        x, y, why = "x", "y", "the CRS's area of use, widened by its own size on each side"
    raise InvalidCRS(
        f"{what} is outside the valid range of {name} {_crs_name(crs)}: {x} must be in "
        f"[{w:.10g}, {e:.10g}] and {y} in [{s:.10g}, {n:.10g}] ({why})"
    )


def projected_bounds(
    bbox: tuple[float, float, float, float], src: CRS, dst: CRS, what: str
) -> tuple[float, float, float, float]:
    """``bbox`` (already checked in ``src``) in ``dst``; an area there.

    Raises:
        InvalidCRS: it cannot be projected to ``dst`` (not finite, or no area left).
    """
    if src == dst:
        return bbox
    try:
        out = transform_bounds(src, dst, *bbox, densify_pts=21)
    except Exception as exc:  # GDAL/PROJ errors of many classes: the input's fault here
        why = _PROJJSON.sub("the inline CRS", str(exc))[:200]  # PROJ quotes whole PROJJSON
        raise InvalidCRS(
            f"{what} cannot be projected to {_crs_name(dst)} ({why or type(exc).__name__}): "
            "choose CRSs between which PROJ knows a coordinate operation"
        ) from None
    w, s, e, n = out
    if not all(math.isfinite(v) for v in out) or w >= e or s >= n:
        raise InvalidCRS(
            f"{what} cannot be projected to {_crs_name(dst)}: choose an area inside that "
            "CRS's area of use"
        )
    return (w, s, e, n)


__all__ = [
    "ALLOWED",
    "WGS84_CRS",
    "CoordCRSParams",
    "DstCRSParams",
    "check_coordinates",
    "parse_crs",
    "projected_bounds",
    "valid_bounds",
]
