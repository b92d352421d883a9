"""Build a STAC ItemCollection from local (cloud-optimized) GeoTIFF files.

This is the library behind ``tiler index``. Every file is read once with
:func:`rio_stac.create_stac_item`, which supplies the footprint, the bbox and the
``proj:*``, ``raster:bands`` and ``eo:bands`` metadata. Files are then grouped into
items (one file per band, or one multi-band file per item), each item gets a
datetime, and the items are written as a GeoJSON FeatureCollection of STAC 1.0
items whose asset hrefs are relative to the output file.

Grouping, when no ``group_pattern`` is given, works folder by folder:

* a file with several bands is always an item of its own (id = file stem, one
  asset ``"data"``);
* the single-band files of a folder whose stems are ``<scene>_<band>`` with one
  common ``<scene>`` form one item named after the folder
  (``LE70350322008118EDC00/LE70350322008118EDC00_b3.tif`` -> item
  ``LE70350322008118EDC00``, asset ``b3``);
* otherwise, when all stems share a leading ``_``-separated prefix and the rest
  holds no date (``LC08_..._T2_SR_B2`` / ``LC08_..._T2_QA_PIXEL``), or when no stem
  contains ``_`` and none holds a date (``B02.tif``, ``SCL.tif``), the folder is
  one item and the asset keys are the varying parts;
* otherwise files sharing ``<scene>`` form an item named ``<scene>`` and the
  remaining files are items of their own.

Datetimes come, in order, from ``datetime_pattern``/``datetime_format``, from the
``ACQUISITION_DATETIME`` / ``IMAGERY:ACQUISITIONDATETIME`` / ``TIFFTAG_DATETIME``
tags of the item's first file, from a date found in the item id or file path
(``YYYYMMDD[THHMMSS]``, ``YYYY-MM-DD``, Landsat ``LXSPPPRRRYYYYDDD`` and MODIS
``AYYYYDDD``), and finally from the fixed ``datetime`` option.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from datetime import datetime as dt_datetime
from pathlib import Path
from typing import Any

import numpy
import pystac
import rasterio
from pystac.utils import datetime_to_str, str_to_datetime
from rasterio.enums import MaskFlags
from rasterio.errors import RasterioError
from rio_stac import create_stac_item
from shapely import union_all
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from tiler.errors import TilerError

logger = logging.getLogger(__name__)

__all__ = [
    "DatetimeNotFoundError",
    "IndexingError",
    "InvalidPatternError",
    "NoFilesFoundError",
    "build_item_collection",
]

STAC_VERSION = "1.0.0"
GEOTIFF_MEDIA_TYPE = "image/tiff; application=geotiff"
COG_MEDIA_TYPE = f"{GEOTIFF_MEDIA_TYPE}; profile=cloud-optimized"
TIFF_SUFFIXES = frozenset({".tif", ".tiff"})
DATA_ASSET = "data"

#: Points added to each edge of the bounds before reprojecting the footprint
#: (the value GDAL uses), decimals kept in the WGS84 coordinates (~1 cm), and
#: tolerance (degrees) for dropping the added points where the edge stays straight.
GEOM_DENSIFY_PTS = 21
GEOM_PRECISION = 7
SIMPLIFY_TOLERANCE = 1e-7

_MIN_YEAR = 1970
_MAX_YEAR = 2100

# Dates recognised in item ids and paths; the earliest match in the string wins.
_AUTO_YMD = re.compile(
    r"(?<!\d)(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2}))?(?!\d)"
)
_AUTO_ISO = re.compile(
    r"(?<!\d)(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):?(?P<M>\d{2}):?(?P<S>\d{2}))?(?!\d)"
)
# Landsat pre-collection scene id: L + sensor + satellite + WRS path/row + YYYYDDD.
_AUTO_LANDSAT = re.compile(r"(?<![A-Za-z0-9])L[A-Z]\d(?:\d{6})(?P<y>\d{4})(?P<j>\d{3})(?!\d)")
# MODIS granule: .AYYYYDDD.
_AUTO_MODIS = re.compile(r"(?<![A-Za-z0-9])A(?P<y>\d{4})(?P<j>\d{3})(?![A-Za-z0-9])")


class IndexingError(TilerError, ValueError):
    """The files or options given to the indexer cannot produce an ItemCollection."""


class NoFilesFoundError(IndexingError):
    """No GeoTIFF file was found in the given paths."""


class InvalidPatternError(IndexingError):
    """A regular expression option does not compile or lacks a required group."""


class DatetimeNotFoundError(IndexingError):
    """No datetime could be determined for an item."""


@dataclass(frozen=True)
class _Source:
    """A file to index, with the path its patterns are matched against."""

    path: Path
    """Absolute, resolved path of the file."""
    rel: str
    """Posix path relative to the folder it was found in (or its name)."""


@dataclass
class _Scan:
    """What one read of a file tells about it."""

    source: _Source
    count: int
    descriptions: tuple[str | None, ...]
    tag_datetime: dt_datetime | None
    media_type: str | None
    geometry: dict[str, Any]
    proj: dict[str, Any]
    raster_bands: list[dict[str, Any]]
    cloud_cover: float | None


@dataclass
class _Group:
    """The files of one item, keyed by asset key."""

    item_id: str
    assets: dict[str, _Scan] = field(default_factory=dict)


def build_item_collection(
    paths: Sequence[str | Path],
    *,
    output: Path,
    collection_id: str | None = None,
    group_pattern: str | None = None,
    datetime_pattern: str | None = None,
    datetime_format: str | None = None,
    datetime: str | None = None,
    properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Index GeoTIFF files into a STAC ItemCollection and write it to ``output``.

    Args:
        paths: Files and/or folders. Folders are searched recursively for
            ``*.tif`` / ``*.tiff`` (any case); hidden files and folders are skipped.
        output: Where the FeatureCollection JSON is written. Asset hrefs are
            relative (posix) to ``output.parent``. Parent folders are created.
        collection_id: Value of ``collection`` on every item; defaults to the
            stem of ``output``.
        group_pattern: Regular expression searched in each file's posix path
            relative to the folder it was found in (or its name, for a file given
            directly). The named group ``item`` is the item id, the optional
            named group ``band`` is the asset key. Files with the same ``item``
            form one item; files that do not match are skipped with a warning.
        datetime_pattern: Regular expression with a named group ``date``,
            searched in the relative path of an item's first file and then in its
            id.
        datetime_format: :func:`~datetime.datetime.strptime` format of the
            ``date`` group (e.g. ``"%Y%j"`` for Landsat ``YYYYDDD``). Without it
            the group may be ISO 8601, ``YYYYMMDD[THHMMSS]`` or ``YYYYDDD``.
        datetime: Fixed RFC 3339 datetime used for items whose datetime cannot be
            determined otherwise.
        properties: Extra properties for every item (they override the computed
            ones, except ``datetime`` which they must not contain); must be
            JSON-serialisable.

    Returns:
        The FeatureCollection, items sorted by datetime then id.

    Raises:
        NoFilesFoundError: No GeoTIFF in ``paths`` (or none matches
            ``group_pattern``).
        InvalidPatternError: A pattern does not compile or lacks its group.
        DatetimeNotFoundError: An item's datetime cannot be determined.
        IndexingError: Any other bad input: missing path, unreadable file, file
            without CRS, duplicate item ids or asset keys, bad options.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    output = Path(output)
    collection = collection_id if collection_id is not None else output.stem
    if not collection:
        raise IndexingError("collection_id must not be empty")

    group_re = _compile(group_pattern, "group_pattern", required="item", optional="band")
    date_re = _compile(datetime_pattern, "datetime_pattern", required="date")
    if datetime_format is not None and date_re is None:
        raise IndexingError(
            "datetime_format needs datetime_pattern (a regex with a named group 'date')"
        )
    fixed_datetime = _parse_fixed_datetime(datetime) if datetime is not None else None
    extra_properties = _check_properties(properties)

    sources = _discover(paths)
    if group_re is not None:
        matched = _match_group_pattern(sources, group_re)
        logger.info("Indexing %d file(s) into collection %r", len(matched), collection)
        scans = {src.path: _scan(src) for src, _, _ in matched}
        groups = _groups_from_pattern(matched, scans, group_re.pattern)
    else:
        logger.info("Indexing %d file(s) into collection %r", len(sources), collection)
        groups = _default_groups([_scan(src) for src in sources])

    base = output.parent.resolve()
    items = [
        _build_item(
            group,
            collection=collection,
            base=base,
            date_re=date_re,
            datetime_format=datetime_format,
            fixed_datetime=fixed_datetime,
            extra_properties=extra_properties,
        )
        for group in groups
    ]
    items.sort(key=lambda item: (str_to_datetime(item["properties"]["datetime"]), item["id"]))

    fc: dict[str, Any] = {"type": "FeatureCollection", "features": items}
    _write_json(fc, output)
    logger.info("Wrote %d item(s) to %s", len(items), output)
    return fc


# --------------------------------------------------------------------------- options


def _compile(
    pattern: str | None, option: str, *, required: str, optional: str | None = None
) -> re.Pattern[str] | None:
    """Compile a regex option and check its named groups."""
    if pattern is None:
        return None
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise InvalidPatternError(f"{option} {pattern!r} is not a valid regex: {err}") from err
    if required not in regex.groupindex:
        wanted = f"(?P<{required}>...)"
        if optional:
            wanted += f" and optionally (?P<{optional}>...)"
        raise InvalidPatternError(
            f"{option} {pattern!r} has no named group '{required}'; use {wanted}"
        )
    return regex


def _parse_fixed_datetime(value: str) -> dt_datetime:
    """Parse the fixed ``datetime`` option (RFC 3339; a bare date is midnight UTC)."""
    try:
        return _as_utc(str_to_datetime(value))
    except (ValueError, OverflowError) as err:
        raise IndexingError(f"datetime {value!r} is not an RFC 3339 datetime: {err}") from err


def _check_properties(properties: dict[str, Any] | None) -> dict[str, Any]:
    """Check the extra properties are a JSON-serialisable mapping."""
    if properties is None:
        return {}
    if not isinstance(properties, dict):
        raise IndexingError(f"properties must be a dict, not {type(properties).__name__}")
    if "datetime" in properties:
        raise IndexingError(
            "properties must not contain 'datetime': use datetime_pattern or datetime"
        )
    try:
        json.dumps(properties, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise IndexingError(f"properties are not JSON-serialisable: {err}") from err
    return dict(properties)


# ----------------------------------------------------------------------- discovery


def _is_hidden(parts: Iterable[str]) -> bool:
    return any(part.startswith(".") for part in parts)


def _discover(paths: Iterable[str | Path]) -> list[_Source]:
    """List the GeoTIFF files of ``paths``, without duplicates, in a stable order."""
    sources: dict[Path, _Source] = {}
    given = 0
    for entry in paths:
        given += 1
        path = Path(entry).expanduser()
        if path.is_dir():
            root = path.resolve()
            found = sorted(
                p
                for p in root.rglob("*")
                if p.suffix.lower() in TIFF_SUFFIXES
                and p.is_file()
                and not _is_hidden(p.relative_to(root).parts)
            )
            if not found:
                logger.warning("No *.tif / *.tiff file under %s", path)
            for file in found:
                resolved = file.resolve()
                sources.setdefault(resolved, _Source(resolved, file.relative_to(root).as_posix()))
        elif path.is_file():
            resolved = path.resolve()
            sources.setdefault(resolved, _Source(resolved, path.name))
        else:
            raise IndexingError(f"{path} does not exist (or is not a file or folder)")
    if given == 0:
        raise NoFilesFoundError("no path given to index")
    if not sources:
        shown = ", ".join(str(p) for p in paths)
        raise NoFilesFoundError(f"no *.tif / *.tiff file found in: {shown}")
    return sorted(sources.values(), key=lambda s: str(s.path))


# --------------------------------------------------------------------------- reading


def _scan(source: _Source) -> _Scan:
    """Read one file's metadata with rio-stac (one open per file)."""
    try:
        with rasterio.open(source.path) as src:
            if src.crs is None and not src.gcps[0]:
                raise IndexingError(f"{source.path} has no CRS: cannot compute its footprint")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                item = create_stac_item(
                    src,
                    input_datetime=dt_datetime(2000, 1, 1, tzinfo=UTC),  # replaced later
                    with_proj=True,
                    with_raster=True,
                    with_eo=True,
                    geom_densify_pts=GEOM_DENSIFY_PTS,
                    geom_precision=GEOM_PRECISION,
                )
            for warning in caught:
                logger.debug("rio-stac on %s: %s", source.path, warning.message)
            raster_bands = [
                _clean_raster_band(b)
                for b in next(iter(item.assets.values())).extra_fields["raster:bands"]
            ]
            _fix_valid_percent(src, raster_bands)
            tag_datetime = _tag_datetime(src, source.path)
            media_type = _media_type(src, item)
            count = src.count
            descriptions = tuple(src.descriptions)
    except RasterioError as err:
        raise IndexingError(f"cannot read {source.path}: {err}") from err

    props = item.properties
    cloud = props.get("eo:cloud_cover")
    return _Scan(
        source=source,
        count=count,
        descriptions=descriptions,
        tag_datetime=tag_datetime,
        media_type=media_type,
        geometry=item.geometry or {},
        proj={k: v for k, v in props.items() if k.startswith("proj:")},
        raster_bands=raster_bands,
        cloud_cover=float(cloud) if cloud is not None else None,
    )


def _media_type(src: Any, item: pystac.Item) -> str | None:
    """GeoTIFF media type, with the COG profile for tiled files with overviews."""
    if src.driver != "GTiff":
        auto = next(iter(item.assets.values())).media_type
        return str(auto) if auto else None
    layout = src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT", "").upper()
    if layout == "COG" or (src.profile.get("tiled") and src.overviews(1)):
        return COG_MEDIA_TYPE
    return GEOTIFF_MEDIA_TYPE


def _clean_raster_band(band: dict[str, Any]) -> dict[str, Any]:
    """Keep rio-stac's band info minus the histogram, identity scale/offset and NaNs."""
    out: dict[str, Any] = {}
    for key, value in band.items():
        if (
            key == "histogram"
            or (key == "scale" and value == 1)
            or (key == "offset" and value == 0)
        ):
            continue
        if key == "statistics":
            value = {
                k: v for k, v in value.items() if isinstance(v, int | float) and math.isfinite(v)
            }
            if not value:
                continue
        out[key] = value
    return out


def _fix_valid_percent(src: Any, bands: list[dict[str, Any]]) -> None:
    """Correct ``statistics.valid_percent`` of bands without any mask.

    rio-stac 0.12 computes it as ``count_nonzero(~arr.mask) / size``; when nothing
    is masked (no nodata, no NaN) ``arr.mask`` is the scalar ``False`` and the result
    is one pixel's worth (e.g. 0.027 % of a 61x61 band) instead of 100 %.
    """
    for index, band in zip(src.indexes, bands, strict=True):
        stats = band.get("statistics")
        if not stats or "valid_percent" not in stats:
            continue
        if src.mask_flag_enums[index - 1] != [MaskFlags.all_valid]:
            continue  # nodata / mask band: rio-stac's masked array is a full array
        if numpy.issubdtype(numpy.dtype(src.dtypes[index - 1]), numpy.floating):
            height, width = _stats_shape(src.height, src.width)
            data = src.read(index, out_shape=(height, width))
            stats["valid_percent"] = float(numpy.isfinite(data).mean() * 100)
        else:
            stats["valid_percent"] = 100.0


def _stats_shape(height: int, width: int, max_size: int = 1024) -> tuple[int, int]:
    """The decimated shape rio-stac reads statistics at (its ``raster_max_size``)."""
    if max(width, height) <= max_size:
        return height, width
    ratio = height / width
    if ratio > 1:
        return max_size, math.ceil(max_size / ratio)
    return math.ceil(max_size * ratio), max_size


def _tag_datetime(src: Any, path: Path) -> dt_datetime | None:
    """Datetime from the acquisition / TIFF datetime tags, if present and valid."""
    tags = src.tags()
    candidates = [
        ("ACQUISITION_DATETIME", tags.get("ACQUISITION_DATETIME")),
        ("IMAGERY:ACQUISITIONDATETIME", src.get_tag_item("ACQUISITIONDATETIME", "IMAGERY")),
        ("TIFFTAG_DATETIME", tags.get("TIFFTAG_DATETIME")),
    ]
    for name, value in candidates:
        if not value:
            continue
        text = value.strip()
        try:
            if re.fullmatch(r"\d{4}:\d{2}:\d{2} \d{2}:\d{2}:\d{2}", text):
                return dt_datetime.strptime(text, "%Y:%m:%d %H:%M:%S").replace(tzinfo=UTC)
            return _as_utc(str_to_datetime(text))
        except (ValueError, OverflowError):
            logger.warning("%s: cannot parse %s=%r, ignoring it", path, name, value)
    return None


# -------------------------------------------------------------------------- grouping


def _match_group_pattern(
    sources: list[_Source], regex: re.Pattern[str]
) -> list[tuple[_Source, str, str | None]]:
    """Apply ``group_pattern``: (source, item id, band or None) of matching files."""
    matched: list[tuple[_Source, str, str | None]] = []
    skipped: list[str] = []
    for src in sources:
        match = regex.search(src.rel)
        if match is None or not match.group("item"):
            skipped.append(src.rel)
            continue
        band = match.groupdict().get("band") or None
        matched.append((src, match.group("item"), band))
    if skipped:
        logger.warning(
            "group_pattern %r does not match %d file(s), skipped: %s%s",
            regex.pattern,
            len(skipped),
            ", ".join(skipped[:5]),
            ", ..." if len(skipped) > 5 else "",
        )
    if not matched:
        raise NoFilesFoundError(
            f"group_pattern {regex.pattern!r} matches none of the {len(sources)} file(s) "
            f"(it is searched in paths like {sources[0].rel!r})"
        )
    return matched


def _groups_from_pattern(
    matched: list[tuple[_Source, str, str | None]],
    scans: dict[Path, _Scan],
    pattern: str,
) -> list[_Group]:
    """Group files by the ``item`` group; asset keys from ``band`` (or ``data``)."""
    groups: dict[str, _Group] = {}
    for src, item_id, band in matched:
        group = groups.setdefault(item_id, _Group(item_id))
        key = band or DATA_ASSET
        if key in group.assets:
            other = group.assets[key].source.rel
            hint = (
                "add a named group 'band' to tell them apart"
                if band is None
                else "make the 'band' group unique per file"
            )
            raise IndexingError(
                f"group_pattern {pattern!r} gives item {item_id!r} two files for asset "
                f"{key!r} ({other} and {src.rel}): {hint}"
            )
        group.assets[key] = scans[src.path]
    return list(groups.values())


def _tokens(stem: str) -> list[str]:
    return stem.split("_")


def _has_date(text: str) -> bool:
    return _find_date(text) is not None


def _default_groups(scans: list[_Scan]) -> list[_Group]:
    """Group files folder by folder (see the module docstring)."""
    groups: list[_Group] = []
    by_folder: dict[Path, list[_Scan]] = defaultdict(list)
    for scan in scans:
        by_folder[scan.source.path.parent].append(scan)

    for folder, members in sorted(by_folder.items(), key=lambda kv: str(kv[0])):
        single = sorted((s for s in members if s.count == 1), key=lambda s: s.source.path.name)
        for scan in members:
            if scan.count != 1:
                groups.append(_lone(scan))
        if len(single) < 2:
            groups.extend(_lone(s) for s in single)
            continue
        bands = _folder_bands([s.source.path.stem for s in single])
        if bands is not None:
            group = _Group(folder.name)
            for scan, band in zip(single, bands, strict=True):
                group.assets[band] = scan
            logger.debug("%s: one item of %d bands %s", folder, len(bands), bands)
            groups.append(group)
            continue
        # Several scenes in one folder: group by the stem before the last "_".
        by_prefix: dict[str, list[tuple[_Scan, str]]] = defaultdict(list)
        for scan in single:
            prefix, sep, band = scan.source.path.stem.rpartition("_")
            by_prefix[prefix if sep and prefix and band else ""].append((scan, band))
        for prefix, files in by_prefix.items():
            keys = [band for _, band in files]
            if prefix and len(files) > 1 and _unique(keys) and not any(map(_has_date, keys)):
                group = _Group(prefix)
                for scan, band in files:
                    group.assets[band] = scan
                groups.append(group)
            else:
                groups.extend(_lone(scan) for scan, _ in files)
    _check_unique_ids(groups)
    return groups


def _folder_bands(stems: list[str]) -> list[str] | None:
    """Asset keys when the single-band files of one folder form one item, else None."""
    # <scene>_<band> with one common <scene>: band = the part after the last "_".
    split = [stem.rpartition("_") for stem in stems]
    prefixes = {prefix for prefix, sep, band in split if sep and prefix and band}
    bands = [band for _, _, band in split]
    if (
        len(prefixes) == 1
        and all(sep for _, sep, _ in split)
        and _unique(bands)
        and not any(_has_date(b) for b in bands)
    ):
        return bands
    # Common leading "_"-separated tokens, the rest (not a date) as key.
    tokens = [_tokens(stem) for stem in stems]
    common = 0
    shortest = min(len(t) for t in tokens)
    while common < shortest - 1 and len({t[common] for t in tokens}) == 1:
        common += 1
    if common:
        rest = ["_".join(t[common:]) for t in tokens]
        if _unique(rest) and not any(_has_date(r) for r in rest):
            return rest
        return None
    # Plain band names without any "_" (B02.tif, B03.tif, SCL.tif).
    if all("_" not in stem for stem in stems) and not any(_has_date(s) for s in stems):
        return list(stems) if _unique(stems) else None
    return None


def _unique(values: list[str]) -> bool:
    return len(set(values)) == len(values) and all(values)


def _lone(scan: _Scan) -> _Group:
    """One file as one item: id = stem, asset ``data``."""
    return _Group(scan.source.path.stem, {DATA_ASSET: scan})


def _check_unique_ids(groups: list[_Group]) -> None:
    """Refuse two items with the same id (e.g. equal folder names under two roots)."""
    seen: dict[str, _Group] = {}
    for group in groups:
        if group.item_id in seen:
            first = next(iter(seen[group.item_id].assets.values())).source.path
            second = next(iter(group.assets.values())).source.path
            raise IndexingError(
                f"two items would have the id {group.item_id!r} ({first.parent} and "
                f"{second.parent}); index them separately or use group_pattern"
            )
        seen[group.item_id] = group


# -------------------------------------------------------------------------- datetime


def _as_utc(value: dt_datetime) -> dt_datetime:
    """Naive datetimes are UTC; aware ones are converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _valid_year(year: int) -> bool:
    return _MIN_YEAR <= year <= _MAX_YEAR


def _date_from_match(match: re.Match[str]) -> dt_datetime | None:
    """Build a datetime from an auto-detection match, or None if not a valid date."""
    parts = match.groupdict()
    year = int(parts["y"])
    if not _valid_year(year):
        return None
    try:
        if parts.get("j") is not None:
            day = dt_datetime.strptime(f"{year:04d}{parts['j']}", "%Y%j")
            if day.year != year:
                return None
            return day.replace(tzinfo=UTC)
        hour, minute, second = (int(parts[k] or 0) for k in ("H", "M", "S"))
        return dt_datetime(year, int(parts["m"]), int(parts["d"]), hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


def _find_date(text: str) -> dt_datetime | None:
    """The earliest date found in ``text`` by the automatic patterns."""
    best: tuple[int, dt_datetime] | None = None
    for regex in (_AUTO_YMD, _AUTO_ISO, _AUTO_LANDSAT, _AUTO_MODIS):
        for match in regex.finditer(text):
            value = _date_from_match(match)
            if value is not None:
                if best is None or match.start() < best[0]:
                    best = (match.start(), value)
                break
    return best[1] if best else None


def _parse_date_group(text: str, fmt: str | None, origin: str) -> dt_datetime:
    """Parse the ``date`` group of ``datetime_pattern``."""
    if fmt is not None:
        try:
            return _as_utc(dt_datetime.strptime(text, fmt))
        except ValueError as err:
            raise IndexingError(
                f"{origin}: date {text!r} does not fit datetime_format {fmt!r}: {err}"
            ) from err
    found = _find_date(text)
    if found is not None:
        return found
    if re.fullmatch(r"\d{7}", text) and _valid_year(int(text[:4])):
        try:
            return dt_datetime.strptime(text, "%Y%j").replace(tzinfo=UTC)
        except ValueError:
            pass
    try:
        return _as_utc(str_to_datetime(text))
    except (ValueError, OverflowError) as err:
        raise IndexingError(
            f"{origin}: cannot parse date {text!r}; give datetime_format (e.g. '%Y%m%d' or '%Y%j')"
        ) from err


def _item_datetime(
    group: _Group,
    first: _Scan,
    date_re: re.Pattern[str] | None,
    fmt: str | None,
    fixed: dt_datetime | None,
) -> dt_datetime:
    """Determine an item's datetime from the configured sources, in order."""
    rel = first.source.rel
    if date_re is not None:
        for text in (rel, group.item_id):
            match = date_re.search(text)
            if match is not None and match.group("date"):
                return _parse_date_group(match.group("date"), fmt, str(first.source.path))
        logger.warning(
            "datetime_pattern %r matches neither %r nor item id %r; trying other sources",
            date_re.pattern,
            rel,
            group.item_id,
        )
    if first.tag_datetime is not None:
        return first.tag_datetime
    for text in (group.item_id, rel):
        found = _find_date(text)
        if found is not None:
            return found
    if fixed is not None:
        return fixed
    raise DatetimeNotFoundError(
        f"cannot determine the datetime of item {group.item_id!r} ({first.source.path}): "
        "no datetime tag and no YYYYMMDD / Landsat YYYYDDD date in its name; pass "
        "datetime_pattern (+ datetime_format) or a fixed datetime"
    )


# ------------------------------------------------------------------------ item build


def _natural_key(text: str) -> list[Any]:
    """Sort key putting B2 before B10."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def _href(path: Path, base: Path) -> str:
    """Posix href of ``path`` relative to ``base`` (absolute URI if impossible)."""
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # e.g. another drive on Windows
        return path.as_uri()


def _eo_bands(scan: _Scan, key: str) -> list[dict[str, Any]]:
    """``eo:bands`` names: the asset key for one band, else descriptions or b1..bn."""
    bands: list[dict[str, Any]] = []
    for i in range(scan.count):
        desc = scan.descriptions[i] if i < len(scan.descriptions) else None
        name = key if scan.count == 1 and key != DATA_ASSET else desc or f"b{i + 1}"
        band: dict[str, Any] = {"name": name}
        if desc and desc != name:
            band["description"] = desc
        bands.append(band)
    return bands


def _round_coords(value: Any) -> Any:
    if isinstance(value, int | float):
        return round(float(value), GEOM_PRECISION)
    return [_round_coords(v) for v in value]


def _footprint(scans: list[_Scan]) -> dict[str, Any]:
    """The first file's footprint, or the union of all when they differ."""
    geoms: list[BaseGeometry] = [shape(s.geometry) for s in scans]
    union = geoms[0]
    for geom in geoms[1:]:
        if not union.buffer(1e-9).contains(geom):
            union = union_all([union, geom])
    # Drop the densified points that lie on a straight line (within ~1 cm).
    union = union.simplify(SIMPLIFY_TOLERANCE, preserve_topology=True)
    if union.geom_type == "Polygon":
        union = orient(union, 1.0)
    elif union.geom_type == "MultiPolygon":
        union = type(union)([orient(p, 1.0) for p in union.geoms])
    geo = mapping(union)
    return {"type": geo["type"], "coordinates": _round_coords(geo["coordinates"])}


def _bbox(geometry: dict[str, Any]) -> list[float]:
    minx, miny, maxx, maxy = shape(geometry).bounds
    return [round(v, GEOM_PRECISION) for v in (minx, miny, maxx, maxy)]


def _grid_key(proj: dict[str, Any]) -> str:
    return json.dumps(proj, sort_keys=True)


def _build_item(
    group: _Group,
    *,
    collection: str,
    base: Path,
    date_re: re.Pattern[str] | None,
    datetime_format: str | None,
    fixed_datetime: dt_datetime | None,
    extra_properties: dict[str, Any],
) -> dict[str, Any]:
    """Assemble one STAC item dict from the scans of its files."""
    keys = sorted(group.assets, key=_natural_key)
    scans = [group.assets[k] for k in keys]
    first = min(scans, key=lambda s: str(s.source.path))
    when = _item_datetime(group, first, date_re, datetime_format, fixed_datetime)

    # Item-level projection = the most common grid; other assets carry their own.
    grids = Counter(_grid_key(s.proj) for s in scans)
    top = max(grids.values())
    item_proj = next(s.proj for s in scans if grids[_grid_key(s.proj)] == top)

    properties: dict[str, Any] = {"datetime": datetime_to_str(when)}
    properties.update(item_proj)
    clouds = [s.cloud_cover for s in scans if s.cloud_cover is not None]
    if clouds:
        properties["eo:cloud_cover"] = clouds[0]
    properties.update(extra_properties)

    geometry = _footprint(scans)
    item = pystac.Item(
        id=group.item_id,
        geometry=geometry,
        bbox=_bbox(geometry),
        datetime=when,
        properties=properties,
        collection=collection,
        stac_extensions=[
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
        ],
    )
    # The item schema allows "collection" only next to a rel="collection" link; like
    # rio-stac, point it at the collection id (no Collection document is written).
    item.add_link(
        pystac.Link(pystac.RelType.COLLECTION, collection, media_type=pystac.MediaType.JSON)
    )
    for key, scan in zip(keys, scans, strict=True):
        extra: dict[str, Any] = {
            k: v for k, v in scan.proj.items() if item_proj.get(k) != v and v is not None
        }
        extra["raster:bands"] = scan.raster_bands
        extra["eo:bands"] = _eo_bands(scan, key)
        item.add_asset(
            key,
            pystac.Asset(
                href=_href(scan.source.path, base),
                media_type=scan.media_type,
                roles=["data"],
                extra_fields=extra,
            ),
        )
    out = item.to_dict(include_self_link=False, transform_hrefs=False)
    out["stac_version"] = STAC_VERSION
    # The datetime property must be the string written above, whatever pystac did.
    out["properties"]["datetime"] = properties["datetime"]
    logger.debug("item %s: %d asset(s), %s", group.item_id, len(keys), properties["datetime"])
    return out


def _write_json(data: dict[str, Any], output: Path) -> None:
    """Write pretty JSON atomically (temporary file + rename)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError as err:  # NaN / inf sneaking in from metadata
        raise IndexingError(f"cannot write {output}: {err}") from err
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
